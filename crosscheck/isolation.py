"""Run the layer under test where it cannot touch the judge: worker processes with limits.

    pool = WorkerPool(target_from_spec("my_layer:TimeRNN"), jobs=2, limits=Limits())
    observed = pool.run(cases)     # one Observed per case, None for cases not run
    pool.fatal                     # why the layer was given up on (exit, signal, hang, ...)

Each worker (crosscheck.worker) imports the layer by itself and drives it; this side
only sends case ids, reads frames with deadlines and checks what comes back
(crosscheck.codec). A worker that exits, is killed, runs past its time limit or its
memory cap, or breaks the wire, makes the case in flight fail with a sentence saying
so, and the layer is not tried on further cases. The layer's prints are captured.

A layer that cannot be loaded by name in a fresh process (a class defined inside a
function, or in a notebook's __main__) runs in this process instead: `InProcess`,
which says so in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.machinery
import inspect
import os
import select
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosscheck import cs231n
from crosscheck.cases import Case
from crosscheck.child import Child, signal_name
from crosscheck.codec import observed_from_wire
from crosscheck.drive import LayerFactory, Observed, Problem, drive
from crosscheck.wire import FrameReader, WireError, send

DEFAULT_TIMEOUT = 10.0  # seconds per call into the layer: a correct layer needs milliseconds
DEFAULT_MEMORY = 4 * 2**30  # bytes per worker
# Seconds to import the layer's module (it may import a framework): 3 calls' worth, and
# never less than IMPORT_FLOOR.
IMPORT_FLOOR = 10.0
POLL = 0.2  # seconds between looks at the workers' memory
IN_WORKER = "CROSSCHECK_WORKER"  # set in a worker's environment


class LayerLoadError(Exception):
    """The layer cannot be loaded (no such module, file or attribute, or its import raised)."""


@dataclass(frozen=True)
class Limits:
    timeout: float = DEFAULT_TIMEOUT  # per call into the layer
    memory: int = DEFAULT_MEMORY  # per worker
    total: float | None = None  # for everything the layer does in this pool (a submission)

    @property
    def import_timeout(self) -> float:
        return max(3 * self.timeout, IMPORT_FLOOR)


@dataclass(frozen=True)
class Target:
    """How a worker finds the layer. spec: as --layer takes it; load: what the worker loads."""

    spec: str
    load: dict[str, Any]
    how: str  # for the report: where the layer ran
    # A --layer spec names a module "importable from the current directory".
    from_cwd: bool = False


def parse_size(text: str) -> int:
    """'4G' / '512M' / '1073741824' -> bytes (at least 64M). Raises ValueError."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        n = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 512M or 4G)") from None
    if n < 64 * 2**20:
        raise ValueError(f"--memory-limit must be at least 64M, got {text!r}")
    return int(n)


def target_from_spec(spec: str, api: str = "book") -> Target:
    """'module:Attr' or 'path/to/file.py:Attr'. Raises LayerLoadError on another form.
    api "cs231n": Attr names a part of a CS231n-style module (crosscheck.cs231n.PARTS),
    which the worker adapts to a layer."""
    target = _book_target(spec)
    if api == "book":
        return target
    if api != "cs231n":
        raise LayerLoadError(f"api must be book or cs231n, got {api!r}")
    part = spec.rpartition(":")[2]
    if part not in cs231n.PARTS:
        raise LayerLoadError(
            f"with --api cs231n, --layer is MODULE or FILE.py, or one part of it: "
            f"MODULE:rnn_forward or MODULE:rnn_step_forward; got {spec!r}"
        )
    return dataclasses.replace(target, load={**target.load, "api": "cs231n"})


def _book_target(spec: str) -> Target:
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise LayerLoadError(
            f"--layer must look like MODULE:ATTR or FILE.py:ATTR (e.g. my_layer:TimeRNN), "
            f"got {spec!r}"
        )
    if where.endswith(".ipynb"):
        path = Path(where).resolve()
        return Target(spec, {"kind": "notebook", "path": str(path), "attr": attr},
                      f"the code cells of {path} run in a worker process")  # fmt: skip
    if where.endswith(".py") or os.sep in where:
        path = Path(where).resolve()
        return Target(spec, {"kind": "file", "path": str(path), "attr": attr},
                      f"loaded from {path} in a worker process")  # fmt: skip
    return Target(spec, {"kind": "module", "module": where, "attr": attr},
                  "imported in a worker process", from_cwd=True)  # fmt: skip


def target_for(obj: Any) -> Target | None:
    """A Target for a class or function the caller holds, or None if a fresh process
    cannot find it by name (defined inside a function, or in a __main__ without a file)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if module != "__main__":
        if _importable(module):
            return Target(f"{module}:{qualname}",
                          {"kind": "module", "module": module, "attr": qualname},
                          "imported in a worker process")  # fmt: skip
        path = getattr(sys.modules.get(module), "__file__", None)
        if not path:
            return None
        return Target(f"{path}:{qualname}",
                      {"kind": "file", "path": path, "attr": qualname, "module_name": module},
                      f"loaded from {path} in a worker process")  # fmt: skip
    try:
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError):  # a builtin, or a class typed into a notebook or a REPL
        return None
    if not path or not Path(path).is_file():
        return None
    return Target(f"{path}:{qualname}", {"kind": "file", "path": path, "attr": qualname},
                  f"loaded from its source file {path} in a worker process")  # fmt: skip


def target_for_adapter(layer: Any) -> Target | None:
    """A Target for a class crosscheck.cs231n.adapter made, or None if a fresh process
    cannot find its module by name or file."""
    found = cs231n.adapted(layer)
    if found is None:
        return None
    name, part = found
    module = sys.modules.get(name)
    load = {"attr": part, "api": "cs231n"}
    if name != "__main__" and _importable(name):
        return Target(f"{name}:{part}", {"kind": "module", "module": name, **load},
                      "imported in a worker process")  # fmt: skip
    path = getattr(module, "__file__", None)
    if not path or not Path(path).is_file():
        return None
    return Target(f"{path}:{part}", {"kind": "file", "path": path, "module_name": name, **load},
                  f"loaded from {path} in a worker process")  # fmt: skip


def _importable(module: str) -> bool:
    """Whether a fresh interpreter with this sys.path finds the very same `module` by its
    name (a module loaded from a file is in sys.modules, but may not be findable, or its
    name may find another file)."""
    top = module.partition(".")[0]
    mod = sys.modules.get(top)
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, sys.path)
    except (ImportError, ValueError):
        return False
    if spec is None or mod is None:
        return False
    loaded: str | None = getattr(mod, "__file__", None)
    if loaded is None or spec.origin is None:  # a namespace package: the same folders?
        found = [os.path.realpath(p) for p in spec.submodule_search_locations or ()]
        return found == [os.path.realpath(p) for p in getattr(mod, "__path__", ())]
    return os.path.realpath(spec.origin) == os.path.realpath(loaded)


def _worker_env(jobs: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # what the layer prints before it dies is shown
    env[IN_WORKER] = "1"  # a verify() in the layer's own module refuses to run there
    if jobs > 1:  # one BLAS thread per worker, not one per core per worker
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
    return env


@dataclass
class _Worker:
    child: Child
    reader: FrameReader = field(default_factory=FrameReader)
    ready: bool = False
    index: int | None = None  # the case in flight
    case: Case | None = None
    call: tuple[str, int, int | None] = ("import", 0, None)
    deadline: float = 0.0
    case_deadline: float = 0.0
    failure: str | None = None  # why it was stopped


def _call_words(what: str, segment: int, call: int | None, case: Case | None) -> str:
    """'backward call 1 of segment 2 of case f32:...' / 'the import of the layer's module'."""
    if what == "import" or case is None:
        return "while its module was being imported"
    head = f"{what}()" if what != "constructor" else "the constructor"
    if call is not None and what == "backward":
        head += f" (call {call + 1})"
    return f"in {head} of segment {segment} of case {case.id}"


class WorkerPool:
    """`jobs` worker processes that drive the layer of `target`, with `limits`."""

    def __init__(self, target: Target, jobs: int = 1, limits: Limits = Limits()) -> None:
        self.target, self.jobs, self.limits = target, max(1, jobs), limits
        self.how = self.target.how
        self.fatal: str | None = None  # why the layer was given up on
        self.imported: set[str] = set()  # frameworks the layer imported in its worker
        self.skipped: list[str] = []  # what loading left out (a notebook's magics)
        self._workers: list[_Worker] = []
        self._retired: list[Child] = []
        self._started = time.monotonic()

    # -- starting ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and wait for them to import the layer. Raises LayerLoadError."""
        env = _worker_env(self.jobs)
        path = [os.getcwd(), *sys.path] if self.target.from_cwd else list(sys.path)
        hello = {"op": "load", "target": self.target.load, "sys_path": path,
                 "memory_limit": self.limits.memory}  # fmt: skip
        for _ in range(self.jobs):
            w = _Worker(Child("crosscheck.worker", env))
            os.set_blocking(w.child.from_child, False)
            w.deadline = time.monotonic() + self.limits.import_timeout
            w.case_deadline = w.deadline
            self._workers.append(w)
            with contextlib.suppress(OSError):  # it died already: its end of file says how
                send(w.child.to_child, hello)
        error: str | None = None
        while any(not w.ready for w in self._workers) and not self.fatal:
            for w, frame in self._wait([w for w in self._workers if not w.ready]):
                if frame.get("op") == "ready":
                    w.ready = True
                    self.imported.update(_names(frame.get("imported")))
                    skipped = frame.get("skipped")
                    if isinstance(skipped, list) and not self.skipped:
                        self.skipped = [str(x)[:200] for x in skipped[:50]]
                elif frame.get("op") == "load_error":
                    error = str(frame.get("message"))[:2000]
                    self._retire(w)
                elif frame.get("op") == "fatal":
                    self._give_up(w, str(frame.get("message"))[:500])
            if error:
                self.close()
                raise LayerLoadError(error)

    # -- running cases -----------------------------------------------------------------

    def run(self, cases: Sequence[Case]) -> list[Observed | None]:
        """Drive the layer through `cases`, in parallel; None for cases not run because the
        layer was given up on (see `fatal`)."""
        out: list[Observed | None] = [None] * len(cases)
        todo = list(range(len(cases)))
        todo.reverse()
        while not self.fatal:
            idle = [w for w in self._workers if w.ready and w.index is None]
            while todo and idle and not self.fatal:
                self._assign(idle.pop(), todo.pop(), cases)
            busy = [w for w in self._workers if w.index is not None]
            if not busy:
                break
            for w, frame in self._wait(busy):
                if frame.get("op") == "result" and w.index is not None and w.case is not None:
                    try:
                        out[w.index] = observed_from_wire(frame.get("observed"), w.case)
                    except WireError as exc:
                        self._give_up(w, f"The layer's worker sent a malformed result ({exc}).")
                        continue
                    self.imported.update(_names(frame.get("imported")))
                    w.index, w.case = None, None
        # The case that made the layer fail gets the reason; any still in flight on other
        # workers stays None (not run).
        for w in self._workers:
            if w.index is not None and out[w.index] is None and w.failure:
                out[w.index] = self._failed(w, w.failure)
            w.index, w.case = None, None
        return out

    def _assign(self, w: _Worker, index: int, cases: Sequence[Case]) -> None:
        w.index, w.case = index, cases[index]
        now = time.monotonic()
        # Every call of the case may take the per-call limit, no more: a worker cannot
        # extend its time by announcing calls it does not make.
        calls = 2 + sum(2 + s.backwards for s in w.case.segments)
        w.case_deadline = now + self.limits.timeout * calls
        w.deadline = now + self.limits.timeout
        w.call = ("constructor", 0, None)
        with contextlib.suppress(OSError):  # it has died: _wait sees the end of file
            send(w.child.to_child, {"op": "case", "id": w.case.id})

    def _failed(self, w: _Worker, message: str) -> Observed:
        what, segment, call = w.call
        return Observed(problems=[Problem("crash", what, segment, call, message)])

    def _wait(self, workers: list[_Worker]) -> list[tuple[_Worker, dict[str, Any]]]:
        """Frames that arrived from `workers` within one POLL; handles deaths and limits."""
        now = time.monotonic()
        timeout = min([POLL] + [max(0.0, w.deadline - now) for w in workers])
        fds = {w.child.from_child: w for w in workers}
        prints = {
            cap.fd: cap
            for w in self._workers
            for cap in (w.child.stdout, w.child.stderr)
            if cap.fd is not None
        }
        try:
            readable, _, _ = select.select([*fds, *prints], [], [], timeout)
        except InterruptedError:
            readable = []
        for fd in readable:
            if fd in prints:
                prints[fd].drain()
        frames: list[tuple[_Worker, dict[str, Any]]] = []
        for fd in readable:
            if fd not in fds:
                continue
            w = fds[fd]
            try:
                data = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self._died(w)
                continue
            try:
                for frame in w.reader.feed(data):
                    if not isinstance(frame, dict):
                        raise WireError("a frame that is not a record")
                    if frame.get("op") == "call":
                        self._on_call(w, frame)
                    else:
                        frames.append((w, frame))
            except WireError as exc:
                self._give_up(w, f"The layer broke its worker's private channel ({exc}).")
        now = time.monotonic()
        over_total = self.limits.total is not None and now - self._started > self.limits.total
        for w in workers:
            if w.child.closed:
                continue
            if over_total:
                where = _call_words(*w.call, w.case)
                self._give_up(w, f"The layer ran past the total time limit of "
                              f"{self.limits.total:g} s {where}.")  # fmt: skip
            elif now > w.deadline:
                limit = self.limits.import_timeout if w.call[0] == "import" else self.limits.timeout
                where = _call_words(*w.call, w.case)
                self._give_up(w, f"The layer ran past the time limit of {limit:g} s {where}.")
            elif w.child.resident_bytes() > self.limits.memory:
                where = _call_words(*w.call, w.case)
                self._give_up(w, f"The layer went over the memory limit of "
                              f"{_gib(self.limits.memory)} {where}; it was stopped.")  # fmt: skip
        return [(w, f) for w, f in frames if not w.child.closed]

    def _on_call(self, w: _Worker, frame: dict[str, Any]) -> None:
        what, segment, call = frame.get("what"), frame.get("segment"), frame.get("call")
        if not isinstance(what, str) or not isinstance(segment, int):
            raise WireError("a call frame without a call")
        w.call = (what[:40], segment, call if isinstance(call, int) else None)
        limit = self.limits.import_timeout if what == "import" else self.limits.timeout
        w.deadline = min(time.monotonic() + limit, w.case_deadline)

    def _died(self, w: _Worker) -> None:
        code = w.child.returncode()
        where = _call_words(*w.call, w.case)
        if code is None:
            why = "closed its worker's private channel"
        elif code < 0:
            why = f"was killed by signal {signal_name(code)}"
        else:
            why = f"exited the process with exit code {code}"
        self._give_up(w, f"The layer {why} {where}.")

    def _give_up(self, w: _Worker, message: str) -> None:
        """Stop `w`; the layer has failed, and is tried on no further case."""
        if self.fatal is None:
            self.fatal = message
        w.failure = message
        self._retire(w)

    def _retire(self, w: _Worker) -> None:
        w.child.kill()
        w.child.closed = True
        w.ready = False
        self._retired.append(w.child)

    # -- results -----------------------------------------------------------------------

    def output(self) -> str:
        """What the layer printed, in every worker, shortened (complete after `close`)."""
        parts = []
        for child in [w.child for w in self._workers]:
            for name, cap in (("stdout", child.stdout), ("stderr", child.stderr)):
                if cap.total:
                    parts.append(f"[{name}, {cap.total} bytes]\n{cap.text()}")
        return "\n".join(parts)

    def close(self) -> None:
        for w in self._workers:
            w.child.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _names(x: Any) -> list[str]:
    return [str(v)[:40] for v in x] if isinstance(x, list) else []


def _gib(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


class InProcess:
    """The fallback for a layer a fresh process cannot load by name: it runs here, and the
    report says that it was not isolated."""

    fatal: str | None = None

    def __init__(self, factory: LayerFactory, why: str) -> None:
        self.factory = factory
        self.how = f"in this process, not isolated ({why})"
        self.imported: set[str] = set()
        self.skipped: list[str] = []

    def start(self) -> None:
        pass

    def run(self, cases: Sequence[Case]) -> list[Observed | None]:
        return [drive(self.factory, c) for c in cases]

    def output(self) -> str:
        return ""

    def close(self) -> None:
        pass
