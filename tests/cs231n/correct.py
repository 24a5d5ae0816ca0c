"""Right: the vanilla RNN of CS231n assignment 3 (rnn_layers.py), written from the formulas.

    next_h = tanh(prev_h Wh + x Wx + b)                      (the book's (D, H) layout)
    dt     = dnext_h * (1 - next_h**2)
    dx = dt Wx^T,  dprev_h = dt Wh^T,  dWx = x^T dt,  dWh = prev_h^T dt,  db = sum_n dt

rnn_forward loops the step over t from h0; rnn_backward loops the step backward from the
last step, feeding each step dh[:, t] + the dprev_h of step t+1 (h_t goes to the output
and to step t+1), and sums the weight gradients over the steps. Arrays are allocated in
the inputs' dtype (CS231n's own code uses np.zeros' float64 default).
"""

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(prev_h @ Wh + x @ Wx + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dt = dnext_h * (1 - next_h**2)
    dx = dt @ Wx.T
    dprev_h = dt @ Wh.T
    dWx = x.T @ dt
    dWh = prev_h.T @ dt
    db = dt.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    N, T = x.shape[0], x.shape[1]
    H = h0.shape[1]
    h = np.zeros((N, T, H), dtype=x.dtype)
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, cache_t = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        cache.append(cache_t)
    return h, cache


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dWx = np.zeros((D, H), dtype=dh.dtype)
    dWh = np.zeros((H, H), dtype=dh.dtype)
    db = np.zeros(H, dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    for t in reversed(range(T)):
        dnext_h = dh[:, t, :] + dprev_h  # h_t went to h[:, t] and to step t+1
        dx[:, t, :], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dnext_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db
