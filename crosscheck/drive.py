"""Drive any protocol-following layer through a case exactly as a training loop would.

`drive(factory, case)` builds the layer with `factory(Wx, Wh, b, stateful=...)`,
runs each segment (set_state / reset_state, forward, one or two backward calls),
for any layer kind (the LSTM's set_state(h, c), layer.c and, if it has one, layer.dc),
copies everything the layer returns and records protocol problems: exceptions,
wrong shapes or dtypes, mutated inputs, returned arrays that change later, arrays
that alias each other, params or grads that lose their identity. It knows nothing
of frameworks or tolerances.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import Case
from crosscheck.quantities import BACKWARD_QUANTITIES, Grads, SegmentValues

Array = NDArray[Any]
LayerFactory = Callable[..., Any]
# Told (call name, segment, backward call) just before each call into the layer, so that
# a worker can say which call hangs or kills it.
CallHook = Callable[[str, int, "int | None"], None]
# Segments whose arrays stay watched for later in-place changes: enough to catch a buffer
# reused by the next call, and keeps the checks linear in the number of segments.
WATCH_SEGMENTS = 2


@dataclass(frozen=True)
class Problem:
    """Something the layer did wrong that needs no reference to see.

    kind: "exception", "shape", "dtype" or "protocol" (wrong computation), or one of
    crosscheck.policy.NOTE_KINDS (worth knowing, not wrong: "float32_outputs", "tuples",
    "read_only", "reads_returned_hs"); quantity: the quantity or object concerned ("hs",
    "dWx", "xs", "params", ...); call: the backward call index, or None for the
    constructor, set_state, reset_state and forward.
    """

    kind: str
    quantity: str
    segment: int
    call: int | None
    message: str


@dataclass
class Observed:
    """What the layer produced, per completed segment, and the problems seen on the way."""

    segments: list[SegmentValues] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Segment k's backward calls that completed before the case stopped early.
    partial: list[Grads] = field(default_factory=list)


class _Stop(Exception):
    """The case cannot go on (the layer raised, or returned something unusable)."""


class _Driver:
    def __init__(
        self,
        factory: LayerFactory,
        case: Case,
        on_call: CallHook | None,
        catch: tuple[type[BaseException], ...],
        scribble: bool = False,
    ) -> None:
        self.factory, self.case, self.on_call, self.catch = factory, case, on_call, catch
        self.scribble = scribble
        self.out = Observed()
        self.segment = 0
        # (segment, quantity, label, the array the layer saw or returned, a pristine copy):
        # checked after every call.
        self.watched: list[tuple[int, str, str, Array, Array]] = []

    def watch(self, quantity: str, label: str, arr: Array, pristine: Array) -> None:
        self.watched.append((self.segment, quantity, label, arr, pristine))

    def problem(self, kind: str, quantity: str, message: str, call: int | None = None) -> None:
        self.out.problems.append(Problem(kind, quantity, self.segment, call, message))

    def attr(self, layer: Any, name: str, call: int | None = None) -> Any:
        """layer.name, or None if it is missing; a property that raises stops the case."""
        try:
            return getattr(layer, name, None)
        except self.catch as exc:
            self.problem("exception", name, _describe_exception(f"reading layer.{name}", exc), call)
            raise _Stop from exc

    def call(self, layer: Any, method: str, *args: Any, call: int | None = None) -> Any:
        """layer.method(*args), recording an exception as the layer's problem and stopping."""
        fn = self.attr(layer, method, call)
        if not callable(fn):
            self.problem("protocol", method, f"the layer has no method {method}()", call)
            raise _Stop
        if self.on_call:
            self.on_call(method, self.segment, call)
        try:
            return fn(*args)
        except self.catch as exc:
            self.problem("exception", method, _describe_exception(method, exc), call)
            raise _Stop from exc

    def check_array(
        self, label: str, value: Any, shape: tuple[int, ...], call: int | None = None
    ) -> Array:
        """A copy of `value` after checking it is an ndarray of `shape` in the case dtype."""
        c = self.case
        if not isinstance(value, np.ndarray):
            self.problem(
                "shape",
                label,
                f"{label} is {type(value).__name__}, expected an ndarray of shape {shape}",
                call,
            )
            raise _Stop
        if value.shape != shape:
            self.problem("shape", label, f"{label} has shape {value.shape}, expected {shape}", call)
            raise _Stop
        if value.dtype != np.dtype(c.dtype):
            if value.dtype == np.float32 and c.dtype == "float64":
                # The book's dtype='f': judged at float32's tolerance (crosscheck.policy).
                self.problem(
                    "float32_outputs",
                    label,
                    f"{label} came back float32 for float64 parameters (is the dtype "
                    "hard-coded, e.g. dtype='f'?)",
                    call,
                )
            else:
                self.problem(
                    "dtype",
                    label,
                    f"{label} came back {value.dtype} for {c.dtype} parameters (computation "
                    "and outputs should use the parameters' dtype)",
                    call,
                )
                raise _Stop
        copy: Array = value.copy()
        return copy

    def check_inputs(self, call: int | None) -> None:
        """The layer must not have changed the caller's arrays, nor ones it returned."""
        still = []
        for k, quantity, label, arr, pristine in self.watched:
            if k <= self.segment - WATCH_SEGMENTS:
                continue
            if np.array_equal(arr, pristine, equal_nan=True):
                still.append((k, quantity, label, arr, pristine))
            else:
                self.problem("protocol", quantity, f"{label} was changed by the layer", call)
        self.watched = still

    def run(self) -> Observed:
        with contextlib.suppress(_Stop):
            self._run()
        return self.out

    def _run(self) -> None:
        c = self.case
        data = c.data()
        params = [data.Wx.copy(), data.Wh.copy(), data.b.copy()]
        originals = [p.copy() for p in params]
        if self.on_call:
            self.on_call("constructor", 0, None)
        try:
            layer = self.factory(*params, stateful=c.stateful)
        except self.catch as exc:
            self.problem("exception", "constructor", _describe_exception("the constructor", exc))
            raise _Stop from exc
        got_params = self.attr(layer, "params")
        if not _holds(got_params, params):
            self.problem(
                "protocol",
                "params",
                "layer.params is not [Wx, Wh, b] holding the very arrays passed to the "
                "constructor: an optimizer updating them in place would not reach the layer",
            )
        elif isinstance(got_params, tuple):
            self.problem("tuples", "params", "layer.params is a tuple")
        grads = self.attr(layer, "grads")
        first_grads = list(grads) if isinstance(grads, (list, tuple)) else None
        if first_grads is None or len(first_grads) != 3:
            self.problem(
                "protocol", "grads", "layer.grads is not a list of three arrays [dWx, dWh, db]"
            )
            raise _Stop
        if isinstance(grads, tuple):
            self.problem("tuples", "grads", "layer.grads is a tuple")
        H, D, GH = c.H, c.D, c.gates * c.H

        for k, (seg, sd) in enumerate(zip(c.segments, data.segments)):
            self.segment = k
            N = c.batch(k)
            self.out.partial = []
            if seg.start == "s":
                assert sd.h_set is not None
                h_in = sd.h_set.copy()
                self.watch("h_set", "the array given to set_state", h_in, sd.h_set)
                if c.has_cell:  # the LSTM's set_state(h, c)
                    assert sd.c_set is not None
                    c_in = sd.c_set.copy()
                    self.watch("c_set", "the c given to set_state", c_in, sd.c_set)
                    self.call(layer, "set_state", h_in, c_in)
                else:
                    self.call(layer, "set_state", h_in)
            elif seg.start == "r":
                self.call(layer, "reset_state")

            xs_in = sd.xs.copy()
            hs_ret = self.call(layer, "forward", xs_in)
            hs = self.check_array("hs", hs_ret, (N, seg.T, H))
            h_attr = self.attr(layer, "h")
            h = self.check_array("h", h_attr, (N, H))
            if np.shares_memory(hs_ret, h_attr):
                self.problem("protocol", "h", "layer.h shares memory with the returned hs")
            self.watch("h", f"layer.h as it was after forward in segment {k}", h_attr, h)
            cell = None
            if c.has_cell:
                c_attr = self.attr(layer, "c")
                cell = self.check_array("c", c_attr, (N, H))
                if np.shares_memory(hs_ret, c_attr) or np.shares_memory(h_attr, c_attr):
                    self.problem("protocol", "c", "layer.c shares memory with hs or layer.h")
                self.watch("c", f"layer.c as it was after forward in segment {k}", c_attr, cell)
            self.watch("xs", f"the xs given to forward in segment {k}", xs_in, sd.xs)
            self.check_inputs(None)
            if not hs_ret.flags.writeable:
                self.problem("read_only", "hs", "forward returned a read-only hs")
            elif seg.scribble and self.scribble:
                # The probe (see `drive`): a caller that reuses the returned array.
                hs_ret[...] = np.nan
            else:
                self.watch("hs", f"the hs returned by forward in segment {k}", hs_ret, hs)

            for j, dhs in enumerate(sd.dhs):
                dhs_in = dhs.copy()
                dxs_ret = self.call(layer, "backward", dhs_in, call=j)
                dxs = self.check_array("dxs", dxs_ret, (N, seg.T, D), j)
                now = self.attr(layer, "grads", j)
                if not _holds(now, first_grads):
                    self.problem(
                        "protocol",
                        "grads",
                        "layer.grads no longer holds the arrays it held after construction: "
                        "grads must be overwritten in place (an optimizer may keep references)",
                        j,
                    )
                    now = now if isinstance(now, (list, tuple)) and len(now) == 3 else first_grads
                dWx = self.check_array("dWx", now[0], (D, GH), j)
                dWh = self.check_array("dWh", now[1], (H, GH), j)
                db = self.check_array("db", now[2], (GH,), j)
                dh_attr = self.attr(layer, "dh", j)
                dh = self.check_array("dh", dh_attr, (N, H), j)
                if np.shares_memory(dxs_ret, dh_attr):
                    self.problem(
                        "protocol", "dh", "layer.dh shares memory with the returned dxs", j
                    )
                self.watch("dh", f"layer.dh as it was after backward in segment {k}", dh_attr, dh)
                dc = None
                # The book's TimeLSTM keeps dc to itself; a layer that exposes it is judged.
                dc_attr = self.attr(layer, "dc", j) if c.has_cell else None
                if dc_attr is not None:
                    dc = self.check_array("dc", dc_attr, (N, H), j)
                    if np.shares_memory(dc_attr, dh_attr) or np.shares_memory(dc_attr, dxs_ret):
                        self.problem(
                            "protocol", "dc", "layer.dc shares memory with layer.dh or dxs", j
                        )
                    self.watch("dc", f"layer.dc as it was after backward in segment {k}",
                               dc_attr, dc)  # fmt: skip
                self.watch("dhs", f"the dhs given to backward in segment {k}", dhs_in, dhs)
                self.watch("dxs", f"the dxs returned by backward in segment {k}", dxs_ret, dxs)
                self.check_inputs(j)
                self.out.partial.append(Grads(dxs, dWx, dWh, db, dh, dc))

            for name, p, orig in zip(("Wx", "Wh", "b"), params, originals):
                if not np.array_equal(p, orig):
                    self.problem(
                        "protocol", "params", f"the layer changed its parameter {name} in place"
                    )
                    raise _Stop
            self.out.segments.append(SegmentValues(hs, h, tuple(self.out.partial), cell))
            self.out.partial = []


def _holds(got: Any, arrays: list[Array]) -> bool:
    """Whether `got` is a list (or tuple) holding exactly these array objects (identity,
    not values)."""
    return (
        isinstance(got, (list, tuple))
        and len(got) == len(arrays)
        and all(g is a for g, a in zip(got, arrays))
    )


def _describe_exception(what: str, exc: BaseException) -> str:
    """'forward raised ValueError: msg (at mymodule.py:42)' — the innermost frame in user code."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(frames):
        name = fr.filename.replace("\\", "/")
        if "/crosscheck/" not in name and "numpy" not in name and not name.startswith("<frozen"):
            where = f" (at {fr.filename}:{fr.lineno}: {(fr.line or '').strip()})"
            break
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        code = 0 if exc.code is None else exc.code
        return (
            f"{what} raised SystemExit({_safe_str(exc.code)}): the layer tried to end the "
            f"process with exit code {_safe_str(code)}{where}"
        )
    if isinstance(exc, KeyboardInterrupt):
        return f"{what} raised KeyboardInterrupt: the layer interrupted itself{where}"
    if isinstance(exc, MemoryError):
        return f"{what} ran out of memory (MemoryError) under the worker's memory limit{where}"
    text = _safe_str(exc)
    return f"{what} raised {name}{': ' + text if text else ''}{where}"


def _safe_str(x: object, limit: int = 500) -> str:
    """str(x), shortened; a placeholder when its __str__ itself raises."""
    try:
        text = str(x)
    except BaseException:
        return "<its message cannot be shown: str() of it raised>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def drive(
    factory: LayerFactory,
    case: Case,
    *,
    on_call: CallHook | None = None,
    catch: tuple[type[BaseException], ...] = (Exception, SystemExit),
) -> Observed:
    """Run a fresh layer from `factory` through `case`; never raises for the layer's faults.

    The values are those of a clean run, where nobody writes into what the layer returns
    (the book's callers never do). If the case has segments marked `*`, a second fresh
    layer is then driven as a caller that overwrites each returned hs before backward
    would: if its gradients differ, the result carries a "reads_returned_hs" note.
    on_call: told before each call into the layer (a worker reports it to the judge).
    catch: what a layer may raise and be judged for; a worker passes BaseException, since
    nothing but the layer can raise KeyboardInterrupt there.
    """
    clean = _Driver(factory, case, on_call, catch).run()
    if any(s.scribble for s in case.segments) and clean.segments:
        probe = _Driver(factory, case, on_call, catch, scribble=True).run()
        clean.problems += _reads_returned_hs(case, clean, probe)
    return clean


def _reads_returned_hs(case: Case, clean: Observed, probe: Observed) -> list[Problem]:
    """A note for the first overwritten segment whose gradients the overwrite changed."""
    for k, seg in enumerate(case.segments):
        if not seg.scribble or k >= len(clean.segments):
            continue
        if k >= len(probe.segments):
            what = "backward failed"
        else:
            changed = [
                q
                for a, b in zip(clean.segments[k].backward, probe.segments[k].backward)
                for q in BACKWARD_QUANTITIES
                if getattr(a, q) is not None
                and getattr(b, q) is not None
                and not np.allclose(getattr(a, q), getattr(b, q), rtol=1e-6, atol=0.0)
            ]
            if not changed:
                continue
            what = ", ".join(dict.fromkeys(changed)) + " changed"
        return [
            Problem(
                "reads_returned_hs",
                "hs",
                k,
                None,
                f"after the caller overwrote the hs returned in segment {k}, {what}",
            )
        ]
    return []
