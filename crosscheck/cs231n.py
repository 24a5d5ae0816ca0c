"""Check CS231n-style RNN functions: adapters from four functions to the book's TimeRNN.

Stanford's CS231n (assignment 3) writes the tanh RNN as functions in one module, with
the book's (D, H) layout and h_t = tanh(h_{t-1} Wh + x_t Wx + b):

    rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)    x (N, D), prev_h (N, H)
    rnn_step_backward(dnext_h, cache)      -> (dx, dprev_h, dWx, dWh, db)
    rnn_forward(x, h0, Wx, Wh, b)          -> (h, cache)         x (N, T, D), h (N, T, H)
    rnn_backward(dh, cache)                -> (dx, dh0, dWx, dWh, db)   dh (N, T, H)

crosscheck drives layer objects (crosscheck.drive), so `adapter(module, part)` builds a
layer class with the book's protocol from the module's functions. A module is checked in
two parts, each with every case, oracle, policy rule, diagnosis and shrinking a book
layer gets, and reported in the module's own names (`NAMES`):

- "rnn_forward" (`SequenceRNN`): forward(xs) is rnn_forward(xs, h0, Wx, Wh, b) with h0
  zeros (stateless, or after reset_state), the state carried from the previous forward
  (stateful) or the one given to set_state; h = h[:, -1]. backward(dhs) is
  rnn_backward(dhs, cache); dh = dh0, grads = (dWx, dWh, db).
- "rnn_step_forward" (`StepRNN`): the step functions on their own, driven by the loop
  CS231n's rnn_forward / rnn_backward are meant to be (next_h of step t is step t+1's
  prev_h; step t's dnext_h is dh[:, t] + the dprev_h of step t+1; the weight gradients
  sum over steps). The loop is right by construction, so whatever goes wrong here is the
  step functions': a T=1 segment is exactly one call of each, and a longer chain checks
  that the step uses prev_h and returns the right dprev_h. A module whose rnn_forward
  does not call its step functions (vectorised) has both checked independently.

The adapters hide nothing: the student's exceptions propagate (crosscheck.drive records
them with the student's line); the caller's xs and dhs reach rnn_forward / rnn_backward
(and xs[:, t] reaches rnn_step_forward) as they are, so drive's own checks see a
function that writes into them; hs, dxs and dh0 are returned as the functions return
them, so their shapes, dtypes, aliasing and later changes are drive's to judge. Only
where the protocol needs the adapter's own arrays does it check for itself, raising an
error that names the function: an h0 or prev_h written into, and weight gradients that
are not float arrays of their parameter's shape (grads are written into the layer's
buffers in place, where a wrong shape would broadcast unseen).

NumPy only: the worker that runs the student's module imports this file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
Fn = Callable[..., Any]

# The two parts of a module, named by the function that leads each (what a --layer spec's
# ATTR names with --api cs231n), and the functions each needs.
PARTS = ("rnn_forward", "rnn_step_forward")
FUNCTIONS: dict[str, tuple[str, str]] = {
    "rnn_forward": ("rnn_forward", "rnn_backward"),
    "rnn_step_forward": ("rnn_step_forward", "rnn_step_backward"),
}
ALL_FUNCTIONS = ("rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward")

# crosscheck's quantity (or problem subject, crosscheck.drive.Problem.quantity) -> what it
# is in the module, per part. Anything not here keeps crosscheck's name.
NAMES: dict[str, dict[str, str]] = {
    "rnn_forward": {
        "hs": "rnn_forward's h",
        "h": "rnn_forward's h[:, -1]",
        "dxs": "rnn_backward's dx",
        "dWx": "rnn_backward's dWx",
        "dWh": "rnn_backward's dWh",
        "db": "rnn_backward's db",
        "dh": "rnn_backward's dh0",
        "forward": "rnn_forward",
        "backward": "rnn_backward",
        "xs": "rnn_forward's x",
        "dhs": "rnn_backward's dh",
        "params": "Wx, Wh, b",
    },
    "rnn_step_forward": {
        "hs": "rnn_step_forward's next_h",
        "h": "rnn_step_forward's last next_h",
        "dxs": "rnn_step_backward's dx",
        "dWx": "rnn_step_backward's dWx",
        "dWh": "rnn_step_backward's dWh",
        "db": "rnn_step_backward's db",
        "dh": "rnn_step_backward's dprev_h",
        "forward": "rnn_step_forward",
        "backward": "rnn_step_backward",
        "xs": "rnn_step_forward's x",
        "params": "Wx, Wh, b",
    },
}


_FROM_H0 = (
    "rnn_forward must start from h0 (prev_h = h0 before the loop): in stateful chains "
    "crosscheck gives it the carried state or the one set_state got, not zeros"
)
_NO_STATE = (
    "{fn} must depend on its arguments alone: it seems to keep state from one call to the next"
)
_ACCUMULATES = (
    "{fn}'s weight gradients grow from one call to the next on the same cache: start the "
    "sums from zeros in each call, and never add into arrays kept in the cache or the module"
)
_CHANGES_CACHE = (
    "{fn} changes the cache (e.g. squares next_h in place), so a second call with the same "
    "cache goes wrong: leave the cache as the forward function made it"
)
# crosscheck.diagnose's causes whose words speak of the book's layer (set_state, layer.dh,
# grads) -> the same advice in the module's terms, per part.
HINTS: dict[str, dict[str, str]] = {
    "rnn_forward": {
        "no_carry": "in rnn_backward, step t's backward gets dh[:, t] + dprev_h: the "
        "gradient from the output plus the one carried back from step t+1",
        "grads_step0_only": "rnn_backward must sum the steps' weight gradients, from zeros: "
        "dWx += dWx_t (and so dWh, db)",
        "grads_last_step_only": "rnn_backward must sum the steps' weight gradients, from "
        "zeros: dWx += dWx_t (and so dWh, db)",
        "dh_from_last_step": "rnn_backward's dh0 is the dprev_h that step 0's backward "
        "returns, after the loop, not the first one the loop gets (t=T-1)",
        "dh_missing_Wh": "dh0 is dt_0 @ Wh.T, the dprev_h of step 0, not dt_0",
        "set_state_ignored": _FROM_H0,
        "stateful_ignored": _FROM_H0,
        "reset_ignored": _NO_STATE.format(fn="rnn_forward"),
        "stateless_carries": _NO_STATE.format(fn="rnn_forward"),
        "grads_accumulate": _ACCUMULATES.format(fn="rnn_backward"),
        "backward_overwrites_cache": _CHANGES_CACHE.format(fn="rnn_backward"),
        "hs_unfilled": "rnn_forward's h has entries that are never written (np.empty keeps "
        "whatever was in memory): write h[:, t] at every step t",
    },
    "rnn_step_forward": {
        "no_carry": "rnn_step_backward's dprev_h carries the gradient to the step before: "
        "dprev_h = dt @ Wh.T",
        "dh_missing_Wh": "rnn_step_backward's dprev_h is dt @ Wh.T, not dt",
        "set_state_ignored": "rnn_step_forward must use prev_h: "
        "next_h = tanh(prev_h @ Wh + x @ Wx + b)",
        "stateful_ignored": "rnn_step_forward must use prev_h: "
        "next_h = tanh(prev_h @ Wh + x @ Wx + b)",
        "reset_ignored": _NO_STATE.format(fn="rnn_step_forward"),
        "stateless_carries": _NO_STATE.format(fn="rnn_step_forward"),
        "grads_accumulate": _ACCUMULATES.format(fn="rnn_step_backward"),
        "backward_overwrites_cache": _CHANGES_CACHE.format(fn="rnn_step_backward"),
    },
}


class NotCS231n(LookupError):
    """The module lacks a function a part needs (or it is not callable)."""


class ChangedInput(RuntimeError):
    """A function wrote into an argument that the adapter, not the case, gave it."""


def adapter(module: Any, part: str = "rnn_forward") -> type[SequenceRNN] | type[StepRNN]:
    """A layer class `cls(Wx, Wh, b, stateful=False)` over `module`'s functions for `part`
    ("rnn_forward": rnn_forward + rnn_backward; "rnn_step_forward": the step functions).
    Raises NotCS231n if a function is missing, ValueError for an unknown part."""
    if part not in FUNCTIONS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    fns = []
    for fn_name in FUNCTIONS[part]:
        fn = getattr(module, fn_name, None)
        if not callable(fn):
            raise NotCS231n(_missing(module, fn_name, part))
        fns.append(fn)
    base: type[SequenceRNN] | type[StepRNN] = SequenceRNN if part == "rnn_forward" else StepRNN
    name = str(getattr(module, "__name__", None) or type(module).__name__)
    # "<locals>" in the qualname: no fresh process can find this class by name, so a plain
    # verify(cls) runs it in-process and says so (the isolated road is the module's name
    # with api="cs231n", which the worker turns into this same class).
    cls = type(
        base.__name__,
        (base,),
        {
            "forward_fn": staticmethod(fns[0]),
            "backward_fn": staticmethod(fns[1]),
            "module_name": name,
            "part": part,
            "__module__": name,
            "__qualname__": f"cs231n.adapter.<locals>.{part}",
        },
    )
    return cls


def adapted(layer: Any) -> tuple[str, str] | None:
    """(module name, part) if `layer` is a class `adapter` made, else None."""
    if isinstance(layer, type) and issubclass(layer, _FunctionsRNN) and layer.part in PARTS:
        return layer.module_name, layer.part
    return None


def parts_defined(module: Any) -> list[str]:
    """The parts whose two functions `module` defines, in PARTS order."""
    return [p for p in PARTS if all(callable(getattr(module, f, None)) for f in FUNCTIONS[p])]


def legend(part: str) -> str:
    """One sentence for a report: which of crosscheck's words are which of the module's
    (the diagnosis speaks of the book's TimeRNN that the adapter builds)."""
    names = NAMES[part]
    fwd, bwd = FUNCTIONS[part]
    pairs = ", ".join(f"{q} = {names[q]}" for q in ("hs", "h", "dxs", "dWx", "dWh", "db", "dh"))
    text = (
        f"Names: crosscheck checks the book's TimeRNN built from {fwd} and {bwd} "
        f"(forward = {fwd}, backward = {bwd}); in its words {pairs}."
    )
    if part == "rnn_step_forward":
        text += (
            " The loop over the steps is crosscheck's (CS231n's rnn_forward and rnn_backward, "
            "written right), so what differs is the step functions': dh is step 0's dprev_h, "
            "dWx, dWh and db are sums over the steps."
        )
    return text


def hints(causes: Sequence[str], part: str) -> list[str]:
    """Diagnosis lines in the module's terms for crosscheck.diagnose's `causes` (each once)."""
    table = HINTS[part]
    said = dict.fromkeys(table[c] for c in causes if c in table)
    return [f"In the module's terms: {h}." for h in said]


def exit_code(codes: Sequence[int]) -> int:
    """The exit code of a check made of several reports: a failure anywhere wins, then an
    interruption, then an inconclusive part; 0 only when every part passed."""
    for code in (1, 2, 130, 3):
        if code in codes:
            return code
    return 0


def _missing(module: Any, fn_name: str, part: str) -> str:
    name = getattr(module, "__name__", None) or repr(module)
    have = [f for f in ALL_FUNCTIONS if callable(getattr(module, f, None))]
    found = f"it defines {', '.join(have)}" if have else "it defines none of them"
    what = "is not a function" if hasattr(module, fn_name) else "is missing"
    other = [p for p in parts_defined(module) if p != part]
    only = (
        f"; to check only {' and '.join(FUNCTIONS[other[0]])}, name that part: "
        f"--layer MODULE:{other[0]}"
        if other
        else ""
    )
    return (
        f"module {name!r}: {fn_name} {what}; a CS231n-style module defines "
        f"{', '.join(ALL_FUNCTIONS)} ({found}){only}"
    )


# --------------------------------------------------------------------------------------
# The layers.


class _FunctionsRNN:
    """The book's protocol around two functions; subclasses say how forward and backward
    call them."""

    forward_fn: ClassVar[Fn]
    backward_fn: ClassVar[Fn]
    module_name: ClassVar[str] = "?"
    part: ClassVar[str] = "?"

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]  # the very arrays: an optimizer updates them in place
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.dh: Any = None
        self._ran = False

    def set_state(self, h: Array) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None

    def _start(self, N: int) -> Array:
        """The state this forward starts from (the adapter's or the caller's array)."""
        Wx, Wh, _ = self.params
        if not self.stateful or self.h is None:
            return np.zeros((N, Wh.shape[0]), dtype=Wx.dtype)
        return self.h

    def _write_grads(self, fn: str, dWx: Any, dWh: Any, db: Any) -> None:
        checked = [
            _weight_grad(fn, name, g, buf.shape, param, None)
            for name, g, buf, param in zip(
                ("dWx", "dWh", "db"), (dWx, dWh, db), self.grads, ("Wx", "Wh", "b")
            )
        ]
        for buf, g in zip(self.grads, checked):
            buf[...] = g


class SequenceRNN(_FunctionsRNN):
    """forward = rnn_forward(xs, h0, Wx, Wh, b), backward = rnn_backward(dhs, cache)."""

    def forward(self, xs: Array) -> Any:
        Wx, Wh, b = self.params
        start = self._start(len(xs))
        h0 = start.copy()  # the functions get a copy: the carried state stays the adapter's
        h, cache = _unpack(type(self).forward_fn(xs, h0, Wx, Wh, b), "rnn_forward",
                           ("h", "cache"))  # fmt: skip
        _unchanged("rnn_forward", "h0", h0, start)
        self._cache, self._ran = cache, True
        # h goes back as it is (drive judges its shape and dtype); the state is a copy of
        # its last step, since layer.h must not share memory with the returned hs.
        ok = isinstance(h, np.ndarray) and h.ndim == 3 and h.shape[1] > 0
        self.h = h[:, -1].copy() if ok else None
        return h

    def backward(self, dhs: Array) -> Any:
        if not self._ran:
            raise RuntimeError("backward() called before forward()")
        names = ("dx", "dh0", "dWx", "dWh", "db")
        dx, dh0, dWx, dWh, db = _unpack(
            type(self).backward_fn(dhs, self._cache), "rnn_backward", names
        )
        self._write_grads("rnn_backward", dWx, dWh, db)
        self.dh = dh0
        return dx


class StepRNN(_FunctionsRNN):
    """The CS231n loop over rnn_step_forward / rnn_step_backward: the step functions alone."""

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, H = xs.shape[0], xs.shape[1], Wh.shape[0]
        start = self._start(N)
        prev_h, pristine = start.copy(), start
        outs: list[Array] = []
        caches: list[Any] = []
        for t in range(T):
            # xs[:, t] is a view of the caller's xs, as in CS231n's rnn_forward: a step that
            # writes into x changes the caller's array, which drive sees.
            out = type(self).forward_fn(xs[:, t], prev_h, Wx, Wh, b)
            next_h, cache = _unpack(out, "rnn_step_forward", ("next_h", "cache"), t)
            _unchanged("rnn_step_forward", "prev_h", prev_h, pristine, t)
            kept = _step_array("rnn_step_forward", "next_h", next_h, (N, H), t).copy()
            outs.append(kept)
            caches.append(cache)
            prev_h, pristine = next_h, kept  # the next step gets the step's own array
        hs = np.stack(outs, axis=1)  # the steps' dtype, whatever it is
        self._caches, self._ran = caches, True
        self.h = hs[:, -1].copy()
        return hs

    def backward(self, dhs: Array) -> Array:
        if not self._ran:
            raise RuntimeError("backward() called before forward()")
        Wx = self.params[0]
        N, T = dhs.shape[0], dhs.shape[1]
        D, H = Wx.shape
        shapes = {"dx": (N, D), "dprev_h": (N, H), "dWx": (D, H), "dWh": (H, H), "db": (H,)}
        names = tuple(shapes)
        dxs: list[Array] = []
        sums: list[Any] = [None, None, None]
        dprev_h: Any = np.zeros((N, H), dtype=dhs.dtype)
        for t in reversed(range(T)):
            # h_t feeds hs and step t+1: both gradients add (a new array each step, so the
            # caller's dhs never reaches the step function).
            dnext_h = dhs[:, t] + dprev_h
            out = _unpack(type(self).backward_fn(dnext_h, self._caches[t]),
                          "rnn_step_backward", names, t)  # fmt: skip
            for name, value in zip(names, out):
                if name in ("dWx", "dWh", "db"):
                    _weight_grad("rnn_step_backward", name, value, shapes[name], "", t)
                else:
                    _step_array("rnn_step_backward", name, value, shapes[name], t)
            dx, dprev_h = out[0], out[1]
            dxs.append(np.array(dx, copy=True))
            # Summed into new arrays, as CS231n's dWx += dWx_t does: a step that reuses one
            # output buffer from call to call does not change the sums.
            sums = [np.array(g, copy=True) if s is None else s + g for s, g in zip(sums, out[2:])]
        self._write_grads("rnn_step_backward", *sums)
        self.dh = dprev_h  # the dprev_h of step 0, as the step returned it
        return np.stack(dxs[::-1], axis=1)


# --------------------------------------------------------------------------------------
# Checks of what the functions return, where the adapter needs it.


def _at(t: int | None) -> str:
    return "" if t is None else f" at step t={t}"


def _unpack(out: Any, fn: str, names: Sequence[str], t: int | None = None) -> tuple[Any, ...]:
    """The values a function returned, if they are a tuple (or list) of len(names)."""
    if isinstance(out, (tuple, list)) and len(out) == len(names):
        return tuple(out)
    got = f"{len(out)} values" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}"
    raise TypeError(f"{fn} returned {got}{_at(t)}, expected the tuple ({', '.join(names)})")


def _step_array(fn: str, name: str, value: Any, shape: tuple[int, ...], t: int) -> Array:
    """A step's array output, which the loop stacks: an ndarray of `shape`."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{fn} returned {name} as {type(value).__name__}{_at(t)}, expected an ndarray "
            f"of shape {shape}"
        )
    if value.shape != shape:
        raise ValueError(f"{fn} returned {name} of shape {value.shape}{_at(t)}, expected {shape}")
    return value


def _weight_grad(
    fn: str, name: str, value: Any, shape: tuple[int, ...], param: str, t: int | None
) -> Array:
    """A weight gradient the adapter writes into grads in place: a float ndarray of exactly
    its parameter's shape (an assignment would broadcast a wrong one unseen)."""
    of = f" (the shape of {param})" if param else ""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{fn} returned {name} as {type(value).__name__}{_at(t)}, expected an ndarray "
            f"of shape {shape}{of}"
        )
    if value.shape != shape:
        raise ValueError(
            f"{fn} returned {name} of shape {value.shape}{_at(t)}, expected {shape}{of}"
        )
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"{fn} returned {name} of dtype {value.dtype}{_at(t)}, expected floats")
    return value


def _unchanged(fn: str, arg: str, given: Array, pristine: Array, t: int | None = None) -> None:
    """`given` (the adapter's copy of `pristine`) must not have been written by `fn`."""
    if given.shape != pristine.shape or not np.array_equal(given, pristine, equal_nan=True):
        whose = (
            "the caller's h0 (in CS231n's captioning model, the projected image features)"
            if arg == "h0"
            else "the previous step's next_h, which the caller has stored in h"
        )
        raise ChangedInput(
            f"{fn} wrote into its argument {arg}{_at(t)}: that changes {whose} behind its "
            "back; compute into new arrays"
        )
