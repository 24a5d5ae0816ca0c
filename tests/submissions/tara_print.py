"""Tara's TimeRNN: right, but its first forward prints 50 MB of debugging output."""

import sys

import numpy as np

_printed = []


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.dh, self.stateful, self.cache = None, None, stateful, None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        h0 = h = self.h
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        for t in range(T):
            h = np.tanh(h @ Wh + xs[:, t] @ Wx + b)
            hs[:, t] = h
        self.cache, self.h = (xs, h0, hs), h
        return hs.copy()

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs, h0, hs = self.cache
        N, T, D = xs.shape
        dts = np.empty_like(hs)
        dh = np.zeros_like(h0)
        for t in reversed(range(T)):
            dts[:, t] = (dhs[:, t] + dh) * (1 - hs[:, t] ** 2)
            dh = dts[:, t] @ Wh.T
        hs_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)
        DT = dts.reshape(N * T, -1)
        self.grads[0][...] = xs.reshape(N * T, D).T @ DT
        self.grads[1][...] = hs_prev.reshape(N * T, -1).T @ DT
        self.grads[2][...] = DT.sum(axis=0)
        self.dh = dh
        return (DT @ Wx.T).reshape(N, T, D)

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None


_forward = TimeRNN.forward


def _noisy_forward(self, xs):
    if not _printed:
        _printed.append(True)
        print("<script>alert('Tara was here')</script>")  # must show as text, never run
        sys.stdout.write(("debug " * 16 + "\n") * 500_000)  # 48 MB
        sys.stdout.flush()
    return _forward(self, xs)


TimeRNN.forward = _noisy_forward
