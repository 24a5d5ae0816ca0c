"""The tanh RNN cell and its T-step unrolled form, as in "Deep Learning from Scratch 2".

    h_t = tanh(h_{t-1} Wh + x_t Wx + b)        x_t: (N, D), h_t: (N, H)

Same API and semantics as the book's `common/time_layers.py`; the TimeRNN here
computes the same numbers with far fewer NumPy calls (see `TimeRNN`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handrnn._buffers import _dot_into, _ones, _reuse
from handrnn._checks import (
    check_carried,
    check_data,
    check_grads,
    check_params,
    no_forward_error,
)

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
            raise no_forward_error("RNN", None)
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
    - A forward that raises part-way (a KeyboardInterrupt, a MemoryError) leaves `h`
      as it was and nothing for backward, which raises a RuntimeError until the next
      forward completes. A forward refused by its argument checks changes nothing.
    - `copy.copy(layer)` shares the parameter arrays and nothing else (see
      `__copy__`); `copy.deepcopy(layer)` shares nothing.

    How it differs from the book's loop of T `RNN` cells: only the recurrence is
    sequential, so the input projection xs Wx + b is one matrix product over all
    N*T rows before the loop, and dWx, dWh, db, dxs are one product each after the
    backward loop. The loops do three NumPy calls per step and allocate nothing.
    Inside, the states are kept time-major, (T, N, H), so every step works on one
    contiguous (N, H) block and the states each step started from are one (N*T, H)
    matrix for dWh. Memory: the layer keeps xs (a reference), its T + 1 states and
    one (N, T, H) work array, the last two reused by the next call of the same
    shape; backward's peak adds one more (N, T, H) array and dxs.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        check_params([Wx, Wh, b])
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.dh: Array | None = None
        # What backward needs from the last completed forward: xs (N, T, D); the
        # states, time-major, hseq (T + 1, N, H): hseq[0] is the initial state and
        # hseq[t + 1] the state after step t; and whether the initial state was zero.
        # hseq is reused by the next forward of the same shape, so the cache is None
        # from the moment a forward starts writing until it has completed.
        self._cache: tuple[Array, Array, bool] | None = None
        # For backward's message when there is no cache: the name of the exception
        # that stopped the last forward part-way (None: no forward ever failed).
        self._failed: str | None = None
        # A flat work array of N*T*H entries, reused by every call of the same shape:
        # forward's input projections, then backward's tanh' factors and dt.
        self._work: Array | None = None

    def __copy__(self) -> TimeRNN:
        """copy.copy(layer): a layer that shares this one's parameter arrays, nothing else.

        The copy's params list is its own but holds the very same Wx, Wh, b (an
        in-place optimizer step on either layer is a step on both, as for two layers
        built from the same arrays). grads, h, dh and the states of the last forward
        are copies and the work buffers are its own, so neither layer's calls change
        what the other's return; the copy can take the backward of the original's last
        forward. copy.deepcopy copies the params as well and shares nothing.
        """
        cls = type(self)
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        new.params = list(self.params)
        new.grads = [copy.copy(g) for g in self.grads]
        new.h, new.dh = copy.copy(self.h), copy.copy(self.dh)
        if self._cache is not None:
            xs, hseq, h0_is_zero = self._cache  # xs is never written to: share it
            new._cache = (xs, hseq.copy(), h0_is_zero)
        new._work = None
        return new

    def forward(self, xs: Array) -> Array:
        """xs: (N, T, D) -> hs: (N, T, H)."""
        D, H, dtype = check_params(self.params)
        xs = np.ascontiguousarray(check_data("xs", xs, (("N", None), ("T", None), ("D", D)), dtype))
        N, T, _ = xs.shape
        if N == 0 or T == 0:
            raise ValueError(f"xs must have N >= 1 and T >= 1, got shape {xs.shape}")
        h0 = self._start_state(N, H, dtype)

        # The checks have passed; the buffers that hold the last forward's states are
        # about to be overwritten. Until this forward completes there is nothing for
        # backward: if it raises part-way (or is interrupted), backward refuses to run
        # and h is left as it was.
        states = self._cache[1] if self._cache is not None else None
        self._cache = None
        try:
            hs, hseq = self._unroll(xs, h0, states)
            h = hseq[-1].copy()
        except BaseException as e:
            self._failed = type(e).__name__
            raise
        # Only now, with everything computed, do h and the cache change (together).
        self.h, self._cache = h, (xs, hseq, h0 is None)
        return hs

    def _unroll(self, xs: Array, h0: Array | None, states: Array | None) -> tuple[Array, Array]:
        """forward's computation, from h0 (None: zeros): (hs (N, T, H), hseq (T + 1, N, H)).

        hseq reuses `states` (the last forward's) if it has the right shape.
        """
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H, dtype = Wh.shape[0], Wx.dtype

        # All T input projections at once, one matrix product over the N*T rows of
        # xs, batch-major like xs, into the work array (reused: no page faults) ...
        self._work = _reuse(self._work, (N * T * H,), dtype)
        proj = self._work.reshape(N, T, H)
        np.dot(xs.reshape(N * T, D), Wx, out=proj.reshape(N * T, H))
        # ... then, with b, into the time-major states, where hseq[t + 1] holds
        # x_t Wx + b until step t overwrites it with h_t. Time-major, every step reads
        # and writes one contiguous (N, H) block, which NumPy handles faster than a
        # strided hs[:, t] (it matters at small sizes, where per-call costs dominate).
        hseq = _reuse(states, (T + 1, N, H), dtype)
        hseq[0] = 0 if h0 is None else h0
        np.add(proj.transpose(1, 0, 2), b, out=hseq[1:])

        # np.dot rather than np.matmul for products into our own contiguous arrays
        # (same BLAS call, about 0.5 us less overhead per call); in the loops the
        # output array is passed positionally (the out= keyword costs ~0.05 us).
        dot, add, tanh = np.dot, np.add, np.tanh
        hWh = np.empty((N, H), dtype=dtype)
        steps = list(hseq)  # the T + 1 (N, H) views, made once
        first = 0
        if h0 is None:  # h_{-1} Wh is zero: step 0 is just the tanh
            tanh(steps[1], steps[1])
            first = 1
        for h_prev, a in zip(steps[first:-1], steps[first + 1 :]):
            dot(h_prev, Wh, hWh)
            add(a, hWh, a)
            tanh(a, a)  # h_t = tanh(h_{t-1} Wh + x_t Wx + b)

        # The caller gets their own batch-major copy; hseq stays ours for backward.
        hs: Array = hseq[1:].transpose(1, 0, 2).copy()  # (a copy even when N == 1)
        return hs, hseq

    def backward(self, dhs: Array) -> Array:
        """dhs: (N, T, H) -> dxs: (N, T, D); writes dWx, dWh, db into grads and sets dh."""
        if self._cache is None:
            raise no_forward_error("TimeRNN", self._failed)
        D, H, dtype = check_params(self.params)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        xs, hseq, h0_is_zero = self._cache
        N, T, _ = xs.shape
        if xs.shape[2] != D or hseq.shape[2] != H or xs.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        dhs = check_data("dhs", dhs, (("N", N), ("T", T), ("H", H)), dtype)

        # tanh'(a_t) = 1 - h_t^2 for every step at once, time-major like hseq, in the
        # work array (the projections in it are spent).
        self._work = _reuse(self._work, (N * T * H,), dtype)
        dtanh = self._work.reshape(T, N, H)
        np.square(hseq[1:], out=dtanh)
        np.subtract(1, dtanh, out=dtanh)

        # dt[t] = dL/da_t, time-major, built in place in a copy of dhs from the last
        # step back: h_t went two ways (to hs and to step t+1), so
        # dL/dh_t = dhs[:, t] + dt[t+1] Wh^T. (Copying dhs in one pass is faster
        # than reading the strided dhs[:, t] inside the loop.)
        dt = np.empty((T, N, H), dtype=dtype)
        np.copyto(dt, dhs.transpose(1, 0, 2))
        # A contiguous copy of Wh^T: OpenBLAS runs the small per-step products
        # faster on it than on the transposed view.
        dot, add, multiply, WhT = np.dot, np.add, np.multiply, np.ascontiguousarray(Wh.T)
        dts, dtanhs = list(dt), list(dtanh)  # the (N, H) views, made once
        dh_next = np.empty((N, H), dtype=dtype)
        d = multiply(dts[T - 1], dtanhs[T - 1], dts[T - 1])
        for t in range(T - 2, -1, -1):
            dot(d, WhT, dh_next)
            d = add(dts[t], dh_next, dts[t])
            multiply(d, dtanhs[t], d)
        self.dh = dot(d, WhT)

        # The weights are shared by all steps, so their gradients are sums over
        # steps: one product over the N*T rows each.
        rows = N * T
        dt_rows = dt.reshape(rows, H)
        # dWh = sum_t h_{t-1}^T dt[t]: time-major, hseq[:-1] lines up with dt. A
        # zero initial state adds nothing: skip its N rows.
        skip = N if h0_is_zero else 0
        _dot_into(hseq[:-1].reshape(rows, H)[skip:].T, dt_rows[skip:], self.grads[1])
        # db = column sums of dt, as a matrix-vector product (faster than np.sum(axis=0)).
        _dot_into(_ones(rows, dtype), dt_rows, self.grads[2])
        # dWx and dxs pair dt with the batch-major xs: transpose dt once, into the
        # spent dtanh array, and free dt before dxs is allocated (peak memory).
        dt_bm = dtanh.reshape(N, T, H)
        np.copyto(dt_bm, dt.transpose(1, 0, 2))
        del dt, dts, dt_rows, d
        dt_rows = dt_bm.reshape(rows, H)
        _dot_into(xs.reshape(rows, D).T, dt_rows, self.grads[0])
        # OpenBLAS takes the transposed view of Wx well in a tall product, but is
        # slower with it than the copy costs in a short one (few rows).
        WxT = Wx.T if rows >= 256 else np.ascontiguousarray(Wx.T)
        dxs: Array = dot(dt_rows, WxT).reshape(N, T, D)
        return dxs

    def set_state(self, h: Array) -> None:
        """Start the next forward (if stateful) from h: (N, H). A copy is kept."""
        _, H, dtype = check_params(self.params)
        self.h = np.array(check_data("h", h, (("N", None), ("H", H)), dtype), copy=True)

    def reset_state(self) -> None:
        """Start the next forward from zeros."""
        self.h = None

    def _start_state(self, N: int, H: int, dtype: np.dtype[Any]) -> Array | None:
        """The state forward starts from, (N, H), checked; None means zeros."""
        if not self.stateful:
            return None
        return check_carried("h", self.h, N, H, dtype)
