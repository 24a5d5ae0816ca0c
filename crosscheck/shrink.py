"""Shrinking: the smallest case that still fails, and its numbers, for a student to follow.

`shrink` reduces a failing case greedily — fewer segments, then shorter segments,
smaller N, H and D, float64 if it still fails, simpler segment flags, a plain weight
regime — asking a predicate (as hypothesis's `find` does) how each candidate fails and
keeping it when it fails the same way (a failure of the same kind in the same quantity).
It stops after MAX_CALLS questions or MAX_SECONDS. `numbers` prints the first wrong
entries of a case beside the reference, and the case's inputs when they are few enough
to read. Nothing here runs a layer: the predicate does that, in a worker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck import compare
from crosscheck.cases import Case, Segment, Start
from crosscheck.drive import Observed
from crosscheck.quantities import Position, SegmentValues, positions, value_at

Array = NDArray[Any]
Signature = frozenset[tuple[str, str]]  # (failure kind, quantity); empty when it passes
Predicate = Callable[[Case], Signature]

MAX_CALLS = 60
MAX_SECONDS = 5.0
# The case's inputs are printed when every array has at most this many entries.
MAX_PRINTED_INPUT = 8


class _Checker:
    """Asks the predicate within a budget, remembering what it has seen."""

    def __init__(self, predicate: Predicate, max_calls: int, max_seconds: float) -> None:
        self.predicate, self.max_calls, self.max_seconds = predicate, max_calls, max_seconds
        self.calls, self.started = 0, time.perf_counter()
        self.seen: dict[str, Signature] = {}

    def exhausted(self) -> bool:
        return self.calls >= self.max_calls or time.perf_counter() - self.started > self.max_seconds

    def signature(self, case: Case) -> Signature:
        if case.id not in self.seen:
            self.calls += 1
            self.seen[case.id] = self.predicate(case)
        return self.seen[case.id]


# --------------------------------------------------------------------------------------
# Candidates, smallest first within each kind of reduction.


def _replace(case: Case, **changes: Any) -> Case | None:
    """A copy of `case` with `changes`, or None when that is not a valid case."""
    try:
        return dataclasses.replace(case, **changes)
    except ValueError:
        return None


def _with_segment(case: Case, i: int, segment: Segment) -> Case | None:
    """`case` with segment i replaced."""
    return _replace(case, segments=(*case.segments[:i], segment, *case.segments[i + 1 :]))


def _smaller(n: int) -> list[int]:
    """Sizes to try instead of n, smallest first."""
    return sorted({m for m in (1, 2, n // 2, n - 1) if 1 <= m < n})


def _fewer_segments(case: Case) -> Iterator[Case | None]:
    for i in reversed(range(len(case.segments))):
        segs = list(case.segments[:i] + case.segments[i + 1 :])
        if segs and segs[0].start in ("c", "r"):
            segs[0] = dataclasses.replace(segs[0], start="z")  # nothing came before it now
        yield _replace(case, segments=tuple(segs)) if segs else None


def _shorter_segments(case: Case) -> Iterator[Case | None]:
    """All segments shortened together first (some bugs need equal lengths), then one by one."""
    longest = max(s.T for s in case.segments)
    if len(case.segments) > 1:
        for T in _smaller(longest):
            shorter = tuple(dataclasses.replace(s, T=min(s.T, T)) for s in case.segments)
            yield _replace(case, segments=shorter)
    for i, seg in enumerate(case.segments):
        for T in _smaller(seg.T):
            yield _with_segment(case, i, dataclasses.replace(seg, T=T))


def _smaller_size(dim: str) -> Callable[[Case], Iterator[Case | None]]:
    def candidates(case: Case) -> Iterator[Case | None]:
        for n in _smaller(getattr(case, dim)):
            yield _replace(case, **{dim: n})

    return candidates


def _float64(case: Case) -> Iterator[Case | None]:
    if case.dtype != "float64":
        yield _replace(case, dtype="float64")


def _simpler_flags(case: Case) -> Iterator[Case | None]:
    """One backward, no scribbling, the plainest start; stateless if nothing is carried."""
    if case.stateful and all(s.start == "z" for s in case.segments):
        yield _replace(case, stateful=False)
    for i, seg in enumerate(case.segments):
        plainest: Start = "z" if i == 0 else "c"
        simpler_segments = (
            dataclasses.replace(seg, backwards=1),
            dataclasses.replace(seg, scribble=False),
            dataclasses.replace(seg, start=plainest),
            dataclasses.replace(seg, N=None),
        )
        for simpler in simpler_segments:
            if simpler != seg:
                yield _with_segment(case, i, simpler)


def _plain_regime(case: Case) -> Iterator[Case | None]:
    if case.regime != "moderate":
        yield _replace(case, regime="moderate")


REDUCTIONS: tuple[Callable[[Case], Iterator[Case | None]], ...] = (
    _fewer_segments,
    _shorter_segments,
    _smaller_size("N"),
    _smaller_size("H"),
    _smaller_size("D"),
    _float64,
    _simpler_flags,
    _plain_regime,
)


def shrink(
    case: Case,
    fails: Predicate,
    *,
    max_calls: int = MAX_CALLS,
    max_seconds: float = MAX_SECONDS,
) -> Case:
    """The smallest case found that fails like `case` does (at least one failure of the same
    kind in the same quantity, a mismatch if `case` has one); `case` itself if no smaller
    one fails or it does not fail. fails(c): the (kind, quantity) of c's failures.

    Greedy: each kind of reduction in REDUCTIONS order, its candidates smallest first, the
    first that still fails is kept; repeated until a whole pass changes nothing or the
    budget runs out. No candidate is larger than `case` in any dimension.
    """
    check = _Checker(fails, max_calls, max_seconds)
    target = check.signature(case)
    if not target:
        return case
    if any(kind == "mismatch" for kind, _ in target):
        # Keep a wrong value to show: a smaller case failing only on protocol would not.
        target = frozenset(t for t in target if t[0] == "mismatch")
    check.started = time.perf_counter()  # the first call may have started a process
    changed = True
    while changed and not check.exhausted():
        changed = False
        for reduce in REDUCTIONS:
            for cand in reduce(case):
                if check.exhausted():
                    return case
                if cand is not None and check.signature(cand) & target:
                    case, changed = cand, True
                    break
    return case


# --------------------------------------------------------------------------------------
# The numbers of a (small) failing case.


def _fmt(a: Array) -> str:
    """On one line, 6 significant digits: [[1.255474], [-0.583766]]."""
    text = np.array2string(np.asarray(a, dtype=np.float64), precision=6, separator=", ")
    return " ".join(text.split()).replace("[ ", "[")


def _digits(observed: float, reference: float) -> int:
    """Significant digits that show where two numbers part: 6, or more for close ones."""
    rel = abs(observed - reference) / max(abs(reference), 1e-300)
    if not np.isfinite(rel) or rel == 0:
        return 6
    return int(np.clip(np.ceil(-np.log10(rel)) + 2, 6, 17))


def _inputs(case: Case) -> list[str]:
    """The case's arrays, when each is small enough to read."""
    data = case.data()
    arrays = [("Wx", data.Wx), ("Wh", data.Wh), ("b", data.b)]
    for k, sd in enumerate(data.segments):
        tag = f" (segment {k})" if len(data.segments) > 1 else ""
        arrays.append((f"xs{tag}", sd.xs))
        if sd.h_set is not None:
            arrays.append((f"set_state h{tag}", sd.h_set))
        if sd.c_set is not None:
            arrays.append((f"set_state c{tag}", sd.c_set))
        for j, dhs in enumerate(sd.dhs):
            arrays.append((f"dhs{tag}{f' call {j}' if len(sd.dhs) > 1 else ''}", dhs))
    if any(a.size > MAX_PRINTED_INPUT for _, a in arrays):
        return []
    return [f"input {name} = {_fmt(a)}" for name, a in arrays]


def numbers(
    case: Case,
    observed: Observed,
    reference: Sequence[SegmentValues] | None,
    accuracy: float,
    limit: int = 8,
    per_quantity: int = 2,
    limits: Mapping[Position, float] | None = None,
) -> list[str]:
    """For `case`: the layer's problems, then up to `limit` wrong entries (at most
    `per_quantity` per quantity and position), each as index, layer value, reference value;
    then the inputs if they are tiny. reference: an oracle's (None if it had none)."""
    lines = [f"segment {p.segment}: {p.message}" for p in observed.problems]
    if reference is None:
        return lines + _inputs(case)
    wrong: list[str] = []
    for p in positions(observed.segments):
        k, j, q = p
        obs, want = value_at(observed.segments, p), value_at(reference, p)
        limit_q = (limits or {}).get(p) or compare.limit(case, p, accuracy)
        diff = np.abs(obs.astype(np.float64) - want) / compare.scale(want)
        where = f"segment {k}" + ("" if j is None else f", backward call {j}")
        for idx in np.argwhere(~(diff <= limit_q))[:per_quantity]:
            i = tuple(int(x) for x in idx)
            o, r = float(obs[i]), float(want[i])
            n = _digits(o, r)
            wrong.append(
                f"{q}{list(i)} ({where}): layer {o + 0.0:.{n}g}, reference {r + 0.0:.{n}g}"
            )
    return lines + wrong[:limit] + _inputs(case)
