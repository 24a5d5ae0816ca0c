"""The GRU cell and its T-step unrolled form, as in "Deep Learning from Scratch 2".

Row vectors, as in the book; the three blocks of H columns in the book's order z, r, ĥ
(update gate, reset gate, candidate state), Wx = [Wxz Wxr Wxh], Wh = [Whz Whr Whh],
b = [bz br bh]:

    z   = σ(x_t Wxz + h_{t-1} Whz + bz)                x_t: (N, D),  h_t: (N, H)
    r   = σ(x_t Wxr + h_{t-1} Whr + br)
    ĥ   = tanh(x_t Wxh + (r ⊙ h_{t-1}) Whh + bh)
    h_t = (1 - z) ⊙ h_{t-1} + z ⊙ ĥ

Wx: (D, 3H), Wh: (H, 3H), b: (3H,). σ is computed as (1 + tanh(a/2)) / 2, which cannot
overflow (see `handrnn._buffers.sigmoid`). Same API and semantics as the book's GRU and
TimeGRU; the TimeGRU here computes the same numbers with far fewer NumPy calls (see
`TimeGRU`).
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
GATES = 3  # z, r, ĥ


class GRU:
    """One GRU step: `forward(x, h_prev) -> h_next`, `backward(dh_next) -> (dx, dh_prev)`.

    Wx: (D, 3H), Wh: (H, 3H), b: (3H,), blocks z, r, ĥ. `params` holds the very arrays
    passed in; `grads` holds three arrays of the same shapes, overwritten in place by
    backward. Like the book's cell, it keeps references to x and h_prev for backward:
    do not edit them in place in between. The array it returns is the caller's own.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_params([Wx, Wh, b], GATES)
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache: tuple[Array, Array, Array, Array, Array] | None = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        """x: (N, D), h_prev: (N, H) -> h_next: (N, H)."""
        D, H, dtype = check_params(self.params, GATES)
        Wx, Wh, b = self.params
        x = check_data("x", x, (("N", None), ("D", D)), dtype)
        h_prev = check_data("h_prev", h_prev, (("N", x.shape[0]), ("H", H)), dtype)
        Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
        Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
        bz, br, bh = b[:H], b[H : 2 * H], b[2 * H :]

        z = sigmoid(x @ Wxz + h_prev @ Whz + bz)
        r = sigmoid(x @ Wxr + h_prev @ Whr + br)
        h_hat = np.tanh(x @ Wxh + (r * h_prev) @ Whh + bh)
        h_next: Array = (1 - z) * h_prev + z * h_hat

        self.cache = (x, h_prev, z, r, h_hat)  # not h_next: the caller's to edit
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        """dh_next: (N, H) -> (dx: (N, D), dh_prev: (N, H)); writes grads in place."""
        if self.cache is None:
            raise RuntimeError(
                "GRU.backward() called before forward(): there is nothing to differentiate"
            )
        D, H, dtype = check_params(self.params, GATES)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        x, h_prev, z, r, h_hat = self.cache
        if x.shape[1] != D or h_prev.shape[1] != H or x.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        dh_next = check_data("dh_next", dh_next, (("N", x.shape[0]), ("H", H)), dtype)
        Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]

        # h_next = (1 - z) h_prev + z ĥ: h_prev reaches h_next directly and through
        # z, r and ĥ.
        dh_prev = dh_next * (1 - z)

        dt_h = dh_next * z * (1 - h_hat**2)  # through ĥ; tanh' = 1 - tanh^2
        dhr = dt_h @ Whh.T  # dL/d(r h_prev)
        dh_prev += r * dhr

        dt_z = dh_next * (h_hat - h_prev) * z * (1 - z)  # through z; σ' = σ (1 - σ)
        dh_prev += dt_z @ Whz.T

        dt_r = dhr * h_prev * r * (1 - r)  # through r
        dh_prev += dt_r @ Whr.T

        dA = np.hstack((dt_z, dt_r, dt_h))
        np.matmul(x.T, dA, out=self.grads[0])
        np.matmul(h_prev.T, dA[:, : 2 * H], out=self.grads[1][:, : 2 * H])
        np.matmul((r * h_prev).T, dt_h, out=self.grads[1][:, 2 * H :])  # ĥ saw r h_prev
        np.sum(dA, axis=0, out=self.grads[2])
        dx = dA @ Wx.T
        return dx, dh_prev


class _Cache(NamedTuple):
    """What backward needs from the last completed forward, all time-major.

    xs: (T, N, D), a copy of the input; gates: (T, N, 3H), z, r, ĥ of every step;
    hseq: (T + 1, N, H), [0] the initial state and [t + 1] the state after step t;
    rh: (T, N, H), r ⊙ h_{t-1}; h0_is_zero: whether the initial state was zeros.
    """

    xs: Array
    gates: Array
    hseq: Array
    rh: Array
    h0_is_zero: bool


class TimeGRU:
    """T GRU steps with shared weights: `forward(xs) -> hs`, `backward(dhs) -> dxs`.

    xs: (N, T, D) -> hs: (N, T, H);  dhs: (N, T, H) -> dxs: (N, T, D).
    Wx: (D, 3H), Wh: (H, 3H), b: (3H,), blocks z, r, ĥ (see the module), all float32
    or all float64; everything is computed and returned in that dtype.

    - `params` is [Wx, Wh, b], the very arrays passed in; `grads` is [dWx, dWh, db],
      allocated once and overwritten in place by every backward.
    - `h` is the hidden state after the last forward, (N, H); `dh` is the gradient with
      respect to the segment's initial hidden state after backward, (N, H).
    - `stateful=False`: every forward starts from zeros. `stateful=True`: forward starts
      from the carried `h` (or the one given to `set_state`), zeros after
      `reset_state()`; backward stops at the segment start (truncated BPTT).
    - Forward keeps a copy of xs for backward, so editing xs afterwards changes nothing;
      every array it returns or sets (hs, dxs, h, dh) is the caller's own.
    - A forward that raises part-way (a KeyboardInterrupt, a MemoryError) leaves `h` as
      it was and nothing for backward, which raises a RuntimeError until the next
      forward completes. A call refused by its argument checks changes nothing.
    - `copy.copy(layer)` shares the parameter arrays and nothing else (see `__copy__`);
      `copy.deepcopy(layer)` shares nothing.

    How it differs from the book's loop of T `GRU` cells: only the recurrence is
    sequential. Before the forward loop, the input projections x_t Wx + b of all steps
    are one matrix product over the N*T rows. Each step then needs two products: h_{t-1}
    [Whz Whr], (N, H) x (H, 2H), for z and r together, and, since ĥ sees r ⊙ h_{t-1}
    rather than h_{t-1}, its own (r ⊙ h_{t-1}) Whh, (N, H) x (H, H), which cannot start
    before r is known. Backward first computes, for all steps at once, the local
    derivatives that do not depend on the gradient flowing back; its loop then does the
    two transposed products per step. dWx, db and dxs are one product each after the
    loop, dWh two (its [Whz Whr] block pairs dA with h_{t-1}, its Whh block with
    r ⊙ h_{t-1}). Inside, everything is time-major, (T, N, ...), so each step works on
    contiguous blocks. Memory: the layer keeps a time-major copy of xs, the gates, the
    T + 1 states and r ⊙ h_{t-1}, that is N*T*(D + 5H) numbers, and backward's work
    arrays, N*T*(D + 5H); all of them are reused by the next call of the same shape.
    """

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        check_params([Wx, Wh, b], GATES)
        self.params: list[Array] = [Wx, Wh, b]
        self.grads: list[Array] = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Array | None = None
        self.dh: Array | None = None
        # The last completed forward, for backward. Its arrays are reused by the next
        # forward of the same shape, so it is None from the moment a forward starts
        # writing until that forward has completed.
        self._cache: _Cache | None = None
        # For backward's message when there is no cache: the name of the exception that
        # stopped the last forward part-way (None: no forward ever failed).
        self._failed: str | None = None
        # backward's work arrays, by name, reused by every call of the same shape.
        self._work: dict[str, Array] = {}

    def __copy__(self) -> TimeGRU:
        """copy.copy(layer): a layer that shares this one's parameter arrays, nothing else.

        The copy's params list is its own but holds the very same Wx, Wh, b (an in-place
        optimizer step on either layer is a step on both, as for two layers built from
        the same arrays). grads, h, dh and the last forward's arrays are copies and the
        work arrays its own, so neither layer's calls change what the other's return;
        the copy can take the backward of the original's last forward.
        """
        cls = type(self)
        new = cls.__new__(cls)
        new.__dict__.update(self.__dict__)
        new.params = list(self.params)
        new.grads = [copy.copy(g) for g in self.grads]
        new.h, new.dh = copy.copy(self.h), copy.copy(self.dh)
        if self._cache is not None:
            # All of them, xs too: the next forward of the same shape overwrites them.
            c = self._cache
            new._cache = _Cache(
                c.xs.copy(), c.gates.copy(), c.hseq.copy(), c.rh.copy(), c.h0_is_zero
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
        h0 = self._start_state(N, H, dtype)

        # The checks have passed; the arrays of the last forward are about to be
        # overwritten. Until this forward completes there is nothing for backward: if it
        # raises part-way (or is interrupted), backward refuses to run and h is left as
        # it was.
        old = self._cache
        self._cache = None
        try:
            hs, cache = self._unroll(xs, h0, old)
            h = cache.hseq[-1].copy()
        except BaseException as e:
            self._failed = type(e).__name__
            raise
        # Only now, with everything computed, do h and the cache change (together).
        self.h, self._cache = h, cache
        return hs

    def _unroll(self, xs: Array, h0: Array | None, old: _Cache | None) -> tuple[Array, _Cache]:
        """forward's computation from h0 (None: zeros): (hs (N, T, H), the cache).

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
        # x_t Wx + b for all T steps at once, one matrix product over the N*T rows;
        # step t adds its recurrent terms and turns its block into z, r, ĥ in place.
        gates = buffer("gates", (T, N, 3 * H))
        np.dot(xs_tm.reshape(T * N, D), Wx, out=gates.reshape(T * N, 3 * H))
        np.add(gates, b, out=gates)
        hseq = buffer("hseq", (T + 1, N, H))
        hseq[0] = 0 if h0 is None else h0
        rh = buffer("rh", (T, N, H))

        # Contiguous copies of [Whz Whr] and Whh: the per-step products run faster on them.
        Wh_zr, Whh = np.ascontiguousarray(Wh[:, : 2 * H]), np.ascontiguousarray(Wh[:, 2 * H :])
        # The per-step views, made once: z and r side by side (both σ: one call for the
        # two), z, r and ĥ.
        zr_s = list(gates[:, :, : 2 * H])
        z_s, r_s, hh_s = (list(gates[:, :, k * H : (k + 1) * H]) for k in range(GATES))
        h_s, rh_s = list(hseq), list(rh)
        # np.dot rather than np.matmul for products into our own contiguous arrays (same
        # BLAS call, less overhead); output arrays are passed positionally.
        dot, add, subtract, multiply, tanh = np.dot, np.add, np.subtract, np.multiply, np.tanh
        hW_zr, rhW = np.empty((N, 2 * H), dtype=dtype), np.empty((N, H), dtype=dtype)
        for t in range(T):
            zr, z, r, h_hat = zr_s[t], z_s[t], r_s[t], hh_s[t]
            h_prev, h, rh_t = h_s[t], h_s[t + 1], rh_s[t]
            from_zeros = t == 0 and h0 is None  # h_{-1} = 0: both recurrent terms vanish
            if not from_zeros:
                dot(h_prev, Wh_zr, hW_zr)
                add(zr, hW_zr, zr)  # x_t [Wxz Wxr] + h_{t-1} [Whz Whr] + [bz br]
            sigmoid(zr, zr)  # z, r
            multiply(r, h_prev, rh_t)  # r ⊙ h_{t-1}
            if not from_zeros:
                dot(rh_t, Whh, rhW)
                add(h_hat, rhW, h_hat)  # x_t Wxh + (r ⊙ h_{t-1}) Whh + bh
            tanh(h_hat, h_hat)  # ĥ
            # h_t = (1 - z) h_{t-1} + z ĥ, computed as h_{t-1} + z (ĥ - h_{t-1}): the
            # same in exact arithmetic, one call fewer.
            subtract(h_hat, h_prev, h)
            multiply(z, h, h)
            add(h_prev, h, h)

        # The caller gets their own batch-major copy; hseq stays ours for backward.
        hs: Array = hseq[1:].transpose(1, 0, 2).copy()
        return hs, _Cache(xs_tm, gates, hseq, rh, h0 is None)

    def backward(self, dhs: Array) -> Array:
        """dhs: (N, T, H) -> dxs: (N, T, D); writes dWx, dWh, db into grads and sets dh."""
        if self._cache is None:
            raise no_forward_error("TimeGRU", self._failed)
        D, H, dtype = check_params(self.params, GATES)
        check_grads(self.grads, self.params)
        Wx, Wh, _ = self.params
        xs, gates, hseq, rh, h0_is_zero = self._cache
        T, N, _ = xs.shape
        if xs.shape[2] != D or hseq.shape[2] != H or xs.dtype != dtype:
            raise ValueError("params changed shape or dtype between forward() and backward()")
        dhs = check_data("dhs", dhs, (("N", N), ("T", T), ("H", H)), dtype)

        def work(name: str, shape: tuple[int, ...]) -> Array:
            self._work[name] = _reuse(self._work.get(name), shape, dtype)
            return self._work[name]

        # The book's cell backward, step t, with dh_t = dL/dh_t:
        #   dA_z = dh_t (ĥ - h_{t-1}) z (1 - z)       dA_ĥ = dh_t z (1 - ĥ^2)
        #   dhr  = dA_ĥ Whh^T  (= dL/d(r ⊙ h_{t-1}))  dA_r = dhr h_{t-1} r (1 - r)
        #   dh_{t-1} (from this step) = dh_t (1 - z) + r dhr + [dA_z dA_r] [Whz Whr]^T
        # Only dh_t (and so dhr) comes from the recurrence. The factors it multiplies,
        # K = [(ĥ - h_{t-1}) z(1-z), h_{t-1} r(1-r), z (1-ĥ^2)] and 1 - z, are computed
        # here for all steps at once; the loop then turns K into dA = [dA_z dA_r dA_ĥ]
        # in place.
        K = work("K", (T, N, 3 * H))
        z, r, h_hat = (gates[:, :, k * H : (k + 1) * H] for k in range(GATES))
        Kz, Kr, Kh = (K[:, :, k * H : (k + 1) * H] for k in range(GATES))
        h_prev = hseq[:-1]
        one_minus_z = work("one_minus_z", (T, N, H))
        np.square(gates, out=K)
        np.subtract(gates[:, :, : 2 * H], K[:, :, : 2 * H], out=K[:, :, : 2 * H])  # σ - σ^2
        np.subtract(1, Kh, out=Kh)  # tanh' = 1 - tanh^2
        np.multiply(Kh, z, out=Kh)
        np.subtract(h_hat, h_prev, out=one_minus_z)  # ĥ - h_{t-1}, for a moment
        np.multiply(Kz, one_minus_z, out=Kz)
        np.multiply(Kr, h_prev, out=Kr)
        np.subtract(1, z, out=one_minus_z)

        # dh[t] = dL/dh_t, time-major, built in place in a copy of dhs from the last step
        # back: h_t went to hs and to step t+1, so dL/dh_t = dhs[:, t] + what step t+1
        # sends back.
        dh = work("dh", (T, N, H))
        np.copyto(dh, dhs.transpose(1, 0, 2))
        # The per-step views, made once: K_t's z and ĥ blocks as (N, 2, H), which one
        # broadcast multiply by dh_t (N, 1, H) turns into dA_z and dA_ĥ; the r block;
        # [dA_z dA_r] for the product with [Whz Whr]^T; dA_ĥ for the one with Whh^T.
        K3 = K.reshape(T, N, GATES, H)
        zh_s, Kr_s = list(K3[:, :, ::2]), list(Kr)
        dA_zr_s, dA_h_s = list(K[:, :, : 2 * H]), list(Kh)
        dh_s, dh3_s = list(dh), list(dh[:, :, None, :])
        r_s, omz_s = list(r), list(one_minus_z)
        dhr, tmp = np.empty((N, H), dtype=dtype), np.empty((N, H), dtype=dtype)
        dh0 = np.empty((N, H), dtype=dtype)  # the caller's dh: its own array
        # Contiguous copies of the transposed blocks: OpenBLAS runs the small per-step
        # products faster on them.
        Wh_zr_T = np.ascontiguousarray(Wh[:, : 2 * H].T)
        Whh_T = np.ascontiguousarray(Wh[:, 2 * H :].T)
        dot, add, multiply = np.dot, np.add, np.multiply
        for t in range(T - 1, -1, -1):
            multiply(zh_s[t], dh3_s[t], zh_s[t])  # dA_z, dA_ĥ
            dot(dA_h_s[t], Whh_T, dhr)  # dhr = dA_ĥ Whh^T
            multiply(Kr_s[t], dhr, Kr_s[t])  # dA_r
            dh_prev = dh_s[t - 1] if t > 0 else dh0
            if t == 0:
                dh_prev[...] = 0  # truncated BPTT: dh starts from this step's terms alone
            dot(dA_zr_s[t], Wh_zr_T, tmp)
            add(dh_prev, tmp, dh_prev)
            multiply(dh_s[t], omz_s[t], tmp)
            add(dh_prev, tmp, dh_prev)
            multiply(r_s[t], dhr, tmp)
            add(dh_prev, tmp, dh_prev)  # dh_{t-1} += dh_t (1-z) + r dhr + dA_zr Wh_zr^T
        self.dh = dh0

        # The weights are shared by all steps, so their gradients are sums over steps:
        # one product over the N*T rows each (two for dWh), time-major on both sides.
        rows = T * N
        dA = K.reshape(rows, 3 * H)
        # A zero initial state (and so r ⊙ h_{-1} = 0) adds nothing to dWh: skip its N rows.
        skip = N if h0_is_zero else 0
        dWh = self.grads[1]
        _dot_into(h_prev.reshape(rows, H)[skip:].T, dA[skip:, : 2 * H], dWh[:, : 2 * H])
        _dot_into(rh.reshape(rows, H)[skip:].T, dA[skip:, 2 * H :], dWh[:, 2 * H :])
        _dot_into(xs.reshape(rows, D).T, dA, self.grads[0])
        # db = column sums of dA, as a matrix-vector product (faster than np.sum(axis=0)).
        _dot_into(_ones(rows, dtype), dA, self.grads[2])
        dxs_tm = work("dxs", (T, N, D))
        np.dot(dA, Wx.T, out=dxs_tm.reshape(rows, D))
        dxs: Array = dxs_tm.transpose(1, 0, 2).copy()
        return dxs

    def set_state(self, h: Array) -> None:
        """Start the next forward (if stateful) from h: (N, H). A copy is kept."""
        _, H, dtype = check_params(self.params, GATES)
        self.h = np.array(check_data("h", h, (("N", None), ("H", H)), dtype), copy=True)

    def reset_state(self) -> None:
        """Start the next forward from zeros."""
        self.h = None

    def _start_state(self, N: int, H: int, dtype: np.dtype[Any]) -> Array | None:
        """The state forward starts from, (N, H), checked; None means zeros."""
        if not self.stateful:
            return None
        return check_carried("h", self.h, N, H, dtype)
