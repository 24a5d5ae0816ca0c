"""Correct, written differently: no GRU cells, the gates z and r as one block.

Forward projects all T inputs at once, Ax = xs Wx + b as one (N*T, D) x (D, 3H) product;
in the loop, h_{t-1} [Whz, Whr] is one product and the gates z, r one (N, 2H) array ZR,
whose derivative is then one line:

    dZR = [dz, dr] ZR (1 - ZR),   dz = dh (h_hat - h_{t-1}),  dr = (dt Whh^T) h_{t-1}

The update is written h_t = h_{t-1} + z (h_hat - h_{t-1}), the same as (1 - z) h_{t-1} +
z h_hat. Backward runs the loop over time for the pre-activation gradients alone, then
forms each weight gradient as ONE product over the N*T rows.
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np


class TimeGRU:
    """T GRU steps sharing [Wx, Wh, b] (blocks z, r, h_hat); `stateful` carries h."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None
        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        h0 = self.h

        Ax = (np.dot(xs.reshape(N * T, D), Wx) + b).reshape(N, T, 3 * H)
        ZR = np.empty((N, T, 2 * H), dtype=Wx.dtype)
        RH = np.empty((N, T, H), dtype=Wx.dtype)  # r * h_{t-1}, the input of Whh
        HH = np.empty((N, T, H), dtype=Wx.dtype)  # h_hat
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        h = h0
        for t in range(T):
            ZR[:, t] = 1 / (1 + np.exp(-(Ax[:, t, : 2 * H] + np.dot(h, Wh[:, : 2 * H]))))
            z, r = ZR[:, t, :H], ZR[:, t, H:]
            RH[:, t] = r * h
            HH[:, t] = np.tanh(Ax[:, t, 2 * H :] + np.dot(RH[:, t], Wh[:, 2 * H :]))
            h = h + z * (HH[:, t] - h)
            hs[:, t] = h

        self.cache = (xs, h0, ZR, RH, HH, hs)
        self.h = h
        return hs.copy()  # backward reads hs from the cache: the caller gets its own copy

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs, h0, ZR, RH, HH, hs = self.cache
        N, T, D = xs.shape
        H = Wh.shape[0]
        hs_prev = np.concatenate([h0[:, np.newaxis], hs[:, :-1]], axis=1)

        dAs = np.empty((N, T, 3 * H), dtype=Wx.dtype)  # [dz, dr, dh_hat] before the activations
        dh = np.zeros((N, H), dtype=Wx.dtype)
        for t in reversed(range(T)):
            z, r = ZR[:, t, :H], ZR[:, t, H:]
            h_prev, h_hat = hs_prev[:, t], HH[:, t]
            dh = dhs[:, t] + dh  # h_t went into hs and into step t+1
            dt = dh * z * (1 - h_hat**2)
            dhr = np.dot(dt, Wh[:, 2 * H :].T)
            dzr = np.concatenate((dh * (h_hat - h_prev), dhr * h_prev), axis=1)
            dZR = dzr * ZR[:, t] * (1 - ZR[:, t])
            dAs[:, t, : 2 * H], dAs[:, t, 2 * H :] = dZR, dt
            dh = dh * (1 - z) + r * dhr + np.dot(dZR, Wh[:, : 2 * H].T)

        DA = dAs.reshape(N * T, 3 * H)
        dWh = np.concatenate(
            (
                np.dot(hs_prev.reshape(N * T, H).T, DA[:, : 2 * H]),
                np.dot(RH.reshape(N * T, H).T, DA[:, 2 * H :]),
            ),
            axis=1,
        )
        self.grads[0][...] = np.dot(xs.reshape(N * T, D).T, DA)
        self.grads[1][...] = dWh
        self.grads[2][...] = np.sum(DA, axis=0)
        self.dh = dh
        return np.dot(DA, Wx.T).reshape(N, T, D)

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
