"""Correct, written differently: no LSTM cells, the four gates as one array, and dc kept.

Forward projects all T inputs at once, Ax = xs Wx + b as one (N*T, D) x (D, 4H) product,
and keeps only h_{t-1} Wh in the loop (one product for the four gates). The gate values
G = [f, g, i, o] live in one (N, T, 4H) array, and the derivative of the activations is
one line for all four blocks:

    dA = dG * (G (1 - G) where the block is a sigmoid (f, i, o), 1 - G^2 where tanh (g))

Backward runs the loop over time for dA alone, then forms each weight gradient as ONE
product over the N*T rows. The layer also keeps `self.dc`, the gradient w.r.t. the
initial cell state, so a checker can compare it.
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np


class TimeLSTM:
    """T LSTM steps sharing [Wx, Wh, b] (gates f, g, i, o); `stateful` carries (h, c)."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None
        self.h, self.c = None, None
        self.dh, self.dc = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        sig = np.ones(4 * H, dtype=bool)
        sig[H : 2 * H] = False  # the g block is a tanh, the other three sigmoids

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=Wx.dtype)
        h0, c0 = self.h, self.c

        Ax = (np.dot(xs.reshape(N * T, D), Wx) + b).reshape(N, T, 4 * H)
        G = np.empty((N, T, 4 * H), dtype=Wx.dtype)
        cs = np.empty((N, T, H), dtype=Wx.dtype)
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        h, c = h0, c0
        for t in range(T):
            A = Ax[:, t] + np.dot(h, Wh)
            G[:, t, sig] = 1 / (1 + np.exp(-A[:, sig]))
            G[:, t, ~sig] = np.tanh(A[:, ~sig])
            f, g, i, o = G[:, t, :H], G[:, t, H : 2 * H], G[:, t, 2 * H : 3 * H], G[:, t, 3 * H :]
            c = f * c + g * i
            h = o * np.tanh(c)
            cs[:, t], hs[:, t] = c, h

        self.cache = (xs, h0, c0, G, cs, hs, sig)
        self.h, self.c = h, c
        return hs.copy()  # backward reads hs from the cache: the caller gets its own copy

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs, h0, c0, G, cs, hs, sig = self.cache
        N, T, D = xs.shape
        H = Wh.shape[0]

        dAs = np.empty_like(G)
        dh = np.zeros((N, H), dtype=Wx.dtype)
        dc = np.zeros((N, H), dtype=Wx.dtype)
        for t in reversed(range(T)):
            f, g, i, o = G[:, t, :H], G[:, t, H : 2 * H], G[:, t, 2 * H : 3 * H], G[:, t, 3 * H :]
            c_prev = cs[:, t - 1] if t > 0 else c0
            tanh_c = np.tanh(cs[:, t])
            dh = dhs[:, t] + dh  # h_t went into hs and into step t+1
            ds = dc + dh * o * (1 - tanh_c**2)
            dG = np.concatenate((ds * c_prev, ds * i, ds * g, dh * tanh_c), axis=1)
            dA = dG * np.where(sig, G[:, t] * (1 - G[:, t]), 1 - G[:, t] ** 2)
            dAs[:, t] = dA
            dh = np.dot(dA, Wh.T)
            dc = ds * f

        hs_prev = np.concatenate([h0[:, np.newaxis], hs[:, :-1]], axis=1)
        DA = dAs.reshape(N * T, 4 * H)
        self.grads[0][...] = np.dot(xs.reshape(N * T, D).T, DA)
        self.grads[1][...] = np.dot(hs_prev.reshape(N * T, H).T, DA)
        self.grads[2][...] = np.sum(DA, axis=0)
        self.dh, self.dc = dh, dc
        return np.dot(DA, Wx.T).reshape(N, T, D)

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None
