"""Oracles: independent float64 recomputations of a case of any layer kind.

An oracle only does the math of one segment (forward from a given h0, and c0 for the
LSTM, then the vector-Jacobian product for each dhs), for many segments at once so that
it can batch them. `reference` walks each case's chain of segments (zeros, carried,
set or reset initial states) the same way for every oracle and kind.

Backends and their oracles (each framework imported only when asked for):
    jax      lax.scan + jax.vjp, jitted, vmapped over cases of one shape
    torch    autograd over the same loop, and the real torch.nn.RNN module
    numeric  central finite differences in NumPy (small cases only)
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from crosscheck.backends import BACKENDS, BackendUnavailable, available_backends, check_backend
from crosscheck.cases import CELL_STATE, Case
from crosscheck.quantities import SegmentValues

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "Oracle",
    "SegmentJob",
    "available_backends",
    "check_backend",
    "check_kinds",
    "load_backend",
    "reference",
]

Array = NDArray[Any]


@dataclass(frozen=True)
class SegmentJob:
    """One segment to recompute, all float64: Wx (D, G*H), Wh (H, G*H), b (G*H,),
    h0 (N, H), xs (N, T, D), and one dhs (N, T, H) per backward call; for the LSTM
    (kind "lstm") also c0 (N, H). G = crosscheck.cases.GATES[kind]."""

    Wx: Array
    Wh: Array
    b: Array
    h0: Array
    xs: Array
    dhs: tuple[Array, ...]
    kind: str = "rnn"
    c0: Array | None = None

    def __post_init__(self) -> None:
        if (self.c0 is not None) != (self.kind in CELL_STATE):
            raise ValueError(f"a {self.kind} job {'needs' if self.c0 is None else 'has no'} c0")

    @property
    def H(self) -> int:
        return int(self.Wh.shape[0])

    @property
    def cell0(self) -> Array:
        """c0 of an LSTM job (checked to be there when the job was made)."""
        assert self.c0 is not None
        return self.c0


def check_kinds(oracle: Oracle, jobs: Sequence[SegmentJob]) -> None:
    """Refuse jobs of a kind `oracle` does not recompute (its `supports` keeps them out)."""
    for job in jobs:
        if job.kind not in oracle.kinds:
            raise ValueError(f"the {oracle.name} oracle has no layer kind {job.kind!r}")


class Oracle(Protocol):
    """name: shown in reports; accuracy: the relative error its own results may carry;
    kinds: the layer kinds (crosscheck.cases.KINDS) it recomputes."""

    name: str
    accuracy: float

    @property
    def kinds(self) -> tuple[str, ...]:
        """The layer kinds it recomputes."""
        ...

    def supports(self, case: Case) -> bool:
        """Whether this oracle can check `case` (finite differences skip large ones)."""
        ...

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        """Recompute each job in float64; results in the same order."""
        ...


def load_backend(name: str) -> list[Oracle]:
    """The oracles of a backend (each says which kinds it supports), imported into this
    process (crosscheck.references runs this in a process of its own); raises
    BackendUnavailable if its framework is missing."""
    check_backend(name)
    oracles: list[Oracle] = importlib.import_module(BACKENDS[name][0]).oracles()
    return oracles


def reference(oracle: Oracle, cases: Sequence[Case]) -> list[list[SegmentValues] | None]:
    """Each case's per-segment reference, float64, following its chain of initial states.

    Segment k of a case starts from zeros (start z or r), from the case's set_state
    arrays (s), or from the reference's own final h (and c) of segment k-1 (c). Returns
    None for cases the oracle does not support.
    """
    results: list[list[SegmentValues] | None] = [[] if oracle.supports(c) else None for c in cases]
    data = [c.data() if r is not None else None for c, r in zip(cases, results)]
    depth = max((len(c.segments) for c in cases), default=0)
    for k in range(depth):
        idx, jobs = [], []
        for i, (case, d) in enumerate(zip(cases, data)):
            res = results[i]
            if d is None or res is None or k >= len(case.segments):
                continue
            seg, sd = case.segments[k], d.segments[k]
            zeros = np.zeros((case.batch(k), case.H))
            c0 = zeros.copy() if case.has_cell else None
            if seg.start == "c" and case.stateful:
                h0 = res[k - 1].h.copy()  # an oracle must not be able to edit a result
                c_prev = res[k - 1].c
                c0 = None if c_prev is None else c_prev.copy()
            elif seg.start == "s" and case.stateful:
                assert sd.h_set is not None
                h0 = sd.h_set.astype(np.float64)
                if sd.c_set is not None:
                    c0 = sd.c_set.astype(np.float64)
            else:
                h0 = zeros
            f64 = np.float64
            jobs.append(
                SegmentJob(
                    d.Wx.astype(f64),
                    d.Wh.astype(f64),
                    d.b.astype(f64),
                    h0,
                    sd.xs.astype(f64),
                    tuple(x.astype(f64) for x in sd.dhs),
                    case.kind,
                    c0,
                )
            )
            idx.append(i)
        for i, values in zip(idx, oracle.run(jobs)):
            res = results[i]
            assert res is not None
            res.append(values)
    return results
