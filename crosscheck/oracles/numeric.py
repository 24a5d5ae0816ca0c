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

# The cost of a case in ns, roughly: per segment, T * (STEP_NS + PERTURBATION_NS * P * N * H)
# for P perturbed copies (fit on ~600 generated cases; sinh and cosh dominate). The
# bound keeps every supported case near 50 ms or less (measured: mean 4 ms, max 42 ms)
# and admits 90% of the cases generate_cases draws (of 4000 drawn; 1e6 would admit 36%).
STEP_NS = 60_000
PERTURBATION_NS = 15
MAX_COST_NS = 40e6


def _shapes(T: int, D: int, H: int) -> dict[str, tuple[int, ...]]:
    """The directions moved, by input: every entry of Wx, Wh and b; the columns
    h0[:, j] and xs[:, t, d], each moved for all samples at once."""
    return {"Wx": (D, H), "Wh": (H, H), "b": (H,), "h0": (H,), "xs": (T, D)}


def _cost_ns(N: int, T: int, D: int, H: int) -> int:
    P = len(OFFSETS) * sum(int(np.prod(s)) for s in _shapes(T, D, H).values())
    return T * (STEP_NS + PERTURBATION_NS * P * N * H)


def _forward(job: SegmentJob) -> tuple[Array, Array]:
    """hs and the pre-activations a_t, both (N, T, H)."""
    N, T, _ = job.xs.shape
    hs, pre = np.empty((N, T, job.b.size)), np.empty((N, T, job.b.size))
    h = job.h0
    for t in range(T):
        pre[:, t] = h @ job.Wh + job.xs[:, t] @ job.Wx + job.b
        h = hs[:, t] = np.tanh(pre[:, t])
    return hs, pre


def _loss_changes(job: SegmentJob, hs: Array, pre: Array) -> dict[str, Array]:
    """The exact L_n(θ + OFFSETS[k] * STEP * e_j) - L_n(θ) for every sample n, stencil
    point k and direction j of each input: {input: (K, len(OFFSETS), n_dir, N)}, one K
    per dhs. All perturbations of the segment move through time as one batch."""
    N, T, H = hs.shape
    Wx, Wh, xs = job.Wx, job.Wh, job.xs
    slots = _shapes(T, D=Wx.shape[0], H=H)
    # Rows of the batch: each input's block holds (stencil point, direction) pairs.
    shift, rows, P = {}, {}, 0
    for name, slot in slots.items():
        n_dir = int(np.prod(slot))
        shift[name] = (OFFSETS[:, None, None] * STEP * np.eye(n_dir)).reshape(-1, *slot)
        rows[name] = slice(P, P + len(OFFSETS) * n_dir)
        P += len(OFFSETS) * n_dir
    dhs = np.stack(job.dhs)
    changes = np.zeros((len(dhs), P, N))
    dh = np.zeros((P, N, H))  # Δh_{t-1} of every perturbation
    dh[rows["h0"]] = shift["h0"][:, None, :]
    h_prev = job.h0
    for t in range(T):
        # a' - a for a' = (h + Δh)(Wh + ΔWh) + (x + Δx)(Wx + ΔWx) + b + Δb, where each
        # row moves only one of ΔWx, ΔWh, Δb, Δx
        da = (dh.reshape(P * N, H) @ Wh).reshape(P, N, H)
        da[rows["Wx"]] += xs[:, t] @ shift["Wx"]
        da[rows["Wh"]] += (h_prev + dh[rows["Wh"]]) @ shift["Wh"]
        da[rows["b"]] += shift["b"][:, None, :]
        da[rows["xs"]] += (shift["xs"][:, t] @ Wx)[:, None, :]
        a = pre[:, t]
        with np.errstate(over="ignore"):  # cosh -> inf: the change is 0
            dh = np.sinh(da) / (np.cosh(a) * np.cosh(a + da))
        for k in range(len(dhs)):
            changes[k] += (dh * dhs[k, :, t]).sum(axis=-1)
        h_prev = hs[:, t]
    K = len(dhs)
    return {m: changes[:, r].reshape(K, len(OFFSETS), -1, N) for m, r in rows.items()}


class NumericOracle:
    """NumPy forward; gradients by fourth-order central differences (small cases only)."""

    name = "numeric"
    # Measured over 2000 generated cases (1000 per dtype; 1827 supported): at most
    # 1.1e-13 relative disagreement with any other oracle in compare's scale (max |ref|
    # floored at compare.FLOOR), alike for float32 and float64 cases; without the floor
    # at most 4.9e-12 (with "jax" and "torch"), on gradients of size ~1e-4. Spot checks
    # against 50-digit mpmath came out within 1e-15.
    accuracy = 1e-12

    def supports(self, case: Case) -> bool:
        segments = enumerate(case.segments)
        cost = sum(_cost_ns(case.batch(k), s.T, case.D, case.H) for k, s in segments)
        return cost <= MAX_COST_NS

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        return [self._run_one(j) for j in jobs]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        N, T, D = job.xs.shape
        H = job.Wh.shape[0]
        hs, pre = _forward(job)
        # dL_n / d(direction), per dhs: {input: (K, n_dir, N)}
        g = {
            m: np.tensordot(WEIGHTS, c, axes=(0, 1)) / STEP
            for m, c in _loss_changes(job, hs, pre).items()
        }
        backward = tuple(
            Grads(
                dxs=g["xs"][k].T.reshape(N, T, D).copy(),
                # a parameter shared by all samples changes the sum of their losses
                dWx=g["Wx"][k].sum(axis=1).reshape(D, H),
                dWh=g["Wh"][k].sum(axis=1).reshape(H, H),
                db=g["b"][k].sum(axis=1),
                dh=g["h0"][k].T.copy(),
            )
            for k in range(len(job.dhs))
        )
        return SegmentValues(hs=hs, h=hs[:, -1].copy(), backward=backward)


def oracles() -> list[Oracle]:
    return [NumericOracle()]
