"""The book's GRU in plain NumPy, able to make one known mistake at a time.

`MISTAKES` lists them in plain words, each with the line of math it breaks;
`simulate(case, data, mistake)` computes what a TimeGRU with that one mistake returns
on a case, in float64, or in float32 as the float32 twin (mistake ""): per step one
product of x_t with Wx for the three blocks and one of h_{t-1} with Whz, Whr; each
weight gradient one product over the N·T rows after the loop. Written from the
formulas, it shares no code with the layers it judges.

Notation (the book's row vectors; the blocks of Wx, Wh and b in the order z, r, ĥ), for
t = 0 .. T-1 and h_{-1} the segment's initial state:

    z = σ(x_t Wxz + h_{t-1} Whz + bz),   r = σ(x_t Wxr + h_{t-1} Whr + br)
    ĥ = tanh(x_t Wxh + (r ⊙ h_{t-1}) Whh + bh),   h_t = (1 − z) ⊙ h_{t-1} + z ⊙ ĥ

    dh = dhs_t + dh_next (zero at T-1),   dt = dh ⊙ z ⊙ (1 − ĥ²),   dhr = dt Whh^T
    dz = dh ⊙ (ĥ − h_{t-1}),  dtz = dz ⊙ z(1 − z),   dr = dhr ⊙ h_{t-1},  dtr = dr ⊙ r(1 − r)
    dh_prev = dh ⊙ (1 − z) + r ⊙ dhr + dtz Whz^T + dtr Whr^T   (the next step's dh_next)
    dA_t = [dtz, dtr, dt]:  dWx = Σ_t x_t^T dA_t,  db = Σ_t Σ_n dA_t[n],  dx_t = dA_t Wx^T
    dWh = Σ_t [h_{t-1}^T dtz, h_{t-1}^T dtr, (r ⊙ h_{t-1})^T dt],   layer.dh = dh_prev of step 0
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from crosscheck import mistakes as rnn
from crosscheck.cases import Case, CaseData
from crosscheck.mistakes import Mistake
from crosscheck.models import sigmoid
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

HS_LINE = "h_t = (1 − z) ⊙ h_{t-1} + z ⊙ ĥ with ĥ = tanh(x_t Wxh + (r ⊙ h_{t-1}) Whh + bh)"
DH_LINE = "dh_prev = dh ⊙ (1 − z) + r ⊙ (dt Whh^T) + dtz Whz^T + dtr Whr^T"
MATH = {
    "hs": HS_LINE,
    "h": "layer.h = h_{T-1}, the last hidden state",
    "dxs": "dx_t = [dtz, dtr, dt] Wx^T",
    "dWx": "dWx = Σ_t x_t^T [dtz, dtr, dt]",
    "dWh": "dWh = Σ_t [h_{t-1}^T dtz, h_{t-1}^T dtr, (r ⊙ h_{t-1})^T dt]",
    "db": "db = Σ_t Σ_n [dtz, dtr, dt][n]",
    "dh": "dh = the dh_prev of step 0, " + DH_LINE,
}

_SHARED = rnn.BY_NAME
# Order matters where two mistakes give the same values on a case: the first is named
# (the others as "also matches"), so narrower mistakes come before broader ones.
MISTAKES: tuple[Mistake, ...] = (
    Mistake("gru_no_dh_carry",
            "the gradient carried back from step t+1 is not added (dh = dhs_t)",
            "h_t feeds both hs and step t+1, so both gradients add up: dh = dhs_t + dh_next, "
            "dh_next being step t+1's " + DH_LINE),
    _SHARED["grads_step0_only"],
    Mistake("gru_no_one_minus_z",
            "the direct path h_{t-1} → h_t is left out of the gradient: dh_prev starts from 0 "
            "instead of dh ⊙ (1 − z)",
            "h_t = (1 − z) ⊙ h_{t-1} + z ⊙ ĥ, so " + DH_LINE),
    Mistake("gru_dz_sign",
            "the update gate's gradient has its sign flipped, dz = dh ⊙ (h_{t-1} − ĥ)",
            "h_t = (1 − z) ⊙ h_{t-1} + z ⊙ ĥ, so dz = dh ⊙ (ĥ − h_{t-1})"),
    Mistake("gru_dr_without_h",
            "the reset gate's gradient leaves out the factor h_{t-1} (dr = dhr instead of "
            "dhr ⊙ h_{t-1})",
            "ĥ sees r only through r ⊙ h_{t-1}, so dr = (dt Whh^T) ⊙ h_{t-1}"),
    Mistake("gru_sigmoid_grad_as_sigma",
            "the sigmoid's derivative is taken as σ itself instead of σ(1 − σ) for the gates "
            "z and r (dtz = dz ⊙ z, dtr = dr ⊙ r)",
            "σ'(a) = σ(a)(1 − σ(a)), so dtz = dz ⊙ z(1 − z) and dtr = dr ⊙ r(1 − r)"),
    _SHARED["set_state_ignored"],
    _SHARED["reset_ignored"],
    _SHARED["stateful_ignored"],
    _SHARED["stateless_carries"],
    _SHARED["grads_accumulate"],
    Mistake("gru_r_after_product",
            "the reset gate is applied after the product, ĥ = tanh(x_t Wxh + r ⊙ (h_{t-1} Whh) "
            "+ bh) (PyTorch's formula without its second bias), backward to match",
            "the book's GRU resets the state before the product: " + HS_LINE),
)  # fmt: skip


# --------------------------------------------------------------------------------------
# The model: one TimeGRU that can make one mistake.


class _Forward(NamedTuple):
    """What one forward caches, each (N, T, H): z, r, ĥ, h_{t-1}, h_{t-1} Whh, and hs."""

    z: Array
    r: Array
    h_hat: Array
    h_prev: Array
    u: Array  # h_{t-1} Whh (read by gru_r_after_product only)
    hs: Array


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, xs: Array, mistake: str) -> _Forward:
    """One forward from h0 (N, H) over xs (N, T, D)."""
    N, T, _ = xs.shape
    H = Wh.shape[0]
    after = mistake == "gru_r_after_product"
    z, r, h_hat, h_prev, u, hs = (np.empty((N, T, H), dtype=Wh.dtype) for _ in range(6))
    u[...] = 0
    h = h0
    for t in range(T):
        XA = np.dot(xs[:, t], Wx) + b  # the three blocks' x_t W + b in one product
        HA = np.dot(h, Wh if after else Wh[:, : 2 * H])
        h_prev[:, t] = h
        z[:, t] = sigmoid(XA[:, :H] + HA[:, :H])
        r[:, t] = sigmoid(XA[:, H : 2 * H] + HA[:, H : 2 * H])
        if after:
            u[:, t] = HA[:, 2 * H :]
            h_hat[:, t] = np.tanh(XA[:, 2 * H :] + r[:, t] * u[:, t])
        else:
            h_hat[:, t] = np.tanh(XA[:, 2 * H :] + np.dot(r[:, t] * h, Wh[:, 2 * H :]))
        h = (1 - z[:, t]) * h + z[:, t] * h_hat[:, t]
        hs[:, t] = h
    return _Forward(z, r, h_hat, h_prev, u, hs)


def _backward(Wx: Array, Wh: Array, xs: Array, fw: _Forward, dhs: Array, mistake: str) -> Grads:
    """One backward(dhs) of the segment whose forward cached `fw`."""
    N, T, D = xs.shape
    H = Wh.shape[0]
    after = mistake == "gru_r_after_product"
    WhhT = np.ascontiguousarray(Wh[:, 2 * H :].T)
    WzrT = np.ascontiguousarray(Wh[:, : 2 * H].T)
    dAs = np.empty((N, T, 3 * H), dtype=Wh.dtype)  # [dtz, dtr, dt] per step
    dhh = np.empty((N, T, H), dtype=Wh.dtype)  # the gradient of the Whh product's output
    dh_next = np.zeros((N, H), dtype=Wh.dtype)
    for t in range(T - 1, -1, -1):
        z, r, h_hat, h_prev = fw.z[:, t], fw.r[:, t], fw.h_hat[:, t], fw.h_prev[:, t]
        dh = dhs[:, t] if mistake == "gru_no_dh_carry" else dhs[:, t] + dh_next
        dh_prev = np.zeros_like(dh) if mistake == "gru_no_one_minus_z" else dh * (1 - z)
        dt = dh * z * (1 - h_hat**2)
        if after:  # ĥ = tanh(x Wxh + r ⊙ u + bh), u = h_{t-1} Whh
            dhh[:, t] = dt * r
            dh_prev = dh_prev + np.dot(dhh[:, t], WhhT)
            dr = dt * fw.u[:, t]
        else:  # ĥ = tanh(x Wxh + (r ⊙ h_{t-1}) Whh + bh)
            dhh[:, t] = dt
            dhr = np.dot(dt, WhhT)
            dh_prev = dh_prev + r * dhr
            dr = dhr if mistake == "gru_dr_without_h" else dhr * h_prev
        dz = dh * (h_prev - h_hat) if mistake == "gru_dz_sign" else dh * (h_hat - h_prev)
        if mistake == "gru_sigmoid_grad_as_sigma":
            dtz, dtr = dz * z, dr * r
        else:
            dtz, dtr = dz * z * (1 - z), dr * r * (1 - r)
        dzr = np.concatenate((dtz, dtr), axis=1)
        dh_prev = dh_prev + np.dot(dzr, WzrT)
        dAs[:, t, : 2 * H], dAs[:, t, 2 * H :] = dzr, dt
        dh_next = dh_prev
    keep = slice(0, 1) if mistake == "grads_step0_only" else slice(0, T)
    DA = dAs[:, keep].reshape(-1, 3 * H)
    h_prev = fw.h_prev[:, keep].reshape(-1, H)
    h_in = h_prev if after else (fw.r[:, keep] * fw.h_prev[:, keep]).reshape(-1, H)
    dWx = np.dot(xs[:, keep].reshape(-1, D).T, DA)
    dWh = np.concatenate(
        (np.dot(h_prev.T, DA[:, : 2 * H]), np.dot(h_in.T, dhh[:, keep].reshape(-1, H))), axis=1
    )
    db = DA.sum(axis=0)
    dxs = np.dot(dAs.reshape(N * T, 3 * H), np.ascontiguousarray(Wx.T)).reshape(N, T, D)
    return Grads(dxs, dWx, dWh, db, dh_next)


def simulate(
    case: Case, data: CaseData, mistake: str = "", dtype: str = "float64"
) -> list[SegmentValues]:
    """The per-segment values a TimeGRU making `mistake` ("" for none) gives on the GRU
    `case`, computed in `dtype` (the inputs rounded to it first).

    The chain of segments is walked as crosscheck.mistakes.simulate walks it: a segment
    starts from zeros (z, r), from set_state(h_set) (s) or from the model's own final h
    of the segment before (c), as the mistake chooses; each backward call of a segment
    runs from the same forward.
    """
    dt = np.dtype(dtype)
    Wx, Wh, b = (np.ascontiguousarray(a, dtype=dt) for a in (data.Wx, data.Wh, data.b))
    carried: Array | None = None  # the layer's self.h between segments
    total: Grads | None = None  # running sums, for grads_accumulate
    out: list[SegmentValues] = []
    for k, sd in enumerate(data.segments):
        h_set = None if sd.h_set is None else np.ascontiguousarray(sd.h_set, dtype=dt)
        h0 = rnn.start_state(case, k, h_set, carried, mistake).astype(dt)
        xs = np.ascontiguousarray(sd.xs, dtype=dt)
        fw = _forward(Wx, Wh, b, h0, xs, mistake)
        calls = []
        for dhs in sd.dhs:
            g = _backward(Wx, Wh, xs, fw, np.ascontiguousarray(dhs, dtype=dt), mistake)
            g = total = rnn.accumulate(total, g, mistake)
            calls.append(g)
        carried = fw.hs[:, -1].copy()
        out.append(SegmentValues(fw.hs, fw.hs[:, -1].copy(), tuple(calls)))
    return out
