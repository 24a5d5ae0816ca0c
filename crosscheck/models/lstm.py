"""The book's LSTM in plain NumPy, able to make one known mistake at a time.

`MISTAKES` lists them in plain words, each with the line of math it breaks;
`simulate(case, data, mistake)` computes what a TimeLSTM with that one mistake returns
on a case, in float64, or in float32 as the float32 twin (mistake ""): per step one
product for the four gates, each weight gradient one product over the N·T rows after
the loop. Written from the formulas, it shares no code with the layers it judges.

Notation (the book's row vectors and gate order f, g, i, o), for t = 0 .. T-1 and
(h_{-1}, c_{-1}) the segment's initial state:

    A_t = x_t Wx + h_{t-1} Wh + b,   f, g, i, o = σ(A[:, :H]), tanh(A[:, H:2H]),
                                                 σ(A[:, 2H:3H]), σ(A[:, 3H:])
    c_t = f ⊙ c_{t-1} + g ⊙ i,   h_t = o ⊙ tanh(c_t)

    dh = dhs_t + dh_next,   ds = dc_next + dh ⊙ o ⊙ (1 − tanh(c_t)²)   (both next zero at T-1)
    dc_prev = ds ⊙ f,   df = ds ⊙ c_{t-1},  dg = ds ⊙ i,  di = ds ⊙ g,  do = dh ⊙ tanh(c_t)
    dA_t = [df ⊙ f(1−f), dg ⊙ (1−g²), di ⊙ i(1−i), do ⊙ o(1−o)],   dh_next = dA_t Wh^T
    dWx = Σ_t x_t^T dA_t,  dWh = Σ_t h_{t-1}^T dA_t,  db = Σ_t Σ_n dA_t[n],  dx_t = dA_t Wx^T
    layer.dh = dA_0 Wh^T,  layer.dc = ds_0 ⊙ f_0   (the dh_prev and dc_prev of step 0)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from crosscheck import mistakes as rnn
from crosscheck.cases import Case, CaseData
from crosscheck.mistakes import Mistake
from crosscheck.models import sigmoid
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

DS_LINE = "ds = dc_next + dh ⊙ o ⊙ (1 − tanh(c_t)²)"
DA_LINE = "dA = [df ⊙ f(1−f), dg ⊙ (1−g²), di ⊙ i(1−i), do ⊙ o(1−o)]"
MATH = {
    "hs": "h_t = o ⊙ tanh(c_t), c_t = f ⊙ c_{t-1} + g ⊙ i, "
    "[f, g, i, o] = [σ, tanh, σ, σ](x_t Wx + h_{t-1} Wh + b)",
    "h": "layer.h = h_{T-1}, the last hidden state",
    "c": "layer.c = c_{T-1}, the last cell state",
    "dxs": "dx_t = dA_t Wx^T",
    "dWx": "dWx = Σ_t x_t^T dA_t",
    "dWh": "dWh = Σ_t h_{t-1}^T dA_t",
    "db": "db = Σ_t Σ_n dA_t[n]",
    "dh": "dh = dA_0 Wh^T",
    "dc": "dc = ds_0 ⊙ f_0",
}

_SHARED = rnn.BY_NAME
# Order matters where two mistakes give the same values on a case: the first is named
# (the others as "also matches"), so narrower mistakes come before broader ones.
MISTAKES: tuple[Mistake, ...] = (
    Mistake("lstm_no_dh_carry",
            "the gradient carried back from step t+1 is not added to dh (dh = dhs_t)",
            "h_t feeds both hs and step t+1, so both gradients add up: "
            "dh = dhs_t + dh_next with dh_next = dA_{t+1} Wh^T"),
    Mistake("lstm_no_dc_carry",
            "the cell-state gradient dc from step t+1 is not carried back "
            "(every step's backward starts from dc_next = 0)",
            "c_t feeds step t+1, so its gradient comes back too: " + DS_LINE
            + " with dc_next = ds_{t+1} ⊙ f_{t+1}"),
    _SHARED["grads_step0_only"],
    Mistake("lstm_dc_without_f",
            "the cell-state gradient is passed back without the forget gate's factor "
            "(dc_prev = ds instead of ds ⊙ f)",
            "c_t = f ⊙ c_{t-1} + g ⊙ i, so dc_prev = ds ⊙ f"),
    Mistake("lstm_df_from_c_next",
            "the forget gate's gradient uses the step's new cell state c_t instead of the "
            "previous one (df = ds ⊙ c_t)",
            "c_t = f ⊙ c_{t-1} + g ⊙ i, so df = ds ⊙ c_{t-1}"),
    Mistake("lstm_tanh_grad_from_c",
            "tanh'(c_t) is taken as 1 − c_t² instead of 1 − tanh(c_t)²",
            "h_t = o ⊙ tanh(c_t) and d tanh(c)/dc = 1 − tanh(c)², so " + DS_LINE),
    Mistake("lstm_sigmoid_grad_as_sigma",
            "the sigmoid's derivative is taken as σ itself instead of σ(1 − σ) for the gates "
            "f, i and o (df ⊙ f, di ⊙ i, do ⊙ o)",
            "σ'(a) = σ(a)(1 − σ(a)), so " + DA_LINE),
    Mistake("lstm_gate_order_backward",
            "the gate gradients are stacked in the order i, f, g, o (PyTorch's) instead of "
            "the forward's f, g, i, o",
            "forward slices A into [f, g, i, o], so dA must be stacked the same way: " + DA_LINE),
    dataclasses.replace(
        _SHARED["set_state_ignored"],
        wrong="set_state(h, c) is ignored (forward starts from the carried state or zeros)",
        right="set_state(h, c) must set self.h = h and self.c = c, the state the next "
        "forward starts from"),
    dataclasses.replace(
        _SHARED["reset_ignored"],
        right="reset_state() must set self.h and self.c to None, so the next forward starts "
        "from zeros"),
    _SHARED["stateful_ignored"],
    _SHARED["stateless_carries"],
    _SHARED["grads_accumulate"],
)  # fmt: skip


# --------------------------------------------------------------------------------------
# The model: one TimeLSTM that can make one mistake.


class _Forward(NamedTuple):
    """What one forward caches, each (N, T, H): the gates, c_t and c_{t-1}, h_{t-1}."""

    f: Array
    g: Array
    i: Array
    o: Array
    cs: Array
    c_prev: Array
    h_prev: Array
    hs: Array


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, c0: Array, xs: Array) -> _Forward:
    """One forward from (h0, c0), each (N, H), over xs (N, T, D)."""
    N, T, _ = xs.shape
    H = Wh.shape[0]
    f, g, i, o, cs, c_prev, h_prev, hs = (np.empty((N, T, H), dtype=Wh.dtype) for _ in range(8))
    h, c = h0, c0
    for t in range(T):
        A = np.dot(xs[:, t], Wx) + np.dot(h, Wh) + b  # one product for all four gates
        h_prev[:, t], c_prev[:, t] = h, c
        f[:, t] = sigmoid(A[:, :H])
        g[:, t] = np.tanh(A[:, H : 2 * H])
        i[:, t] = sigmoid(A[:, 2 * H : 3 * H])
        o[:, t] = sigmoid(A[:, 3 * H :])
        c = f[:, t] * c + g[:, t] * i[:, t]
        h = o[:, t] * np.tanh(c)
        cs[:, t], hs[:, t] = c, h
    return _Forward(f, g, i, o, cs, c_prev, h_prev, hs)


def _backward(Wx: Array, Wh: Array, xs: Array, fw: _Forward, dhs: Array, mistake: str) -> Grads:
    """One backward(dhs) of the segment whose forward cached `fw`."""
    N, T, D = xs.shape
    H = Wh.shape[0]
    WhT = np.ascontiguousarray(Wh.T)
    dAs = np.empty((N, T, 4 * H), dtype=Wh.dtype)
    dh_next = np.zeros((N, H), dtype=Wh.dtype)
    dc_next = np.zeros((N, H), dtype=Wh.dtype)
    for t in range(T - 1, -1, -1):
        f, g, i, o = fw.f[:, t], fw.g[:, t], fw.i[:, t], fw.o[:, t]
        c, c_prev = fw.cs[:, t], fw.c_prev[:, t]
        dh = dhs[:, t] if mistake == "lstm_no_dh_carry" else dhs[:, t] + dh_next
        if mistake == "lstm_no_dc_carry":
            dc_next = np.zeros_like(dc_next)
        tanh_c = np.tanh(c)
        tanh_grad = 1 - c**2 if mistake == "lstm_tanh_grad_from_c" else 1 - tanh_c**2
        ds = dc_next + dh * o * tanh_grad
        dc_prev = ds if mistake == "lstm_dc_without_f" else ds * f
        df = ds * (c if mistake == "lstm_df_from_c_next" else c_prev)
        dg = ds * i
        di = ds * g
        do = dh * tanh_c
        if mistake == "lstm_sigmoid_grad_as_sigma":
            df, di, do = df * f, di * i, do * o
        else:
            df, di, do = df * f * (1 - f), di * i * (1 - i), do * o * (1 - o)
        dg = dg * (1 - g**2)
        blocks = (di, df, dg, do) if mistake == "lstm_gate_order_backward" else (df, dg, di, do)
        dA = np.concatenate(blocks, axis=1)
        dAs[:, t] = dA
        dh_next = np.dot(dA, WhT)
        dc_next = dc_prev
    keep = slice(0, 1) if mistake == "grads_step0_only" else slice(0, T)
    DA = dAs[:, keep].reshape(-1, 4 * H)
    dWx = np.dot(xs[:, keep].reshape(-1, D).T, DA)
    dWh = np.dot(fw.h_prev[:, keep].reshape(-1, H).T, DA)
    db = DA.sum(axis=0)
    dxs = np.dot(dAs.reshape(N * T, 4 * H), np.ascontiguousarray(Wx.T)).reshape(N, T, D)
    return Grads(dxs, dWx, dWh, db, dh_next, dc_next)


def simulate(
    case: Case, data: CaseData, mistake: str = "", dtype: str = "float64"
) -> list[SegmentValues]:
    """The per-segment values a TimeLSTM making `mistake` ("" for none) gives on the LSTM
    `case`, computed in `dtype` (the inputs rounded to it first).

    The chain of segments is walked as crosscheck.mistakes.simulate walks it: a segment
    starts from zeros (z, r), from set_state(h_set, c_set) (s) or from the model's own
    final h and c of the segment before (c), as the mistake chooses; each backward call
    of a segment runs from the same forward.
    """
    dt = np.dtype(dtype)
    Wx, Wh, b = (np.ascontiguousarray(a, dtype=dt) for a in (data.Wx, data.Wh, data.b))

    def cast(a: Array | None) -> Array | None:
        return None if a is None else np.ascontiguousarray(a, dtype=dt)

    carried_h: Array | None = None  # the layer's self.h and self.c between segments
    carried_c: Array | None = None
    total: Grads | None = None  # running sums, for grads_accumulate
    out: list[SegmentValues] = []
    for k, sd in enumerate(data.segments):
        h0 = rnn.start_state(case, k, cast(sd.h_set), carried_h, mistake).astype(dt)
        c0 = rnn.start_state(case, k, cast(sd.c_set), carried_c, mistake).astype(dt)
        xs = np.ascontiguousarray(sd.xs, dtype=dt)
        fw = _forward(Wx, Wh, b, h0, c0, xs)
        calls = []
        for dhs in sd.dhs:
            g = _backward(Wx, Wh, xs, fw, np.ascontiguousarray(dhs, dtype=dt), mistake)
            g = total = rnn.accumulate(total, g, mistake)
            calls.append(g)
        carried_h, carried_c = fw.hs[:, -1].copy(), fw.cs[:, -1].copy()
        out.append(SegmentValues(fw.hs, fw.hs[:, -1].copy(), tuple(calls), fw.cs[:, -1].copy()))
    return out
