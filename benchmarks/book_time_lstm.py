"""The book's LSTM and TimeLSTM, the baseline that `bench.py` compares handrnn.TimeLSTM against.

From "Deep Learning from Scratch 2" (Koki Saitoh, O'Reilly Japan), `common/time_layers.py`
(and `sigmoid` from `common/functions.py`),
https://github.com/oreilly-japan/deep-learning-from-scratch-2 (MIT licence), commit 842ae31.

    A = x Wx + h_prev Wh + b,  split into the gates f, g, i, o (in that order, H columns each)
    c_next = sigmoid(f) * c_prev + tanh(g) * sigmoid(i),  h_next = sigmoid(o) * tanh(c_next)

Kept faithful to the book's structure: one `LSTM` object per step, each with its own cache
and its own grads buffers, the four gate gradients stacked with np.hstack, per-step
weight-gradient products summed over the steps. The only change, as in `book_time_rnn.py`:
buffers use the params' dtype instead of the hard-coded 'f' (float32), so a float64 run can
be checked to round-off and a float32 run is a fair comparison.
"""

# The book's code unpacks values it does not use (Wx, Wh, b = self.params); kept as written.
# ruff: noqa: RUF059

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def sigmoid(x: Array) -> Array:
    """The book's `common/functions.py` sigmoid."""
    return 1 / (1 + np.exp(-x))


class LSTM:
    """One step: (h_next, c_next) from x, h_prev, c_prev; Wx (D, 4H), Wh (H, 4H), b (4H,)."""

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: tuple[Array, ...] | None = None

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        N, H = h_prev.shape

        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b

        f = A[:, :H]
        g = A[:, H : 2 * H]
        i = A[:, 2 * H : 3 * H]
        o = A[:, 3 * H :]

        f = sigmoid(f)
        g = np.tanh(g)
        i = sigmoid(i)
        o = sigmoid(o)

        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)

        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        Wx, Wh, b = self.params
        assert self.cache is not None
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache

        tanh_c_next = np.tanh(c_next)

        ds = dc_next + (dh_next * o) * (1 - tanh_c_next**2)

        dc_prev = ds * f

        di = ds * g
        df = ds * c_prev
        do = dh_next * tanh_c_next
        dg = ds * i

        di *= i * (1 - i)
        df *= f * (1 - f)
        do *= o * (1 - o)
        dg *= 1 - g**2

        dA = np.hstack((df, dg, di, do))

        dWh = np.dot(h_prev.T, dA)
        dWx = np.dot(x.T, dA)
        db = dA.sum(axis=0)

        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db

        dx = np.dot(dA, Wx.T)
        dh_prev = np.dot(dA, Wh.T)

        return dx, dh_prev, dc_prev


class TimeLSTM:
    """T `LSTM` steps sharing [Wx, Wh, b]; `stateful` carries h and c across forward calls."""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers: list[LSTM] | None = None

        self.h: Array | None = None
        self.c: Array | None = None
        self.dh: Array | None = None
        self.stateful = stateful

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        dtype = Wx.dtype  # the book: dtype='f'

        self.layers = []
        hs = np.empty((N, T, H), dtype=dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=dtype)

        for t in range(T):
            layer = LSTM(*self.params)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h

            self.layers.append(layer)

        return hs

    def backward(self, dhs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D = Wx.shape[0]
        assert self.layers is not None

        dxs = np.empty((N, T, D), dtype=Wx.dtype)  # the book: dtype='f'
        dh: Any = 0
        dc: Any = 0

        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs

    def set_state(self, h: Array, c: Array | None = None) -> None:
        self.h, self.c = h, c

    def reset_state(self) -> None:
        self.h, self.c = None, None
