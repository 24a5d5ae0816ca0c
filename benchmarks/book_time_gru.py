"""The book's GRU and TimeGRU, the baseline that `bench.py` compares handrnn.TimeGRU against.

From "Deep Learning from Scratch 2" (Koki Saitoh, O'Reilly Japan), `common/time_layers.py`
(and `sigmoid` from `common/functions.py`),
https://github.com/oreilly-japan/deep-learning-from-scratch-2 (MIT licence), commit 842ae31.

    Wx (D, 3H), Wh (H, 3H), b (3H,): the gates z, r and the candidate, in that order
    z = sigmoid(x Wxz + h_prev Whz + bz),  r = sigmoid(x Wxr + h_prev Whr + br)
    h_hat = tanh(x Wxh + (r * h_prev) Whh + bh),  h_next = (1 - z) * h_prev + z * h_hat

(torch.nn.GRU differs: it applies r after the product, r * (h Whh + b_hn), and its update
gate weighs the other way, h' = (1 - z) * n + z * h.)

Kept faithful to the book's structure: one `GRU` object per step, six per-gate slices of the
weights taken in every forward and backward, nine small products per step in backward, the
gate gradients stacked with np.hstack, per-step weight-gradient products summed over the
steps. The only change, as in `book_time_rnn.py`: buffers use the params' dtype instead of
the hard-coded 'f' (float32), so a float64 run can be checked to round-off and a float32
run is a fair comparison.
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


class GRU:
    """One step: h_next from x and h_prev; Wx (D, 3H), Wh (H, 3H), b (3H,)."""

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: tuple[Array, ...] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
        Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
        bz, br, bh = b[:H], b[H : 2 * H], b[2 * H :]

        z = sigmoid(np.dot(x, Wxz) + np.dot(h_prev, Whz) + bz)
        r = sigmoid(np.dot(x, Wxr) + np.dot(h_prev, Whr) + br)
        h_hat = np.tanh(np.dot(x, Wxh) + np.dot(r * h_prev, Whh) + bh)
        h_next = (1 - z) * h_prev + z * h_hat

        self.cache = (x, h_prev, z, r, h_hat)

        return h_next  # type: ignore[no-any-return]

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
        Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
        assert self.cache is not None
        x, h_prev, z, r, h_hat = self.cache

        dh_hat = dh_next * z
        dh_prev = dh_next * (1 - z)

        # tanh
        dt = dh_hat * (1 - h_hat**2)
        dbh = np.sum(dt, axis=0)
        dWhh = np.dot((r * h_prev).T, dt)
        dhr = np.dot(dt, Whh.T)
        dWxh = np.dot(x.T, dt)
        dx = np.dot(dt, Wxh.T)
        dh_prev += r * dhr

        # update gate(z)
        dz = dh_next * h_hat - dh_next * h_prev
        dt = dz * z * (1 - z)
        dbz = np.sum(dt, axis=0)
        dWhz = np.dot(h_prev.T, dt)
        dh_prev += np.dot(dt, Whz.T)
        dWxz = np.dot(x.T, dt)
        dx += np.dot(dt, Wxz.T)

        # rest gate(r)
        dr = dhr * h_prev
        dt = dr * r * (1 - r)
        dbr = np.sum(dt, axis=0)
        dWhr = np.dot(h_prev.T, dt)
        dh_prev += np.dot(dt, Whr.T)
        dWxr = np.dot(x.T, dt)
        dx += np.dot(dt, Wxr.T)

        self.dWx = np.hstack((dWxz, dWxr, dWxh))
        self.dWh = np.hstack((dWhz, dWhr, dWhh))
        self.db = np.hstack((dbz, dbr, dbh))

        self.grads[0][...] = self.dWx
        self.grads[1][...] = self.dWh
        self.grads[2][...] = self.db

        return dx, dh_prev


class TimeGRU:
    """T `GRU` steps sharing [Wx, Wh, b]; `stateful` carries h across forward calls."""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers: list[GRU] | None = None
        self.h: Array | None = None
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

        for t in range(T):
            layer = GRU(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
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
        grads: list[Any] = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx

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
