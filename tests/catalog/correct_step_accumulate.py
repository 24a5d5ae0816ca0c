"""Correct, written differently: other orders of operations, other forms of the same gradients.

Compared with the book:
- forward adds the terms in another order, b + x_t Wx + h_{t-1} Wh;
- backward multiplies tanh' first, dt_t = (1 - h_t^2) * (dh_next + dhs_t);
- the weight gradients are added step by step straight into `self.grads` (zeroed
  first) instead of into a separate list copied at the end;
- the products are einsums: dWh += sum_n h_{t-1}[n, i] dt_t[n, j], and the transposed
  products dt Wh^T and dt Wx^T are written with the index of W that is summed over.

The math is the same; only the round-off differs.
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

        h_prevs, h_nexts = [], []  # the state each step read, and the one it wrote
        h = self.h
        for t in range(T):
            h_prevs.append(h)
            h = np.tanh(b + np.dot(xs[:, t, :], Wx) + np.dot(h, Wh))
            h_nexts.append(h)

        self.cache = (xs, h_prevs, h_nexts)
        self.h = h
        return np.stack(h_nexts, axis=1)  # (N, T, H), a new array

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs, h_prevs, h_nexts = self.cache
        N, T, D = xs.shape

        dWx, dWh, db = self.grads
        dWx[...] = 0
        dWh[...] = 0
        db[...] = 0

        dxs = np.empty((N, T, D), dtype=Wx.dtype)
        dh_next = np.zeros_like(h_nexts[0])
        for t in reversed(range(T)):
            dt = (1 - h_nexts[t] ** 2) * (dh_next + dhs[:, t, :])
            dWx += np.einsum("nd,nh->dh", xs[:, t, :], dt)
            dWh += np.einsum("ni,nj->ij", h_prevs[t], dt)
            db += np.einsum("nh->h", dt)
            dxs[:, t, :] = np.einsum("nh,dh->nd", dt, Wx)  # dt Wx^T
            dh_next = np.einsum("nj,ij->ni", dt, Wh)  # dt Wh^T
        self.dh = dh_next

        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
