"""The LSTM cell and its T-step unrolled form, as in "Deep Learning from Scratch 2".

Row vectors, as in the book; the four gate blocks of H columns in the book's order
f, g, i, o (forget, new cell content, input, output):

    A   = x_t Wx + h_{t-1} Wh + b                x_t: (N, D),  h_t, c_t: (N, H)
    f   = σ(A[:, :H])       g = tanh(A[:, H:2H])
    i   = σ(A[:, 2H:3H])    o = σ(A[:, 3H:])
    c_t = f ⊙ c_{t-1} + g ⊙ i
    h_t = o ⊙ tanh(c_t)

Wx: (D, 4H), Wh: (H, 4H), b: (4H,). σ is computed as (1 + tanh(a/2)) / 2, which cannot
overflow (see `handrnn._buffers.sigmoid`). Same API and semantics as the book's
`common/time_layers.py` LSTM and TimeLSTM; the TimeLSTM here computes the same numbers
with far fewer NumPy calls (see `TimeLSTM`).
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from handrnn._buffers import _dot_into, _ones, _reuse, sigmoid
from handrnn._checks import (
    check_carried,
    check_data,
    check_grads,
    check_params,
    no_forward_error,
)

Array = NDArray[Any]
GATES = 4  # f, g, i, o
# The size of the chunks of gates backward works on at a time: fits the CPU's L2 cache.
_CHUNK_BYTES = 256 * 1024


class LSTM:
    """One LSTM step: `forward(x, h_prev, c_prev) -> (h_next, c_next)`,
    `backward(dh_next, dc_next) -> (dx, dh_prev, dc_prev)`.

    Wx: (D, 4H), Wh: (H, 4H), b: (4H,), gate blocks f, g, i, o. `params` holds the very
    arrays passed in; `grads` holds three arrays of the same shapes, overwritten in place
    by backward. Like the book's cell, it keeps references to x, h_prev and c_prev for
    backward: do not edit them in place in between. The arrays it returns are the
    caller's own.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_params([Wx, Wh, b], GATES)
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        # x, h_prev, c_prev, the four gates (N, 4H) and tanh(c_next).
        self.cache: tuple[Array, Array, Array, Array, Array] | None = None

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        """x: (N, D), h_prev: (N, H), c_prev: (N, H) -> (h_next: (N, H), c_next: (N, H))."""
        D, H, dtype = check_params(self.params, GATES)
        Wx, Wh, b = self.params
        x = check_data("x", x, (("N", None), ("D", D)), dtype)
        N = x.shape[0]
        h_prev = check_data("h_prev", h_prev, (("N", N), ("H", H)), dtype)
        c_prev = check_data("c_prev", c_prev, (("N", N), ("H", H)), dtype)

        A = x @ Wx + h_prev @ Wh + b
        f = sigmoid(A[:, :H])
        g = np.tanh(A[:, H : 2 * H])
        i = sigmoid(A[:, 2 * H : 3 * H])
        o = sigmoid(A[:, 3 * H :])

        c_next = f * c_prev + g * i
        tanh_c = np.tanh(c_next)
        h_next = o * tanh_c

        # Backward needs the gates and tanh(c_next), not the returned arrays: a caller
        # editing h_next or c_next cannot change the gradient.
        self.cache = (x, h_prev, c_prev, np.hstack((f, g, i, o)), tanh_c)
        return h_next, c_next

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        """dh_next, dc_next: (N, H) -> (dx: (N, D), dh_prev: (N, H), dc_prev: (N, H)).

        Writes dWx, dWh, db into grads in place.
        """
        if self.cache is None:
            raise RuntimeError(
                "LSTM.backward() called before forward(): there is nothing to differentiate"
            )
        D, H, dtype = check_params(self.params, GATES)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, gates, tanh_c = self.cache
        if x.shape[1] != D or h_prev.shape[1] != H or x.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        N = x.shape[0]
        dh_next = check_data("dh_next", dh_next, (("N", N), ("H", H)), dtype)
        dc_next = check_data("dc_next", dc_next, (("N", N), ("H", H)), dtype)
        f, g, i, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]

        # c_next went to h_next (through tanh) and to the next step (dc_next).
        ds = dc_next + (dh_next * o) * (1 - tanh_c**2)
        dc_prev = ds * f

        df = ds * c_prev
        dg = ds * i
        di = ds * g
        do = dh_next * tanh_c

        df *= f * (1 - f)  # σ'(a) = σ(a) (1 - σ(a))
        dg *= 1 - g**2  # tanh'(a) = 1 - tanh(a)^2
        di *= i * (1 - i)
        do *= o * (1 - o)

        dA = np.hstack((df, dg, di, do))
        np.matmul(x.T, dA, out=self.grads[0])
        np.matmul(h_prev.T, dA, out=self.grads[1])
        np.sum(dA, axis=0, out=self.grads[2])
        dx = dA @ Wx.T
        dh_prev = dA @ Wh.T
        return dx, dh_prev, dc_prev


class _Cache(NamedTuple):
    """What backward needs from the last completed forward, all time-major.

    xs: (T, N, D), a copy of the input; gates: (T, N, 4H), f, g, i, o of every step;
    hseq, cseq: (T + 1, N, H), [0] the initial states and [t + 1] those after step t;
    tanh_c: (T, N, H), tanh(c_t); h0_is_zero: whether the initial h was zeros.
    """

    xs: Array
    gates: Array
    hseq: Array
    cseq: Array
    tanh_c: Array
    h0_is_zero: bool


class TimeLSTM:
    """T LSTM steps with shared weights: `forward(xs) -> hs`, `backward(dhs) -> dxs`.

    xs: (N, T, D) -> hs: (N, T, H);  dhs: (N, T, H) -> dxs: (N, T, D).
    Wx: (D, 4H), Wh: (H, 4H), b: (4H,), gate blocks f, g, i, o (see the module), all
    float32 or all float64; everything is computed and returned in that dtype.

    - `params` is [Wx, Wh, b], the very arrays passed in; `grads` is [dWx, dWh, db],
      allocated once and overwritten in place by every backward.
    - `h`, `c`: the hidden and cell states after the last forward, (N, H). `dh`, `dc`:
      after backward, the gradients with respect to the segment's initial h and c, (N, H).
    - `stateful=False`: every forward starts from zeros. `stateful=True`: forward starts
      from the carried `h` and `c` (or those given to `set_state`; a state that is None
      starts from zeros, so `set_state(h)` starts c from zeros, as in the book), zeros
      after `reset_state()`; backward stops at the segment start (truncated BPTT): no
      gradient comes into the segment's last step from a later segment, for h or c.
    - Forward keeps a copy of xs for backward, so editing xs afterwards changes nothing;
      every array it returns or sets (hs, dxs, h, c, dh, dc) is the caller's own.
    - A forward that raises part-way (a KeyboardInterrupt, a MemoryError) leaves `h` and
      `c` as they were and nothing for backward, which raises a RuntimeError until the
      next forward completes. A call refused by its argument checks changes nothing.
    - `copy.copy(layer)` shares the parameter arrays and nothing else (see `__copy__`);
      `copy.deepcopy(layer)` shares nothing.

    How it differs from the book's loop of T `LSTM` cells: only the recurrence is
    sequential. Before the forward loop, the input projections x_t Wx + b of all steps
    are one matrix product over the N*T rows; each step then does one (N, H) x (H, 4H)
    product for h_{t-1} Wh and works in place on its own (N, 4H) block. Backward computes
    the local derivatives that do not depend on the gradient flowing back a chunk of
    steps at a time, just before its loop reaches them; the loop then does one
    (N, 4H) x (4H, H) product per step (dA_t Wh^T) and six elementwise calls; dWx, dWh,
    db and dxs are one product each after the loop. Inside, everything is time-major,
    (T, N, ...), so each step works on contiguous blocks. Memory: the layer keeps a
    time-major copy of xs, the gates, the T + 1 states h and c and tanh(c_t), that is
    N*T*(D + 7H) numbers, and backward's work arrays, N*T*(D + 6H); all of them are
    reused by the next call of the same shape.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        check_params([Wx, Wh, b], GATES)
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.c: Array | None = None
        self.dh: Array | None = None
        self.dc: Array | None = None
        # The last completed forward, for backward. Its arrays are reused by the next
        # forward of the same shape, so it is None from the moment a forward starts
        # writing until that forward has completed.
        self._cache: _Cache | None = None
        # For backward's message when there is no cache: the name of the exception that
        # stopped the last forward part-way (None: no forward ever failed).
        self._failed: str | None = None
        # backward's work arrays, by name, reused by every call of the same shape.
        self._work: dict[str, Array] = {}

    def __copy__(self) -> TimeLSTM:
        """copy.copy(layer): a layer that shares this one's parameter arrays, nothing else.

        The copy's params list is its own but holds the very same Wx, Wh, b (an in-place
        optimizer step on either layer is a step on both, as for two layers built from
        the same arrays). grads, h, c, dh, dc and the last forward's arrays are copies and
        the work arrays its own, so neither layer's calls change what the other's return;
        the copy can take the backward of the original's last forward.
        """
        cls = type(self)
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        new.params = list(self.params)
        new.grads = [copy.copy(g) for g in self.grads]
        new.h, new.c = copy.copy(self.h), copy.copy(self.c)
        new.dh, new.dc = copy.copy(self.dh), copy.copy(self.dc)
        if self._cache is not None:
            # All of them, xs too: the next forward of the same shape overwrites them.
            c = self._cache
            new._cache = _Cache(
                c.xs.copy(),
                c.gates.copy(),
                c.hseq.copy(),
                c.cseq.copy(),
                c.tanh_c.copy(),
                c.h0_is_zero,
            )
        new._work = {}
        return new

    def forward(self, xs: Array) -> Array:
        """xs: (N, T, D) -> hs: (N, T, H)."""
        D, H, dtype = check_params(self.params, GATES)
        xs = check_data("xs", xs, (("N", None), ("T", None), ("D", D)), dtype)
        N, T, _ = xs.shape
        if N == 0 or T == 0:
            raise ValueError(f"xs must have N >= 1 and T >= 1, got shape {xs.shape}")
        h0, c0 = self._start_state(N, H, dtype)

        # The checks have passed; the arrays of the last forward are about to be
        # overwritten. Until this forward completes there is nothing for backward: if it
        # raises part-way (or is interrupted), backward refuses to run and h and c are
        # left as they were.
        old = self._cache
        self._cache = None
        try:
            hs, cache = self._unroll(xs, h0, c0, old)
            h, c = cache.hseq[-1].copy(), cache.cseq[-1].copy()
        except BaseException as e:
            self._failed = type(e).__name__
            raise
        # Only now, with everything computed, do h, c and the cache change (together).
        self.h, self.c, self._cache = h, c, cache
        return hs

    def _unroll(
        self, xs: Array, h0: Array | None, c0: Array | None, old: _Cache | None
    ) -> tuple[Array, _Cache]:
        """forward's computation from h0, c0 (None: zeros): (hs (N, T, H), the cache).

        The cache reuses the arrays of `old` (the last forward's) of the right shape.
        """
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H, dtype = Wh.shape[0], Wx.dtype

        def buffer(name: str, shape: tuple[int, ...]) -> Array:
            return _reuse(None if old is None else getattr(old, name), shape, dtype)

        # A time-major copy of xs: each step's rows are then contiguous, and backward's
        # products pair them with the time-major gradients without transposing those.
        xs_tm = buffer("xs", (T, N, D))
        np.copyto(xs_tm, xs.transpose(1, 0, 2))
        # A = x_t Wx + b for all T steps at once, one matrix product over the N*T rows;
        # step t adds h_{t-1} Wh and turns its block into the gates, in place.
        gates = buffer("gates", (T, N, 4 * H))
        np.dot(xs_tm.reshape(T * N, D), Wx, out=gates.reshape(T * N, 4 * H))
        np.add(gates, b, out=gates)
        hseq, cseq = buffer("hseq", (T + 1, N, H)), buffer("cseq", (T + 1, N, H))
        hseq[0] = 0 if h0 is None else h0
        cseq[0] = 0 if c0 is None else c0
        tanh_c = buffer("tanh_c", (T, N, H))

        # The per-step views, made once: A_t, its blocks f, g, i, o and, side by side,
        # i and o (both σ: one call for the two).
        A_s = list(gates)
        f_s, g_s, i_s, o_s = (list(gates[:, :, k * H : (k + 1) * H]) for k in range(GATES))
        io_s = list(gates[:, :, 2 * H :])
        h_s, c_s, tc_s = list(hseq), list(cseq), list(tanh_c)
        # np.dot rather than np.matmul for products into our own contiguous arrays (same
        # BLAS call, less overhead); output arrays are passed positionally.
        dot, add, multiply, tanh = np.dot, np.add, np.multiply, np.tanh
        hWh, gi = np.empty((N, 4 * H), dtype=dtype), np.empty((N, H), dtype=dtype)
        for t in range(T):
            A, f, g, i, o = A_s[t], f_s[t], g_s[t], i_s[t], o_s[t]
            h_prev, c_prev, c, h, tc = h_s[t], c_s[t], c_s[t + 1], h_s[t + 1], tc_s[t]
            if t > 0 or h0 is not None:  # from zeros, h_{-1} Wh is zero: skip it
                dot(h_prev, Wh, hWh)
                add(A, hWh, A)  # A = x_t Wx + h_{t-1} Wh + b
            sigmoid(f, f)  # f = σ(A_f)
            tanh(g, g)  # g = tanh(A_g)
            sigmoid(io_s[t], io_s[t])  # i = σ(A_i), o = σ(A_o)
            multiply(f, c_prev, c)
            multiply(g, i, gi)
            add(c, gi, c)  # c_t = f c_{t-1} + g i
            tanh(c, tc)
            multiply(o, tc, h)  # h_t = o tanh(c_t)

        # The caller gets their own batch-major copy; hseq stays ours for backward.
        hs: Array = hseq[1:].transpose(1, 0, 2).copy()
        return hs, _Cache(xs_tm, gates, hseq, cseq, tanh_c, h0 is None)

    def backward(self, dhs: Array) -> Array:
        """dhs: (N, T, H) -> dxs: (N, T, D); writes dWx, dWh, db into grads, sets dh and dc."""
        if self._cache is None:
            raise no_forward_error("TimeLSTM", self._failed)
        D, H, dtype = check_params(self.params, GATES)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        xs, gates, hseq, cseq, tanh_c, h0_is_zero = self._cache
        T, N, _ = xs.shape
        if xs.shape[2] != D or hseq.shape[2] != H or xs.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        dhs = check_data("dhs", dhs, (("N", N), ("T", T), ("H", H)), dtype)

        def work(name: str, shape: tuple[int, ...]) -> Array:
            self._work[name] = _reuse(self._work.get(name), shape, dtype)
            return self._work[name]

        # The book's cell backward, step t, with ds = dL/dc_t:
        #   ds      = dc_t + dh_t o (1 - tanh(c_t)^2)      dc_{t-1} = ds f
        #   dA_f    = ds c_{t-1} f (1 - f)                 dA_g = ds i (1 - g^2)
        #   dA_i    = ds g i (1 - i)                       dA_o = dh_t tanh(c_t) o (1 - o)
        #   dh_{t-1} (from this step) = dA Wh^T,  dA = [dA_f, dA_g, dA_i, dA_o]
        # Only dh_t and dc_t come from the recurrence. The factors they multiply,
        # K = [c_{t-1} f(1-f), i (1-g^2), g i(1-i), tanh(c_t) o(1-o)] and
        # Kc = o (1 - tanh(c_t)^2), do not: they are computed for many steps at once
        # (below, a chunk of steps at a time), and the loop then turns K into dA in place.
        K, Kc = work("K", (T, N, 4 * H)), work("Kc", (T, N, H))
        f, g, i, o = (gates[:, :, k * H : (k + 1) * H] for k in range(GATES))
        Kf, Kg, Ki, Ko = (K[:, :, k * H : (k + 1) * H] for k in range(GATES))
        c_prev = cseq[:-1]

        def local_derivatives(s: slice) -> None:
            """K and Kc of the steps s."""
            np.square(gates[s], out=K[s])
            np.subtract(f[s], Kf[s], out=Kf[s])  # σ' = σ (1 - σ) = σ - σ^2
            np.subtract(gates[s, :, 2 * H :], K[s, :, 2 * H :], out=K[s, :, 2 * H :])  # i, o
            np.subtract(1, Kg[s], out=Kg[s])  # tanh' = 1 - tanh^2
            np.multiply(Kf[s], c_prev[s], out=Kf[s])
            np.multiply(Kg[s], i[s], out=Kg[s])
            np.multiply(Ki[s], g[s], out=Ki[s])
            np.multiply(Ko[s], tanh_c[s], out=Ko[s])
            np.square(tanh_c[s], out=Kc[s])
            np.subtract(1, Kc[s], out=Kc[s])
            np.multiply(Kc[s], o[s], out=Kc[s])

        # dh[t] = dL/dh_t, time-major, built in place in a copy of dhs from the last step
        # back: h_t went to hs and to step t+1, so dL/dh_t = dhs[:, t] + dA_{t+1} Wh^T.
        dh = work("dh", (T, N, H))
        np.copyto(dh, dhs.transpose(1, 0, 2))
        # The per-step views, made once: f_t; K_t's f, g, i blocks as (N, 3, H), which
        # one broadcast multiply by ds (N, 1, H) turns into dA_f, dA_g, dA_i; its o block.
        dh_s, Kc_s, f_s = list(dh), list(Kc), list(f)
        K4 = K.reshape(T, N, GATES, H)
        fgi_s, o_s, dA_s = list(K4[:, :, :3]), list(K4[:, :, 3]), list(K)
        ds = np.empty((N, H), dtype=dtype)
        ds3 = ds[:, None, :]
        dc = np.zeros((N, H), dtype=dtype)  # truncated BPTT: nothing from a later segment
        dhWh = np.empty((N, H), dtype=dtype)
        # A contiguous copy of Wh^T: OpenBLAS runs the small per-step products faster.
        dot, add, multiply, WhT = np.dot, np.add, np.multiply, np.ascontiguousarray(Wh.T)
        # The local derivatives come a chunk of steps at a time, just before the loop
        # reaches them: each chunk of gates is read while it is in the CPU cache, with
        # one NumPy call per factor for all its steps (at large sizes, the same passes
        # over all T steps at once would stream every array through memory).
        chunk = max(1, _CHUNK_BYTES // (N * 4 * H * gates.itemsize))
        for stop in range(T, 0, -chunk):
            start = max(stop - chunk, 0)
            local_derivatives(slice(start, stop))
            for t in range(stop - 1, start - 1, -1):
                multiply(dh_s[t], Kc_s[t], ds)
                add(ds, dc, ds)  # ds = dc_t + dh_t o (1 - tanh(c_t)^2)
                multiply(fgi_s[t], ds3, fgi_s[t])  # dA_f, dA_g, dA_i
                multiply(o_s[t], dh_s[t], o_s[t])  # dA_o
                multiply(ds, f_s[t], dc)  # dc_{t-1} = ds f
                if t > 0:
                    dot(dA_s[t], WhT, dhWh)
                    add(dh_s[t - 1], dhWh, dh_s[t - 1])  # dh_{t-1} = dhs[:, t-1] + dA Wh^T
        self.dh, self.dc = dot(dA_s[0], WhT), dc

        # The weights are shared by all steps, so their gradients are sums over steps:
        # one product over the N*T rows each, time-major on both sides.
        rows = T * N
        dA = K.reshape(rows, 4 * H)
        # dWh = sum_t h_{t-1}^T dA_t; a zero initial state adds nothing: skip its N rows.
        skip = N if h0_is_zero else 0
        _dot_into(hseq[:-1].reshape(rows, H)[skip:].T, dA[skip:], self.grads[1])
        _dot_into(xs.reshape(rows, D).T, dA, self.grads[0])
        # db = column sums of dA, as a matrix-vector product (faster than np.sum(axis=0)).
        _dot_into(_ones(rows, dtype), dA, self.grads[2])
        dxs_tm = work("dxs", (T, N, D))
        np.dot(dA, Wx.T, out=dxs_tm.reshape(rows, D))
        dxs: Array = dxs_tm.transpose(1, 0, 2).copy()
        return dxs

    def set_state(self, h: Array, c: Array | None = None) -> None:
        """Start the next forward (if stateful) from h: (N, H) and c: (N, H) (None: zeros).

        Copies are kept. Both are checked before either changes.
        """
        _, H, dtype = check_params(self.params, GATES)
        h = check_data("h", h, (("N", None), ("H", H)), dtype)
        if c is not None:
            c = check_data("c", c, (("N", h.shape[0]), ("H", H)), dtype)
        self.h = np.array(h, copy=True)
        self.c = None if c is None else np.array(c, copy=True)

    def reset_state(self) -> None:
        """Start the next forward from zeros, for both h and c."""
        self.h, self.c = None, None

    def _start_state(
        self, N: int, H: int, dtype: np.dtype[Any]
    ) -> tuple[Array | None, Array | None]:
        """The states forward starts from, (N, H) each, checked; None means zeros."""
        if not self.stateful:
            return None, None
        return check_carried("h", self.h, N, H, dtype), check_carried("c", self.c, N, H, dtype)
