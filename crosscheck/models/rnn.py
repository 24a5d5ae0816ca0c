"""The float32 twin of the tanh RNN: the book's math computed as a careful layer would.

    forward:  h_t = tanh(h_{t-1} Wh + x_t Wx + b)                       one step at a time
    backward: dt_t = (dhs_t + dh_next) ⊙ (1 − h_t²),  dh_next = dt_t Wh^T    (zero at T-1)
              dWx = Σ_t x_t^T dt_t,  dWh = Σ_t h_{t-1}^T dt_t,  db = Σ_t Σ_n dt_t[n]
              (each one product over the N·T rows),  dx_t = dt_t Wx^T,  dh = dt_0 Wh^T

It walks the case's chain of segments as a layer does: start z or r from zeros, s from
the case's set_state array, c from the twin's *own* final state of the segment before
(in the twin's precision, as a layer carries it); each backward call of a segment runs
from the same forward cache. It shares no code with the layers it judges. (The RNN's
mistakes model, crosscheck.mistakes, is float64 and written for clarity instead.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import Case, CaseData
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, xs: Array) -> Array:
    """hs (N, T, H) from h0 (N, H) over xs (N, T, D): h_t = tanh(h_{t-1} Wh + x_t Wx + b)."""
    N, T, _ = xs.shape
    hs = np.empty((N, T, Wh.shape[0]), dtype=Wh.dtype)
    h = h0
    for t in range(T):
        h = np.tanh(np.dot(h, Wh) + np.dot(xs[:, t], Wx) + b)
        hs[:, t] = h
    return hs


def _backward(Wx: Array, Wh: Array, h0: Array, xs: Array, hs: Array, dhs: Array) -> Grads:
    """One backward(dhs) of the segment that ran from h0 over xs giving hs."""
    N, T, D = xs.shape
    H = Wh.shape[0]
    WhT = np.ascontiguousarray(Wh.T)
    dts = np.empty_like(hs)  # dts[:, t] = dL/da_t
    dh_next = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        h_t = hs[:, t]
        dt = (dhs[:, t] + dh_next) * (1 - h_t**2)  # h_t feeds hs and step t+1: add both
        dts[:, t] = dt
        dh_next = np.dot(dt, WhT)
    h_prev = np.concatenate([h0[:, np.newaxis], hs[:, :-1]], axis=1)  # h_{t-1} at step t
    DT = dts.reshape(N * T, H)
    dWx = np.dot(xs.reshape(N * T, D).T, DT)
    dWh = np.dot(h_prev.reshape(N * T, H).T, DT)
    db = DT.sum(axis=0)
    dxs = np.dot(DT, np.ascontiguousarray(Wx.T)).reshape(N, T, D)
    return Grads(dxs, dWx, dWh, db, dh_next)


def twin(case: Case, data: CaseData, dtype: str) -> list[SegmentValues]:
    """The twin's values on an RNN `case`, per segment, computed in `dtype` (inputs
    rounded to it first)."""
    dt = np.dtype(dtype)
    Wx, Wh, b = (np.ascontiguousarray(a, dtype=dt) for a in (data.Wx, data.Wh, data.b))
    carried: Array | None = None  # the twin's own final state of the segment before
    out: list[SegmentValues] = []
    for seg, sd in zip(case.segments, data.segments):
        if case.stateful and seg.start == "c" and carried is not None:
            h0 = carried
        elif case.stateful and seg.start == "s" and sd.h_set is not None:
            h0 = np.ascontiguousarray(sd.h_set, dtype=dt)
        else:
            h0 = np.zeros((sd.xs.shape[0], case.H), dtype=dt)  # a segment's own batch size
        xs = np.ascontiguousarray(sd.xs, dtype=dt)
        hs = _forward(Wx, Wh, b, h0, xs)
        calls = tuple(
            _backward(Wx, Wh, h0, xs, hs, np.ascontiguousarray(dhs, dtype=dt)) for dhs in sd.dhs
        )
        carried = hs[:, -1].copy()
        out.append(SegmentValues(hs, hs[:, -1].copy(), calls))
    return out
