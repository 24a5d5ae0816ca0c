"""Correct: the book's TimeRNN with its buffers in the params' dtype instead of 'f'.

The reference of this catalog: every `wrong_*` module that is not marked otherwise is
this file with one line changed (the one carrying `# MISTAKE:`), so `diff` shows the bug.

    forward:   h_t = tanh(h_{t-1} Wh + x_t Wx + b)
    backward:  dt_t = (dhs_t + dh_{t+1}) * (1 - h_t^2)          (the branch sum)
               dWx = sum_t x_t^T dt_t,  dWh = sum_t h_{t-1}^T dt_t,  db = sum_t sum_n dt_t
               dxs_t = dt_t Wx^T,       dh_t = dt_t Wh^T          (into step t-1)
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
    """T RNN steps sharing [Wx, Wh, b]; `stateful` carries h from one forward to the next."""

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

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)  # the book: dtype='f'

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)  # the book: dtype='f'

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)

        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape

        dxs = np.empty((N, T, D), dtype=Wx.dtype)  # the book: dtype='f'
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            # h_t went two ways (into hs and into step t+1): add both gradients.
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx

            # Every step uses the same weights: their gradient is the sum over the steps.
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh

        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
