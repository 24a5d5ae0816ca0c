"""What travels on the wire, as plain data: a layer's Observed values, oracle references.

`*_to_wire` build JSON-and-array bodies for crosscheck.wire; `*_from_wire` rebuild the
objects and check everything against the case the judge asked for (how many segments
and calls, every shape, the dtypes), raising WireError on anything else. The judge
never trusts a child to have sent what it should.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crosscheck.cases import Case
from crosscheck.drive import Observed, Problem
from crosscheck.policy import NOTE_KINDS
from crosscheck.quantities import BACKWARD_QUANTITIES, Grads, SegmentValues
from crosscheck.wire import WireError

PROBLEM_KINDS = frozenset({"exception", "shape", "dtype", "protocol"}) | NOTE_KINDS
MAX_TEXT = 4000  # characters of one message a child may send


def _grads_body(g: Grads) -> dict[str, Any]:
    return {q: getattr(g, q) for q in BACKWARD_QUANTITIES if getattr(g, q) is not None}


def values_to_wire(values: list[SegmentValues]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in values:
        body = {"hs": v.hs, "h": v.h, "backward": [_grads_body(g) for g in v.backward]}
        if v.c is not None:
            body["c"] = v.c
        out.append(body)
    return out


def observed_to_wire(obs: Observed) -> dict[str, Any]:
    return {
        "segments": values_to_wire(obs.segments),
        "partial": [_grads_body(g) for g in obs.partial],
        "problems": [p.__dict__ for p in obs.problems],
    }


def _array(x: Any, shape: tuple[int, ...], dtypes: tuple[str, ...], what: str) -> Any:
    if not isinstance(x, np.ndarray):
        raise WireError(f"{what} is not an array")
    if x.shape != shape or x.dtype.name not in dtypes:
        raise WireError(f"{what} has shape {x.shape} and dtype {x.dtype}, expected {shape}")
    return x


def _grads(x: Any, case: Case, k: int, dtypes: tuple[str, ...], what: str) -> Grads:
    if not isinstance(x, dict):
        raise WireError(f"{what} is not a record")
    N, T, D, H, GH = case.batch(k), case.segments[k].T, case.D, case.H, case.gates * case.H
    shapes = {"dxs": (N, T, D), "dWx": (D, GH), "dWh": (H, GH), "db": (GH,), "dh": (N, H)}
    got = {q: _array(x.get(q), s, dtypes, f"{what} {q}") for q, s in shapes.items()}
    dc = x.get("dc")  # the LSTM's, where the layer exposes it; nothing else has one
    if dc is not None and not case.has_cell:
        raise WireError(f"{what} has a dc, but a {case.kind} layer has no cell state")
    return Grads(**got, dc=None if dc is None else _array(dc, (N, H), dtypes, f"{what} dc"))


def _segments(x: Any, case: Case, dtypes: tuple[str, ...]) -> list[SegmentValues]:
    if not isinstance(x, list) or len(x) > len(case.segments):
        raise WireError("segments is not a list of at most the case's segments")
    out = []
    for k, (v, seg) in enumerate(zip(x, case.segments)):
        if not isinstance(v, dict) or not isinstance(v.get("backward"), list):
            raise WireError(f"segment {k} is not a record")
        if len(v["backward"]) != seg.backwards:
            raise WireError(f"segment {k} has {len(v['backward'])} backward calls")
        N = case.batch(k)
        hs = _array(v.get("hs"), (N, seg.T, case.H), dtypes, f"segment {k} hs")
        h = _array(v.get("h"), (N, case.H), dtypes, f"segment {k} h")
        back = tuple(_grads(g, case, k, dtypes, f"segment {k}") for g in v["backward"])
        c = None  # the LSTM's cell state: every LSTM segment has one, no other does
        if case.has_cell or v.get("c") is not None:
            if not case.has_cell:
                raise WireError(f"segment {k} has a c, but a {case.kind} layer has no cell state")
            c = _array(v.get("c"), (N, case.H), dtypes, f"segment {k} c")
        out.append(SegmentValues(hs, h, back, c))
    return out


def values_from_wire(x: Any, case: Case) -> list[SegmentValues]:
    """An oracle's float64 reference of every segment of `case`."""
    values = _segments(x, case, ("float64",))
    if len(values) != len(case.segments):
        raise WireError("a reference must cover every segment")
    return values


def _text(x: Any, what: str) -> str:
    if not isinstance(x, str):
        raise WireError(f"{what} is not text")
    return x if len(x) <= MAX_TEXT else x[: MAX_TEXT - 3] + "..."


def _problem(x: Any, case: Case) -> Problem:
    if not isinstance(x, dict) or x.get("kind") not in PROBLEM_KINDS:
        raise WireError("a problem record has no known kind")
    segment, call = x.get("segment"), x.get("call")
    if not (isinstance(segment, int) and 0 <= segment < len(case.segments)):
        raise WireError("a problem record names no segment of the case")
    if not (call is None or (isinstance(call, int) and 0 <= call < 2)):
        raise WireError("a problem record names no backward call")
    return Problem(x["kind"], _text(x.get("quantity"), "quantity")[:40], segment, call,
                   _text(x.get("message"), "message"))  # fmt: skip


def observed_from_wire(x: Any, case: Case) -> Observed:
    """What a worker says the layer did on `case`, checked against the case."""
    if not isinstance(x, dict):
        raise WireError("the result is not a record")
    # float32 in a float64 case is judged at float32's tolerance (crosscheck.policy).
    dtypes = (case.dtype, "float32")
    segments = _segments(x.get("segments"), case, dtypes)
    partial_raw = x.get("partial")
    if not isinstance(partial_raw, list) or len(partial_raw) > 2:
        raise WireError("partial is not a list of at most two backward calls")
    k = min(len(segments), len(case.segments) - 1)
    partial = [_grads(g, case, k, dtypes, "partial") for g in partial_raw]
    problems_raw = x.get("problems")
    if not isinstance(problems_raw, list) or len(problems_raw) > 10_000:
        raise WireError("problems is not a list")
    problems = [_problem(p, case) for p in problems_raw]
    return Observed(segments, problems, partial)
