"""Correct, written differently: every computation in float64, whatever the params' dtype.

The book's layer, except that forward hands the RNN cells float64 copies of the weights
and of each x_t, and backward works on float64 dhs. Results are rounded to the params'
dtype only where they leave the layer: hs, h, dxs, dh and the grads. At float64 it is the
book's layer; at float32 it is more accurate than float32 arithmetic can be (one
rounding per output instead of one per operation), and a checker must still accept it.
"""

# The book unpacks all of params and every shape, used or not; so does this file.
import numpy as np


class RNN:
    """One step: h_next = tanh(h_prev Wh + x Wx + b)."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        t = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next = np.tanh(t)

        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache

        dt = dh_next * (1 - h_next**2)  # tanh'(t) = 1 - tanh(t)^2
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
    """T RNN steps sharing [Wx, Wh, b], computed in float64; outputs in the params' dtype."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None

        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        D, H = Wx.shape
        params64 = [p.astype(np.float64) for p in self.params]

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)

        h = self.h.astype(np.float64)
        for t in range(T):
            layer = RNN(*params64)
            h = layer.forward(xs[:, t, :].astype(np.float64), h)
            hs[:, t, :] = h  # rounded to the params' dtype here
            self.layers.append(layer)
        self.h = h.astype(Wx.dtype)

        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape

        dxs = np.empty((N, T, D), dtype=Wx.dtype)
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :].astype(np.float64) + dh)
            dxs[:, t, :] = dx  # rounded to the params' dtype here

            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad  # rounded once, at the end
        self.dh = dh.astype(Wx.dtype)

        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
