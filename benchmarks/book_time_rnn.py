"""The book's RNN and TimeRNN, the baseline that `bench.py` compares handrnn against.

From "Deep Learning from Scratch 2" (Koki Saitoh, O'Reilly Japan), `common/time_layers.py`,
https://github.com/oreilly-japan/deep-learning-from-scratch-2 (MIT licence), as transcribed
in the project's notebook (../shared/seed/time_rnn_notebook.txt).

Kept faithful to the book's structure: one `RNN` object per step, each with its own cache
and its own grads buffers, per-step weight-gradient products summed over the steps. The
only change: buffers use the params' dtype instead of the hard-coded 'f' (float32), so a
float64 run can be checked against handrnn to round-off and a float32 run is a fair
comparison.
"""

# The book's code unpacks values it does not use (Wx, Wh, b = self.params); kept as written.
# ruff: noqa: RUF059

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


class RNN:
    """One step: h_next = tanh(h_prev Wh + x Wx + b)."""

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: tuple[Array, Array, Array] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        t = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next = np.tanh(t)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        assert self.cache is not None
        x, h_prev, h_next = self.cache

        dt = dh_next * (1 - h_next**2)  # derivative of tanh
        db = np.sum(dt, axis=0)
        dWh = np.dot(h_prev.T, dt)
        dh_prev = np.dot(dt, Wh.T)
        dWx = np.dot(x.T, dt)
        dx = np.dot(dt, Wx.T)

        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db
        return dx, dh_prev


class TimeRNN:
    """T `RNN` steps sharing [Wx, Wh, b]; `stateful` carries h across forward calls."""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers: list[RNN] | None = None
        self.h: Array | None = None
        self.dh: Array | None = None
        self.stateful = stateful

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        D, H = Wx.shape
        dtype = Wx.dtype  # the book: dtype='f'

        self.layers = []
        hs = np.empty((N, T, H), dtype=dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)

        return hs

    def backward(self, dhs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape
        assert self.layers is not None

        dxs = np.empty((N, T, D), dtype=Wx.dtype)  # the book: dtype='f'
        dh: Any = 0
        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            # h_t went to hs and to step t+1: add both gradients.
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            # The weights are shared by all steps: sum their per-step gradients.
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh

        return dxs

    def set_state(self, h: Array) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None
