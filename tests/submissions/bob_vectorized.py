"""Correct, written differently: no RNN cells, and weight gradients as one product each.

Forward projects all T inputs at once, A = xs Wx + b as one (N*T, D) x (D, H) product,
and keeps only the recurrence in the loop. Backward runs the loop over time for the
pre-activation gradients dt_t alone, then forms each weight gradient as ONE product
over the N*T rows instead of T per-step products added up:

    dWx = sum_t x_t^T dt_t = X^T DT        X: (N*T, D) rows x_t[n],  DT: (N*T, H) rows dt_t[n]
    dWh = sum_t h_{t-1}^T dt_t = Hprev^T DT
    db  = sum of all rows of DT

The same sums as the book's, added in a different order (round-off differs, nothing else).
"""

# The book unpacks all of params and every shape, used or not; so does this file.
import numpy as np


class TimeRNN:
    """T tanh RNN steps sharing [Wx, Wh, b]; `stateful` carries h from one forward to the next."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        D, H = Wx.shape

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        h0 = self.h

        # a_t = x_t Wx + b for every step in one product; only h_{t-1} Wh is sequential.
        A = (np.dot(xs.reshape(N * T, D), Wx) + b).reshape(N, T, H)
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        h = h0
        for t in range(T):
            h = np.tanh(A[:, t, :] + np.dot(h, Wh))
            hs[:, t, :] = h

        self.cache = (xs, h0, hs)
        self.h = h
        return hs.copy()  # backward reads hs from the cache: the caller gets its own copy

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs, h0, hs = self.cache
        N, T, D = xs.shape
        D, H = Wx.shape

        dts = np.empty((N, T, H), dtype=Wx.dtype)  # dts[:, t] = dL/da_t
        dh = np.zeros((N, H), dtype=Wx.dtype)
        for t in reversed(range(T)):
            dts[:, t, :] = (dhs[:, t, :] + dh) * (1 - hs[:, t, :] ** 2)
            dh = np.dot(dts[:, t, :], Wh.T)

        # h_{t-1} lined up with step t, then every sum over steps as one product.
        hs_prev = np.concatenate([h0[:, np.newaxis, :], hs[:, :-1, :]], axis=1)
        X = xs.reshape(N * T, D)
        Hprev = hs_prev.reshape(N * T, H)
        DT = dts.reshape(N * T, H)
        self.grads[0][...] = np.dot(X.T, DT)
        self.grads[1][...] = np.dot(Hprev.T, DT)
        self.grads[2][...] = np.sum(DT, axis=0)
        self.dh = dh

        return np.dot(DT, Wx.T).reshape(N, T, D)

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
