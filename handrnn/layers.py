"""The tanh RNN cell and its T-step unrolled form, as in "Deep Learning from Scratch 2".

    h_t = tanh(h_{t-1} Wh + x_t Wx + b)        x_t: (N, D), h_t: (N, H)

Same API and semantics as the book's `common/time_layers.py`; the TimeRNN here
computes the same numbers with far fewer NumPy calls (see `TimeRNN`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from handrnn._checks import check_data, check_grads, check_params

Array = NDArray[Any]


class RNN:
    """One tanh RNN step: `forward(x, h_prev) -> h_next`, `backward(dh_next) -> (dx, dh_prev)`.

    Wx: (D, H), Wh: (H, H), b: (H,). `params` holds the very arrays passed in;
    `grads` holds three arrays of the same shapes, overwritten in place by backward.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_params([Wx, Wh, b])
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: tuple[Array, Array, Array] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        """x: (N, D), h_prev: (N, H) -> h_next: (N, H)."""
        D, H, dtype = check_params(self.params)
        Wx, Wh, b = self.params
        x = check_data("x", x, (("N", None), ("D", D)), dtype)
        h_prev = check_data("h_prev", h_prev, (("N", x.shape[0]), ("H", H)), dtype)

        h_next: Array = np.tanh(h_prev @ Wh + x @ Wx + b)

        # Backward needs h_next; keep our own copy so a caller editing the
        # returned array cannot change the gradient.
        self.cache = (x, h_prev, h_next.copy())
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        """dh_next: (N, H) -> (dx: (N, D), dh_prev: (N, H)); writes grads in place."""
        if self.cache is None:
            raise RuntimeError(
                "RNN.backward() called before forward(): there is nothing to differentiate"
            )
        D, H, dtype = check_params(self.params)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        x, h_prev, h_next = self.cache
        if x.shape[1] != D or h_prev.shape[1] != H:
            raise ValueError("params changed shape between forward() and backward()")
        dh_next = check_data("dh_next", dh_next, (("N", x.shape[0]), ("H", H)), dtype)

        dt = dh_next * (1 - h_next**2)  # tanh'(a) = 1 - tanh(a)^2
        np.matmul(x.T, dt, out=self.grads[0])
        np.matmul(h_prev.T, dt, out=self.grads[1])
        np.sum(dt, axis=0, out=self.grads[2])
        dx = dt @ Wx.T
        dh_prev = dt @ Wh.T
        return dx, dh_prev


class TimeRNN:
    """T steps of the tanh RNN with shared weights: `forward(xs) -> hs`, `backward(dhs) -> dxs`.

    xs: (N, T, D) -> hs: (N, T, H);  dhs: (N, T, H) -> dxs: (N, T, D).
    Wx: (D, H), Wh: (H, H), b: (H,), all float32 or all float64; everything is
    computed and returned in that dtype.

    - `params` is [Wx, Wh, b], the very arrays passed in; `grads` is [dWx, dWh, db],
      allocated once and overwritten in place by every backward.
    - `h` is the hidden state after the last forward, (N, H); `dh` is the gradient
      with respect to the segment's initial hidden state after backward, (N, H).
    - `stateful=False`: every forward starts from zeros. `stateful=True`: forward
      starts from the carried `h` (or the one given to `set_state`), zeros after
      `reset_state()`; backward stops at the segment start (truncated BPTT).
    - Like the book, forward keeps a reference to xs for backward: do not edit xs in
      place between forward and backward.

    How it differs from the book's loop of T `RNN` cells: only the recurrence is
    sequential, so the input projection xs Wx + b is one matrix product over all
    N*T rows before the loop, and dWx, dWh, db, dxs are one product each after the
    backward loop. The loops do three NumPy calls per step and allocate nothing.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        check_params([Wx, Wh, b])
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.dh: Array | None = None
        # What backward needs from the last forward: xs (N, T, D), the state each
        # step started from hprev (N, T, H), and the final state h_T (N, H).
        self._cache: tuple[Array, Array, Array] | None = None

    def forward(self, xs: Array) -> Array:
        """xs: (N, T, D) -> hs: (N, T, H)."""
        D, H, dtype = check_params(self.params)
        Wx, Wh, b = self.params
        xs = np.ascontiguousarray(check_data("xs", xs, (("N", None), ("T", None), ("D", D)), dtype))
        N, T, _ = xs.shape
        if N == 0 or T == 0:
            raise ValueError(f"xs must have N >= 1 and T >= 1, got shape {xs.shape}")
        h0 = self._start_state(N, H, dtype)

        # All T input projections at once: hs[:, t] holds x_t Wx + b until step t
        # overwrites it with h_t.
        hs = np.empty((N, T, H), dtype=dtype)
        np.matmul(xs.reshape(N * T, D), Wx, out=hs.reshape(N * T, H))
        hs += b

        matmul, add, tanh = np.matmul, np.add, np.tanh
        hWh = np.empty((N, H), dtype=dtype)
        h = h0
        for t in range(T):
            a = hs[:, t]
            matmul(h, Wh, out=hWh)
            add(a, hWh, out=a)
            tanh(a, out=a)  # h_t = tanh(h_{t-1} Wh + x_t Wx + b)
            h = a

        # The state each step started from, h_{t-1}, lined up with step t so that
        # dWh is one product after the backward loop.
        hprev = np.empty_like(hs)
        hprev[:, 0] = h0
        hprev[:, 1:] = hs[:, :-1]
        h_T = hs[:, -1].copy()

        self._cache = (xs, hprev, h_T)
        self.h = h_T.copy()
        hs_out: Array = hs.copy()
        return hs_out

    def backward(self, dhs: Array) -> Array:
        """dhs: (N, T, H) -> dxs: (N, T, D); writes dWx, dWh, db into grads and sets dh."""
        if self._cache is None:
            raise RuntimeError(
                "TimeRNN.backward() called before forward(): there is nothing to differentiate"
            )
        D, H, dtype = check_params(self.params)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        xs, hprev, h_T = self._cache
        N, T, _ = xs.shape
        if xs.shape[2] != D or hprev.shape[2] != H or xs.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        dhs = check_data("dhs", dhs, (("N", N), ("T", T), ("H", H)), dtype)

        # tanh'(a_t) = 1 - h_t^2 for every step at once.
        dtanh = np.empty_like(hprev)
        dtanh[:, :-1] = hprev[:, 1:]
        dtanh[:, -1] = h_T
        np.multiply(dtanh, dtanh, out=dtanh)
        np.subtract(1, dtanh, out=dtanh)

        # dt[:, t] = dL/da_t, built in place in a copy of dhs, from the last step back.
        dt = np.array(dhs, dtype=dtype, copy=True)
        matmul, WhT = np.matmul, Wh.T
        dh_next = np.empty((N, H), dtype=dtype)
        dt[:, T - 1] *= dtanh[:, T - 1]
        for t in range(T - 2, -1, -1):
            d = dt[:, t]
            matmul(dt[:, t + 1], WhT, out=dh_next)
            d += dh_next  # h_t went two ways (to hs and to step t+1): add both gradients
            d *= dtanh[:, t]
        del dtanh

        # The weights are shared by all steps, so their gradients are sums over
        # steps: one product over the N*T rows each.
        dt_rows = dt.reshape(N * T, H)
        np.matmul(xs.reshape(N * T, D).T, dt_rows, out=self.grads[0])
        np.matmul(hprev.reshape(N * T, H).T, dt_rows, out=self.grads[1])
        np.sum(dt_rows, axis=0, out=self.grads[2])
        self.dh = dt[:, 0] @ WhT
        dxs: Array = (dt_rows @ Wx.T).reshape(N, T, D)
        return dxs

    def set_state(self, h: Array) -> None:
        """Start the next forward (if stateful) from h: (N, H). A copy is kept."""
        _, H, dtype = check_params(self.params)
        self.h = np.array(check_data("h", h, (("N", None), ("H", H)), dtype), copy=True)

    def reset_state(self) -> None:
        """Start the next forward from zeros."""
        self.h = None

    def _start_state(self, N: int, H: int, dtype: np.dtype[Any]) -> Array:
        if not self.stateful or self.h is None:
            return np.zeros((N, H), dtype=dtype)
        h = self.h
        if not isinstance(h, np.ndarray) or h.ndim != 2 or h.shape[1] != H:
            got = h.shape if isinstance(h, np.ndarray) else type(h).__name__
            raise ValueError(f"the carried state h must have shape (N, H={H}), got {got}")
        if h.shape[0] != N:
            raise ValueError(
                f"the carried state h has batch size {h.shape[0]} (shape {h.shape}) but xs has "
                f"N={N}: call reset_state() or set_state() with shape (N={N}, H={H}) first"
            )
        return check_data("h", h, (("N", N), ("H", H)), dtype)
