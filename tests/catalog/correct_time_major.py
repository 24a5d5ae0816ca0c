"""Correct, time-major: the states kept as one (T + 1, N, H) array, batched products.

    a_t = (x_t Wx + b) + h_{t-1} Wh      the input projections of all steps done first
    dt_t = (dh_next + dhs_t) * (1 - h_t h_t),  dh_next = dt_t Wh^T
    dWx, dWh, db: the time and batch axes contracted at once (np.tensordot)

Written differently from the book's per-step cells, for the soak (`nox -s soak`): its
float32 rounding takes other paths than the book's, handrnn's or the twin's.
"""

import numpy as np


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h, self.dh = None, None
        self.cache = None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        xs_tm = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, D)
        A = np.matmul(xs_tm, Wx) + b  # (T, N, H)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        hseq[0] = self.h
        for t in range(T):
            hseq[t + 1] = np.tanh(A[t] + np.matmul(hseq[t], Wh))
        self.cache = (xs_tm, hseq)
        self.h = hseq[-1].copy()
        return hseq[1:].transpose(1, 0, 2).copy()

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs_tm, hseq = self.cache
        T, N, D = xs_tm.shape
        H = Wh.shape[0]
        dhs_tm = dhs.transpose(1, 0, 2)
        dts = np.empty((T, N, H), dtype=Wx.dtype)
        g = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T - 1, -1, -1):
            h = hseq[t + 1]
            # h_t went into hs and into step t+1: both gradients add up.
            dts[t] = (g + dhs_tm[t]) * (1 - h * h)
            g = np.matmul(dts[t], Wh.T)
        self.grads[0][...] = np.tensordot(xs_tm, dts, axes=([0, 1], [0, 1]))
        self.grads[1][...] = np.tensordot(hseq[:-1], dts, axes=([0, 1], [0, 1]))
        self.grads[2][...] = dts.sum(axis=(0, 1))
        self.dh = g
        return np.matmul(dts, Wx.T).transpose(1, 0, 2).copy()

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
