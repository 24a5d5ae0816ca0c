"""A catalog of HOSTILE TimeRNN layers: layers that attack the checker, not the math.

The mistake catalog (tests/catalog/) holds layers with honest bugs. This one holds
layers that misbehave against whatever runs them: they exit (with code 0, the code of a
PASS), kill themselves, segfault, hang at import or in C code, eat all the memory, print
50 MB or fake JSON reports, write garbage into inherited file descriptors, fork children
that outlive them, close their stdout, and patch NumPy, JAX or crosscheck's own
tolerances so that a wrong layer would look right to references computed in the same
process. Each module is a few lines around the correct layer
(`tests/catalog/correct_book_dtype.py`); the lines that misbehave carry `# HOSTILE:`.

What the catalog is for: run crosscheck on every entry (`--layer MODULE:TimeRNN`, in a
subprocess) and require that

- no hostile layer gets exit code 0 unless its numbers are right (`expected == "pass"`
  only for a correct layer whose misbehaviour is harmless), and every "fail" entry gets
  a FAIL whose message contains each of `reason_words` (lowercased message, substring
  match: "code 0", "time limit", "memory", "signal", the phase, the quantity...);
- none can hang the checker past its limits (time, memory): the checker returns within
  its time limit plus a small margin, whatever the layer does, and leaves no process of
  the layer running;
- with `--json -`, stdout stays pure JSON: exactly one JSON document, the checker's,
  whatever the layer printed or wrote to file descriptors 1, 2 or 3..20.

Importing this package imports none of the hostile modules: entries name them only.
Never import one into a long-lived process (a test runner, a REPL): most of them end,
hang or corrupt the process that imports them. Try one in a throwaway process:

    timeout 60 python -m crosscheck --layer tests.catalog.hostile.hang_forward:TimeRNN --cases 5

`memory_blowup_forward` takes all the memory it may: run it only under a cap.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASES = ("import", "constructor", "forward", "backward")
EXPECTED = ("fail", "pass")


@dataclass(frozen=True)
class Hostile:
    """One hostile layer.

    name: short name; module: its import path (the class is `module:TimeRNN`);
    where: the phase it misbehaves in, one of PHASES, or several joined by "+";
    what: the misbehaviour in one line; expected: the verdict crosscheck must give,
    "fail" or "pass"; reason_words: lowercase words a good FAIL message contains
    (each as a substring of the lowercased message; empty for "pass").
    """

    name: str
    module: str
    where: str
    what: str
    expected: str
    reason_words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.expected not in EXPECTED:
            raise ValueError(f"{self.name}: expected must be one of {EXPECTED}")
        if not all(w in PHASES for w in self.where.split("+")):
            raise ValueError(f"{self.name}: where must be PHASES joined by '+'")
        if self.expected == "pass" and self.reason_words:
            raise ValueError(f"{self.name}: a 'pass' entry has no reason words")

    @property
    def spec(self) -> str:
        """The form the CLI takes: `--layer tests.catalog.hostile.hang_forward:TimeRNN`."""
        return f"{self.module}:TimeRNN"


def _h(
    name: str, where: str, what: str, expected: str, reason_words: tuple[str, ...] = ()
) -> Hostile:
    return Hostile(name, f"tests.catalog.hostile.{name}", where, what, expected, reason_words)


# The 16 exits: 4 ways to exit x 4 places (exit_<how>_<place>.py; place "init" is the
# constructor). exit() is SystemExit(None): exit status 0.
_EXITS = (
    ("sysexit0", "sys.exit(0)", "0"),
    ("site_exit", "exit() (the site builtin)", "0"),
    ("systemexit3", "raise SystemExit(3)", "3"),
    ("os_exit", "os._exit(0)", "0"),
)
_PLACES = (
    ("import", "import", "at import"),
    ("init", "constructor", "in the constructor"),
    ("forward", "forward", "in forward"),
    ("backward", "backward", "in backward"),
)

HOSTILE: list[Hostile] = [
    _h(f"exit_{how}_{place}", phase, f"{call} {when}", "fail", ("exit", f"code {code}", phase))
    for how, call, code in _EXITS
    for place, phase, when in _PLACES
] + [
    # Crashes.
    _h("keyboard_interrupt_forward", "forward", "raise KeyboardInterrupt in forward",
       "fail", ("keyboardinterrupt", "forward")),
    _h("sigkill_backward", "backward", "os.kill(os.getpid(), signal.SIGKILL) in backward",
       "fail", ("signal", "sigkill", "backward")),
    _h("segfault_forward", "forward", "a segfault (ctypes.string_at(0)) in forward",
       "fail", ("signal", "sigsegv", "forward")),
    _h("unprintable_exception_forward", "forward",
       "raises an exception whose __str__, __repr__ and __reduce__ raise",
       "fail", ("unprintableerror", "forward")),
    # Cheats: patches that would make a wrong layer look right to same-process references.
    _h("patch_np_tanh_import", "import",
       "np.tanh/sinh/cosh patched to tanh(1.1 x) at import; the layer uses np.tanh",
       "fail", ("hs",)),
    _h("patch_np_abs_import", "import",
       "np.abs patched to return zeros at import; dWh x 1.5",
       "fail", ("dwh",)),
    _h("patch_tolerance_import", "import",
       "crosscheck.compare RTOL and FLOOR set to 1e9 at import; dxs x 2",
       "fail", ("dxs",)),
    _h("garbage_fds", "import+forward",
       "garbage, fake JSON and fake pickles written to fds 3..20; db x 2",
       "fail", ("db",)),  # the worker keeps its channel out of the layer's reach
    # Hangs.
    _h("hang_forward", "forward", "while True: pass in forward",
       "fail", ("time limit", "forward")),
    _h("sleep_backward", "backward", "time.sleep(3600) in backward",
       "fail", ("time limit", "backward")),
    _h("hang_import", "import", "while True: pass at import",
       "fail", ("time limit", "import")),
    _h("hang_in_c_forward", "forward",
       "drains itertools.repeat in C in forward: no signal handler or thread runs",
       "fail", ("time limit", "forward")),
    _h("hang_ignores_sigterm_forward", "forward",
       "ignores SIGTERM/SIGINT/SIGHUP/SIGALRM, then sleeps forever, in forward",
       "fail", ("time limit", "forward")),
    # Memory.
    _h("memory_blowup_forward", "forward",
       "appends np.ones(2**20 .. 2**28) to a module-level list forever in forward",
       "fail", ("memory", "forward")),
    # Harmless misbehaviour of a correct layer.
    _h("print_noise", "forward+backward",
       "prints fake JSON reports, verdict lines and partial lines to stdout/stderr/fds 1, 2",
       "pass"),
    _h("print_50mb_forward", "forward", "prints 50 MB (25 to stdout, 25 to stderr) once",
       "pass"),
    _h("jax_x64_off_import", "import", 'jax.config.update("jax_enable_x64", False) at import',
       "pass"),
    _h("fork_child_forward", "forward",
       "forks a child that sleeps 3600 s holding the inherited fds; correct values",
       "pass"),
    _h("close_stdio_forward", "forward", "os.close(1); os.close(2) at the first forward",
       "pass"),
]  # fmt: skip
