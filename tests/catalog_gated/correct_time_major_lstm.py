"""Correct, time-major: h and c kept as (T + 1, N, H) arrays, batched products, dc kept.

    A_t = (x_t Wx + b) + h_{t-1} Wh        the input projections of all steps done first
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
    backward: the gates' gradients written block by block into a (T, N, 4H) array;
    dWx, dWh, db: the time and batch axes contracted at once (np.tensordot)

Written differently from the book's per-step cells: its float32 rounding takes other
paths than the book's or the twin's. The layer keeps `self.dc`.
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np


def _sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))  # = 1 / (1 + exp(-a)), and no overflow


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h, self.c = None, None
        self.dh, self.dc = None, None
        self.cache = None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=Wx.dtype)
        xs_tm = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, D)
        Ax = np.matmul(xs_tm, Wx) + b  # (T, N, 4H)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        cseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        gates = np.empty((T, 4, N, H), dtype=Wx.dtype)  # f, g, i, o
        hseq[0], cseq[0] = self.h, self.c
        for t in range(T):
            A = Ax[t] + np.matmul(hseq[t], Wh)
            f = gates[t, 0] = _sigmoid(A[:, :H])
            g = gates[t, 1] = np.tanh(A[:, H : 2 * H])
            i = gates[t, 2] = _sigmoid(A[:, 2 * H : 3 * H])
            o = gates[t, 3] = _sigmoid(A[:, 3 * H :])
            cseq[t + 1] = f * cseq[t] + i * g
            hseq[t + 1] = o * np.tanh(cseq[t + 1])
        self.cache = (xs_tm, hseq, cseq, gates)
        self.h, self.c = hseq[-1].copy(), cseq[-1].copy()
        return hseq[1:].transpose(1, 0, 2).copy()

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs_tm, hseq, cseq, gates = self.cache
        T, N, D = xs_tm.shape
        H = Wh.shape[0]
        dhs_tm = dhs.transpose(1, 0, 2)
        dA = np.empty((T, N, 4 * H), dtype=Wx.dtype)
        gh = np.zeros((N, H), dtype=Wx.dtype)
        gc = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T - 1, -1, -1):
            f, g, i, o = gates[t]
            tc = np.tanh(cseq[t + 1])
            gh = gh + dhs_tm[t]  # h_t went into hs and into step t+1: both gradients add up
            gc = gc + gh * o * (1 - tc * tc)  # likewise c_t: into h_t and into step t+1
            dA[t, :, :H] = gc * cseq[t] * f * (1 - f)
            dA[t, :, H : 2 * H] = gc * i * (1 - g * g)
            dA[t, :, 2 * H : 3 * H] = gc * g * i * (1 - i)
            dA[t, :, 3 * H :] = gh * tc * o * (1 - o)
            gh = np.matmul(dA[t], Wh.T)
            gc = gc * f
        self.grads[0][...] = np.tensordot(xs_tm, dA, axes=([0, 1], [0, 1]))
        self.grads[1][...] = np.tensordot(hseq[:-1], dA, axes=([0, 1], [0, 1]))
        self.grads[2][...] = dA.sum(axis=(0, 1))
        self.dh, self.dc = gh, gc
        return np.matmul(dA, Wx.T).transpose(1, 0, 2).copy()

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None
