"""The "numeric" oracle: a NumPy float64 forward and finite-difference gradients.

No derivative is written down: every gradient is a central difference of
L = sum(hs * dhs) with a fourth-order stencil. All perturbed copies of one job run
as a single batched forward, and the rows of xs and h0 are perturbed for all N
samples at once (samples do not interact, so each one's own loss gives its entry).
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

# f'(0) ~ sum_k W[k] f(OFFSETS[k] * STEP) / STEP, truncation error O(STEP^4).
OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])
WEIGHTS = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0
# A power of two, so x +- k * STEP is exact for |x| < 1. Balances truncation
# (~STEP^4 * f''''') against rounding (~1e-16 * |L| / STEP); chosen by measuring
# 2^-7 .. 2^-12 against the autodiff oracles.
STEP = 2.0**-9

# Multiply-adds of one job: (perturbed copies) x (steps) x (N H (D + H)).
# 2e6 keeps the slowest supported case near 50 ms and admits ~30% of the cases
# drawn by crosscheck.cases.generate_cases (measured: 30.2% of 2000 cases).
MAX_COST = 2e6


def _copies(T: int, D: int, H: int) -> int:
    """Perturbed copies per segment: every entry of Wx, Wh, b, plus the T*D columns
    of xs and the H columns of h0 (each shared by the N samples), 4 stencil points each."""
    return len(OFFSETS) * (D * H + H * H + H + T * D + H)


def _cost(N: int, T: int, D: int, H: int) -> int:
    return _copies(T, D, H) * T * N * H * (D + H)


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, xs: Array) -> Array:
    """Batched over a leading axis P (or 1, broadcast): Wx (P, D, H), Wh (P, H, H),
    b (P, 1, H), h0 (P, N, H), xs (P, N, T, D) -> hs (P, N, T, H)."""
    P = max(a.shape[0] for a in (Wx, Wh, b, h0, xs))
    N, T = xs.shape[1], xs.shape[2]
    hs = np.empty((P, N, T, Wh.shape[-1]))
    h = h0
    for t in range(T):
        h = np.tanh(h @ Wh + xs[:, :, t] @ Wx + b)
        hs[:, :, t] = h
    return hs


class NumericOracle:
    """NumPy forward; gradients by fourth-order central differences (small cases only)."""

    name = "numeric"
    # Measured: at most 6.7e-10 relative disagreement with "jax" over the 123 of 400
    # cases it supports (200 per dtype; worst: a saturating float32 case).
    accuracy = 1e-8

    def supports(self, case: Case) -> bool:
        return all(_cost(case.N, s.T, case.D, case.H) <= MAX_COST for s in case.segments)

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        return [self._run_one(j) for j in jobs]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        Wx, Wh, b, h0, xs = (np.array(a, dtype=np.float64) for a in
                             (job.Wx, job.Wh, job.b, job.h0, job.xs))  # fmt: skip
        N, T, D = xs.shape
        H = Wh.shape[0]
        hs = _forward(Wx[None], Wh[None], b[None, None], h0[None], xs[None])[0]

        # Directions moved one at a time: each entry of Wx, Wh, b, then each column
        # xs[:, t, d] and h0[:, j] (all N samples at once).
        edges = np.cumsum([0, D * H, H * H, H, T * D, H])
        n_dir = int(edges[-1])
        # Row (k, j) of `shifts` moves direction j by OFFSETS[k] * STEP.
        shifts = (OFFSETS[:, None, None] * STEP * np.eye(n_dir)).reshape(-1, n_dir)
        sWx, sWh, sb, sxs, sh0 = (shifts[:, edges[k] : edges[k + 1]] for k in range(5))
        P = shifts.shape[0]
        hs_p = _forward(
            Wx[None] + sWx.reshape(P, D, H),
            Wh[None] + sWh.reshape(P, H, H),
            (b[None] + sb)[:, None, :],
            h0[None] + sh0[:, None, :],
            xs[None] + sxs.reshape(P, 1, T, D),
        )
        backward = []
        for dhs in job.dhs:
            # Per-sample losses (P, N); the stencil runs along the offsets axis.
            losses = np.einsum("pnth,nth->pn", hs_p, dhs).reshape(len(OFFSETS), n_dir, N)
            grad = np.einsum("k,kjn->jn", WEIGHTS, losses) / STEP  # (n_dir, N)
            total = grad.sum(axis=1)  # shared weights see the sum over samples
            g = [total[edges[k] : edges[k + 1]] for k in range(3)]
            backward.append(
                Grads(
                    dxs=grad[edges[3] : edges[4]].T.reshape(N, T, D).copy(),
                    dWx=g[0].reshape(D, H).copy(),
                    dWh=g[1].reshape(H, H).copy(),
                    db=g[2].copy(),
                    dh=grad[edges[4] : edges[5]].T.copy(),
                )
            )
        return SegmentValues(hs=hs, h=hs[:, -1].copy(), backward=tuple(backward))


def oracles() -> list[Oracle]:
    return [NumericOracle()]
