"""Correct, written differently: float64 inside whatever the dtype, grads summed per step.

Every input is cast to float64 first; hs, dxs, the state, the gradients and grads are
rounded to the params' dtype only when they leave the layer. The weight gradients are
accumulated step by step (np.einsum into float64 sums) in the order the backward loop
visits the steps; each step's gradient w.r.t. h_{t-1} is the sum of its four paths:

    dh_prev = dh (1 - z) + r (dt Whh^T) + dtz Whz^T + dtr Whr^T
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np

F64 = np.float64


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class TimeGRU:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h, self.dh = None, None
        self.steps = None

    def forward(self, xs):
        Wx, Wh, b = (p.astype(F64) for p in self.params)
        dtype = self.params[0].dtype
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=dtype)
        h = self.h.astype(F64)
        x64 = xs.astype(F64)
        hs = np.empty((N, T, H), dtype=F64)
        self.steps = []
        for t in range(T):
            x = x64[:, t]
            z = sigmoid(np.dot(x, Wx[:, :H]) + np.dot(h, Wh[:, :H]) + b[:H])
            r = sigmoid(np.dot(x, Wx[:, H : 2 * H]) + np.dot(h, Wh[:, H : 2 * H]) + b[H : 2 * H])
            h_hat = np.tanh(np.dot(x, Wx[:, 2 * H :]) + np.dot(r * h, Wh[:, 2 * H :]) + b[2 * H :])
            self.steps.append((x, h, z, r, h_hat))
            h = (1.0 - z) * h + z * h_hat
            hs[:, t] = h
        self.h = h.astype(dtype)
        return hs.astype(dtype)

    def backward(self, dhs):
        Wx, Wh, b = (p.astype(F64) for p in self.params)
        dtype = self.params[0].dtype
        N, T, H = dhs.shape
        D = Wx.shape[0]
        dxs = np.empty((N, T, D), dtype=F64)
        sums = [np.zeros(p.shape, dtype=F64) for p in self.params]
        dh_next = np.zeros((N, H), dtype=F64)
        for t in range(T - 1, -1, -1):
            x, h_prev, z, r, h_hat = self.steps[t]
            dh = dhs[:, t].astype(F64) + dh_next
            dt = dh * z * (1.0 - h_hat * h_hat)
            dhr = np.dot(dt, Wh[:, 2 * H :].T)
            dtz = dh * (h_hat - h_prev) * z * (1.0 - z)
            dtr = dhr * h_prev * r * (1.0 - r)
            dA = np.hstack((dtz, dtr, dt))
            sums[0] += np.einsum("nd,nk->dk", x, dA)
            sums[1][:, : 2 * H] += np.einsum("nh,nk->hk", h_prev, dA[:, : 2 * H])
            sums[1][:, 2 * H :] += np.einsum("nh,nk->hk", r * h_prev, dt)
            sums[2] += dA.sum(axis=0)
            dxs[:, t] = np.dot(dA, Wx.T)
            dh_next = dh * (1.0 - z) + r * dhr + np.dot(dA[:, : 2 * H], Wh[:, : 2 * H].T)
        for grad, s in zip(self.grads, sums):
            grad[...] = s
        self.dh = dh_next.astype(dtype)
        return dxs.astype(dtype)

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
