"""The "numeric" oracle: a NumPy float64 forward and finite-difference gradients.

No derivative is written down: every gradient is a central difference of
L = sum(hs * dhs) with a fourth-order stencil. The loss changes L(θ + kδ) - L(θ)
are not found by subtracting two forwards (which would leave only ~1e-16 / δ of
relative precision, and none at all where tanh saturates) but by carrying the
perturbation itself through the recurrence with the exact identity
tanh(a + Δ) - tanh(a) = sinh(Δ) / (cosh(a) cosh(a + Δ)). The changes then keep full
relative precision, so δ can be tiny and the stencil's truncation error vanishes.

All perturbations of one job run as one batch; the columns xs[:, t, d] and h0[:, j]
are moved for all N samples at once (samples do not interact, so each sample's own
loss change gives its entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import Case
from crosscheck.oracles import Oracle, SegmentJob
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

# f'(0) ~ sum_k WEIGHTS[k] f(OFFSETS[k] * STEP) / STEP, truncation error O(STEP^4).
OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])
WEIGHTS = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0
# Rounding no longer grows as the step shrinks (see the module doc), so the step is
# small enough for the truncation error to stay far below 1e-12 even on exploding
# 64-step chains, whose loss bends sharply within ~1e-3 of a parameter.
STEP = 2.0**-30

# Multiply-adds of one segment: (perturbations) x (steps) x (N H (D + H)).
MAX_COST = 2e6


def _perturbations(T: int, D: int, H: int) -> int:
    """Every entry of Wx, Wh and b, the T*D columns of xs and the H columns of h0,
    at each stencil point."""
    return len(OFFSETS) * (D * H + H * H + H + T * D + H)


def _cost(N: int, T: int, D: int, H: int) -> int:
    return _perturbations(T, D, H) * T * N * H * (D + H)


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, xs: Array) -> tuple[Array, Array]:
    """xs (N, T, D), h0 (N, H) -> hs and the pre-activations a_t, both (N, T, H)."""
    N, T, _ = xs.shape
    hs, pre = np.empty((N, T, b.size)), np.empty((N, T, b.size))
    h = h0
    for t in range(T):
        pre[:, t] = h @ Wh + xs[:, t] @ Wx + b
        h = hs[:, t] = np.tanh(pre[:, t])
    return hs, pre


def _loss_changes(job: SegmentJob, hs: Array, pre: Array, moves: tuple[Array, ...]) -> Array:
    """The exact L_n(θ + Δ_p) - L_n(θ) per sample n, for each dhs: (K, P, N).

    moves: the P perturbations ΔWx (P, D, H), ΔWh (P, H, H), Δb (P, 1, H),
    Δh0 (P, 1, H), Δxs (P, 1, T, D).
    """
    dWx, dWh, db, dh0, dxs = moves
    Wx, Wh = job.Wx + dWx, job.Wh + dWh
    dhs = np.stack(job.dhs)
    changes = np.zeros((dhs.shape[0], dWx.shape[0], hs.shape[0]))
    h_prev, dh = job.h0, dh0
    for t in range(hs.shape[1]):
        # a' - a for a' = (h + Δh)(Wh + ΔWh) + (x + Δx)(Wx + ΔWx) + b + Δb
        da = dh @ Wh + h_prev @ dWh + job.xs[:, t] @ dWx + dxs[:, :, t] @ Wx + db
        a = pre[:, t]
        with np.errstate(over="ignore"):  # cosh -> inf means the change is 0
            dh = np.sinh(da) / (np.cosh(a) * np.cosh(a + da))
        changes += np.einsum("pnh,knh->kpn", dh, dhs[:, :, t])
        h_prev = hs[:, t]
    return changes


class NumericOracle:
    """NumPy forward; gradients by fourth-order central differences (small cases only)."""

    name = "numeric"
    accuracy = 1e-8

    def supports(self, case: Case) -> bool:
        return all(_cost(case.N, s.T, case.D, case.H) <= MAX_COST for s in case.segments)

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        return [self._run_one(j) for j in jobs]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        N, T, D = job.xs.shape
        H = job.Wh.shape[0]
        hs, pre = _forward(job.Wx, job.Wh, job.b, job.h0, job.xs)

        # Directions, moved one at a time: each entry of Wx, Wh, b, then each column
        # h0[:, j] and xs[:, t, d].
        edges = np.cumsum([0, D * H, H * H, H, H, T * D])
        n_dir = int(edges[-1])
        # Row (k, j) moves direction j by OFFSETS[k] * STEP.
        shifts = (OFFSETS[:, None, None] * STEP * np.eye(n_dir)).reshape(-1, n_dir)
        P = shifts.shape[0]
        sizes = ((D, H), (H, H), (1, H), (1, H), (1, T, D))
        moves = tuple(shifts[:, edges[k] : edges[k + 1]].reshape(P, *sizes[k]) for k in range(5))
        changes = _loss_changes(job, hs, pre, moves).reshape(len(job.dhs), len(OFFSETS), n_dir, N)
        backward = []
        for change in changes:
            grad = np.einsum("k,kjn->jn", WEIGHTS, change) / STEP  # (n_dir, N)
            total = grad.sum(axis=1)  # a shared weight's change is the sum over samples
            backward.append(
                Grads(
                    dxs=grad[edges[4] :].T.reshape(N, T, D).copy(),
                    dWx=total[: edges[1]].reshape(D, H).copy(),
                    dWh=total[edges[1] : edges[2]].reshape(H, H).copy(),
                    db=total[edges[2] : edges[3]].copy(),
                    dh=grad[edges[3] : edges[4]].T.copy(),
                )
            )
        return SegmentValues(hs=hs, h=hs[:, -1].copy(), backward=tuple(backward))


def oracles() -> list[Oracle]:
    return [NumericOracle()]
