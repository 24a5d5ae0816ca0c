"""A student's TimeRNN, written the book's way: one RNN cell per time step.

It has ONE mistake, the most common one in backpropagation through time (see
TimeRNN.backward). Everything else follows "Deep Learning from Scratch 2",
except that arrays are created in the parameters' dtype instead of dtype='f',
so the layer works in float64 as well as float32.

Check it:   python check_student_layer.py
   or:      python -m crosscheck --layer student_layer:TimeRNN
   or:      pytest test_my_layer.py
"""

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
        Wx, Wh, _ = self.params
        x, h_prev, h_next = self.cache
        dt = dh_next * (1 - h_next**2)
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
    """T RNN cells sharing Wx (D, H), Wh (H, H), b (H,): xs (N, T, D) -> hs (N, T, H)."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx = self.params[0]
        N, T, _ = xs.shape
        H = Wx.shape[1]

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)

        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, _ = dhs.shape
        D = Wx.shape[0]

        dxs = np.empty((N, T, D), dtype=Wx.dtype)
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            # MISTAKE: h_t feeds both the output hs[:, t] and the next step, so its
            # gradient is the sum of both: layer.backward(dhs[:, t, :] + dh).
            # Dropping "+ dh" cuts every path through time after one step.
            dx, dh = layer.backward(dhs[:, t, :])
            dxs[:, t, :] = dx

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
