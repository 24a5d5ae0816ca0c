"""Wrong (GRU forward): the reset gate applied after the product, backward to match.

    book:  h_hat = tanh(x Wxh + (r h_{t-1}) Whh + bh)
    here:  h_hat = tanh(x Wxh + r (h_{t-1} Whh) + bh)

PyTorch's formula (without its second bias b_hn) in a layer meant to be the book's: a
different model, with its exact gradient. hs, h and every gradient are off.

Unlike the other wrong GRUs, this one is `correct_einsum_gru.py` with one line changed, marked
`# MISTAKE:`: the term's subscripts, from which its forward and its gradient are both made.
"""

# Unpacked as the book does (Wx, Wh, b = self.params), used or not.
import numpy as np

RESET = "nj,nk,kj->nj"  # MISTAKE: r * (h_prev Whh), the reset gate after the product


def einsum_grads(spec, operands, dout):
    """The gradients of sum(einsum(spec, *operands) * dout) w.r.t. each operand."""
    ins, out = spec.split("->")
    subs = ins.split(",")
    grads = []
    for k, sub in enumerate(subs):
        rest = [s for j, s in enumerate(subs) if j != k]
        others = [a for j, a in enumerate(operands) if j != k]
        grads.append(np.einsum(",".join([out, *rest]) + "->" + sub, dout, *others))
    return grads


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class TimeGRU:
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
        Ax = np.matmul(xs_tm, Wx) + b  # (T, N, 3H)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        zs, rs, hats = (np.empty((T, N, H), dtype=Wx.dtype) for _ in range(3))
        hseq[0] = self.h
        for t in range(T):
            h = hseq[t]
            zs[t] = sigmoid(Ax[t, :, :H] + np.matmul(h, Wh[:, :H]))
            rs[t] = sigmoid(Ax[t, :, H : 2 * H] + np.matmul(h, Wh[:, H : 2 * H]))
            hats[t] = np.tanh(Ax[t, :, 2 * H :] + np.einsum(RESET, rs[t], h, Wh[:, 2 * H :]))
            hseq[t + 1] = (1 - zs[t]) * h + zs[t] * hats[t]
        self.cache = (xs_tm, hseq, zs, rs, hats)
        self.h = hseq[-1].copy()
        return hseq[1:].transpose(1, 0, 2).copy()

    def backward(self, dhs):
        Wx, Wh, b = self.params
        xs_tm, hseq, zs, rs, hats = self.cache
        T, N, D = xs_tm.shape
        H = Wh.shape[0]
        dhs_tm = dhs.transpose(1, 0, 2)
        dA = np.empty((T, N, 3 * H), dtype=Wx.dtype)  # z, r, h_hat before the activations
        dWhh = np.zeros((H, H), dtype=Wx.dtype)
        g = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T - 1, -1, -1):
            h, z, r, h_hat = hseq[t], zs[t], rs[t], hats[t]
            g = g + dhs_tm[t]  # h_t went into hs and into step t+1: both gradients add up
            dt = g * z * (1 - h_hat * h_hat)
            dr, dh_rec, dWhh_t = einsum_grads(RESET, (r, h, Wh[:, 2 * H :]), dt)
            dWhh += dWhh_t
            dA[t, :, :H] = g * (h_hat - h) * z * (1 - z)
            dA[t, :, H : 2 * H] = dr * r * (1 - r)
            dA[t, :, 2 * H :] = dt
            g = g * (1 - z) + dh_rec + np.matmul(dA[t, :, : 2 * H], Wh[:, : 2 * H].T)
        dWzr = np.tensordot(hseq[:-1], dA[:, :, : 2 * H], axes=([0, 1], [0, 1]))
        self.grads[0][...] = np.tensordot(xs_tm, dA, axes=([0, 1], [0, 1]))
        self.grads[1][...] = np.concatenate((dWzr, dWhh), axis=1)
        self.grads[2][...] = dA.sum(axis=(0, 1))
        self.dh = g
        return np.matmul(dA, Wx.T).transpose(1, 0, 2).copy()

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
