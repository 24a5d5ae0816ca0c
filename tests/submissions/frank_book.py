"""The book's RNN and TimeRNN, unmodified: correct at float32 only.

From "Deep Learning from Scratch 2" (Koki Saitoh, O'Reilly Japan), `common/time_layers.py`,
https://github.com/oreilly-japan/deep-learning-from-scratch-2 (MIT licence), as transcribed
in the project's notebook. The code is the book's token for token (comments translated).

hs, the initial state and dxs are allocated with dtype='f' (float32): fine for the
book, which works in float32 throughout. Given float64 weights, hs and dxs come back as
float32 and rounded, which a checker must flag as a dtype error.
"""

# The book unpacks all of params and every shape, used or not; so does this file.
import numpy as np


class RNN:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]  # the weights and the bias, passed as a list
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        t = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next = np.tanh(t)

        self.cache = (x, h_prev, h_next)  # input, incoming state, output
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
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
    # With stateful=True the hidden state is kept between forward calls, so a long
    # sequence can be fed in pieces without cutting the forward propagation.
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
        hs = np.empty((N, T, H), dtype="f")

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype="f")

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)  # batch size, T time steps, input dim
            hs[:, t, :] = self.h
            self.layers.append(layer)

        return hs

    # The output of each step branches in two, so backward adds both gradients
    # (dh_t + dh_next).
    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape

        dxs = np.empty((N, T, D), dtype="f")
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx

            # All the RNN steps share the same weights, so the final weight gradient
            # is the sum of the steps' weight gradients.
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        # Store the summed gradients.
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh

        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
