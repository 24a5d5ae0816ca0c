"""Correct, written differently: float64 inside whatever the dtype, grads summed per step.

Every input is cast to float64 first; hs, dxs, the states, the gradients and grads are
rounded to the params' dtype only when they leave the layer. The weight gradients are
accumulated step by step (np.einsum into float64 sums) in the order the backward loop
visits the steps, and the per-step derivatives are written out gate by gate:

    df = ds c_{t-1} f (1 - f),  dg = ds i (1 - g^2),  di = ds g i (1 - i),
    do = dh tanh(c_t) o (1 - o),  with ds = dc_next + dh o (1 - tanh(c_t)^2)

Like the book's, it keeps no `dc`.
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np

F64 = np.float64


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h, self.c, self.dh = None, None, None
        self.steps = None

    def forward(self, xs):
        Wx, Wh, b = (p.astype(F64) for p in self.params)
        dtype = self.params[0].dtype
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=dtype)
        h, c = self.h.astype(F64), self.c.astype(F64)
        x64 = xs.astype(F64)
        hs = np.empty((N, T, H), dtype=F64)
        self.steps = []
        for t in range(T):
            x = x64[:, t]
            A = np.dot(x, Wx) + np.dot(h, Wh) + b
            f = 1.0 / (1.0 + np.exp(-A[:, :H]))
            g = np.tanh(A[:, H : 2 * H])
            i = 1.0 / (1.0 + np.exp(-A[:, 2 * H : 3 * H]))
            o = 1.0 / (1.0 + np.exp(-A[:, 3 * H :]))
            c_next = f * c + g * i
            h_next = o * np.tanh(c_next)
            self.steps.append((x, h, c, f, g, i, o, c_next))
            h, c = h_next, c_next
            hs[:, t] = h
        self.h, self.c = h.astype(dtype), c.astype(dtype)
        return hs.astype(dtype)

    def backward(self, dhs):
        Wx, Wh, b = (p.astype(F64) for p in self.params)
        dtype = self.params[0].dtype
        N, T, H = dhs.shape
        D = Wx.shape[0]
        dxs = np.empty((N, T, D), dtype=F64)
        sums = [np.zeros(p.shape, dtype=F64) for p in self.params]
        dh_next = np.zeros((N, H), dtype=F64)
        dc_next = np.zeros((N, H), dtype=F64)
        for t in range(T - 1, -1, -1):
            x, h_prev, c_prev, f, g, i, o, c = self.steps[t]
            dh = dhs[:, t].astype(F64) + dh_next
            tanh_c = np.tanh(c)
            ds = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
            df = ds * c_prev * f * (1.0 - f)
            dg = ds * i * (1.0 - g * g)
            di = ds * g * i * (1.0 - i)
            do = dh * tanh_c * o * (1.0 - o)
            dA = np.hstack((df, dg, di, do))
            sums[0] += np.einsum("nd,nk->dk", x, dA)
            sums[1] += np.einsum("nh,nk->hk", h_prev, dA)
            sums[2] += dA.sum(axis=0)
            dxs[:, t] = np.dot(dA, Wx.T)
            dh_next = np.dot(dA, Wh.T)
            dc_next = ds * f
        for grad, s in zip(self.grads, sums):
            grad[...] = s
        self.dh = dh_next.astype(dtype)
        return dxs.astype(dtype)

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None
