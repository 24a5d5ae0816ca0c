"""Right, written another way: rnn_forward and rnn_backward do not call the step functions.

The sequence functions compute the input projection
x Wx + b for all steps at once, the recurrence alone in the loop, and the weight
gradients as single products over the N*T rows. The step functions are the same
formulas for one step. Both parts are checked on their own, and both must pass.
"""

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(np.dot(prev_h, Wh) + np.dot(x, Wx) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - np.square(next_h))
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, np.sum(da, axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    xw = (x.reshape(N * T, -1) @ Wx + b).reshape(N, T, -1)
    h = np.empty_like(xw)
    prev = h0
    for t in range(T):
        prev = np.tanh(xw[:, t] + prev @ Wh)
        h[:, t] = prev
    return h, (x.copy(), h0.copy(), h.copy(), Wx, Wh)


def rnn_backward(dh, cache):
    x, h0, h, Wx, Wh = cache
    N, T, H = dh.shape
    da = np.empty_like(h)
    carry = np.zeros_like(h0)
    for t in reversed(range(T)):
        da[:, t] = (dh[:, t] + carry) * (1.0 - h[:, t] ** 2)
        carry = da[:, t] @ Wh.T
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    rows = da.reshape(N * T, H)
    dx = (rows @ Wx.T).reshape(N, T, -1)
    dWx = x.reshape(N * T, -1).T @ rows
    dWh = h_prev.reshape(N * T, H).T @ rows
    db = rows.sum(axis=0)
    return dx, carry, dWx, dWh, db
