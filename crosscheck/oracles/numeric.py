"""The "numeric" oracle: a NumPy float64 forward and finite-difference gradients, for
the book's tanh RNN, LSTM and GRU.

The cells, with a = x_t Wx + h_{t-1} Wh + b cut into blocks of H columns:

    rnn   h_t = tanh(a)
    lstm  blocks f, g, i, o:  c_t = σ(f) ⊙ c_{t-1} + tanh(g) ⊙ σ(i),  h_t = σ(o) ⊙ tanh(c_t)
    gru   blocks z, r, h~ (the book's GRU: r acts on h before the recurrent product):
          z = σ(x Wx_z + h Wh_z + b_z),  r = σ(x Wx_r + h Wh_r + b_r),
          h~ = tanh(x Wx_h + (r ⊙ h) Wh_h + b_h),  h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h~

No derivative is written down: every gradient is a central difference of
L = sum(hs * dhs) with a fourth-order stencil. The loss changes L(θ + kδ) - L(θ)
are not found by subtracting two forwards (which would leave only ~1e-16 / δ of
relative precision, and none at all where a gate saturates) but by carrying the
perturbation itself (Δh, and Δc for the LSTM) through the recurrence with exact
difference identities, each keeping full relative precision:

    tanh(a + Δ) − tanh(a) = sinh(Δ) / (cosh(a) cosh(a + Δ))
    σ(a + Δ) − σ(a)       = sinh(Δ/2) / (2 cosh(a/2) cosh((a + Δ)/2))    (σ = (1 + tanh(a/2)) / 2)
    (u + Δu)(v + Δv) − uv = u Δv + Δu (v + Δv)

so δ can be tiny and the stencil's truncation error vanishes.

All perturbations of one job form one batch, a row per (direction, stencil point);
the columns xs[:, t, d], h0[:, j] and c0[:, j] are moved for all N samples at once
(samples do not interact, so each sample's own loss change gives its entry). The batch
moves through time in chunks of rows small enough to stay in a core's cache, the rows
the last axis of every array (each operation with a step's (N, H) values is then one
long inner loop), every update in place. The rows that move xs[:, t', :] come last,
ordered by t': they change nothing before step t', so their chunks start there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import CELL_STATE, GATES, Case
from crosscheck.oracles import Oracle, SegmentJob, check_kinds
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

# f'(0) ~ sum_k WEIGHTS[k] f(OFFSETS[k] * STEP) / STEP, truncation error O(STEP^4).
OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])
WEIGHTS = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0
K = len(OFFSETS)
# Rounding no longer grows as the step shrinks (see the module doc), so the step is
# small enough for the truncation error to stay far below 1e-12 even on exploding
# 64-step chains, whose loss bends sharply within ~1e-3 of a parameter.
STEP = 2.0**-30

# The cost of a segment of the LSTM or GRU in ns, roughly (see `_work`): SEGMENT_NS for
# each, STEP_NS per step of each chunk of rows (numpy's per-call overhead), ELEMENT_NS
# per entry of Δa (N, G, H, rows) moved one step (sinh and cosh dominate); fit on ~500
# generated cases of each kind. The bound keeps every supported case near 50 ms or less
# (the fit's worst underestimate near the bound: 1.26x). What it admits: NumericOracle.
SEGMENT_NS = {"lstm": 250_000, "gru": 260_000}
STEP_NS = {"lstm": 31_000, "gru": 38_000}
ELEMENT_NS = {"lstm": 7.4, "gru": 7.5}
# The RNN keeps the cost model of the implementation before this one, per segment
# T * (RNN_STEP_NS + RNN_PERTURBATION_NS * P * N * H) for P perturbed copies, and so
# admits the very cases it did (90% of those generated; others' tests name cases it
# must not take). This implementation runs them faster: fit as above (SEGMENT 280 µs,
# STEP 11 µs, ELEMENT 5.6 ns), the same 50 ms would admit 97%.
RNN_STEP_NS = 60_000
RNN_PERTURBATION_NS = 15
MAX_COST_NS = 40e6


def _directions(kind: str, T: int, D: int, H: int) -> dict[str, tuple[int, ...]]:
    """The directions moved, by input: every entry of Wx, Wh and b; the columns
    h0[:, j], c0[:, j] (LSTM) and xs[:, t, d], each moved for all samples at once.
    xs comes last (its rows are ordered by time, see the module doc)."""
    GH = GATES[kind] * H
    out: dict[str, tuple[int, ...]] = {"Wx": (D, GH), "Wh": (H, GH), "b": (GH,), "h0": (H,)}
    if kind in CELL_STATE:
        out["c0"] = (H,)
    out["xs"] = (T, D)
    return out


def _work(kind: str, N: int, T: int, D: int, H: int) -> tuple[int, int]:
    """(chunk steps, entries of Δa moved one step) of a segment: what it costs."""
    GH = GATES[kind] * H
    fixed = K * sum(int(np.prod(s)) for m, s in _directions(kind, T, D, H).items() if m != "xs")
    P = fixed + K * T * D
    size = max(1, CHUNK_ELEMENTS // (N * GH))
    lo = np.arange(0, P, size)
    t0 = np.maximum(lo - fixed, 0) // (D * K)  # a chunk starts when its first row moves
    rows = np.minimum(lo + size, P) - lo
    return int((T - t0).sum()), int((rows * (T - t0)).sum()) * N * GH


def _cost_ns(kind: str, N: int, T: int, D: int, H: int) -> float:
    if kind == "rnn":
        P = K * sum(int(np.prod(s)) for s in _directions(kind, T, D, H).values())
        return float(T * (RNN_STEP_NS + RNN_PERTURBATION_NS * P * N * H))
    chunk_steps, entries = _work(kind, N, T, D, H)
    return SEGMENT_NS[kind] + STEP_NS[kind] * chunk_steps + ELEMENT_NS[kind] * entries


def _sigmoid(a: Array) -> Array:
    """σ(a) to full relative precision on both sides."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gate_major(a: Array, G: int) -> Array:
    """(N, G*H) -> (N, G, H, 1): the gate blocks, against the rows axis of Δ (see
    _loss_changes)."""
    N, GH = a.shape
    return a.reshape(N, G, GH // G, 1)


Step = dict[str, Array]  # the forward's values at one step
# Per gate block of the LSTM's f, g, i, o: σ(a) = (1 + tanh(a/2)) / 2 runs as tanh at
# half scale (f, i, o), g as tanh itself.
_LSTM_SCALE = np.array([0.5, 1.0, 0.5, 0.5])[:, None, None]


def _forward(job: SegmentJob) -> tuple[Array, Array | None, list[Step]]:
    """hs (N, T, H), cs (N, T, H) for the LSTM (else None), and each step's values:
    h (N, H), the recurrent input, as it is; the rest (N, [G,] H, 1)."""
    Wx, Wh, b, xs = job.Wx, job.Wh, job.b, job.xs
    N, T, _ = xs.shape
    H = job.H
    hs = np.empty((N, T, H))
    cs = np.empty((N, T, H)) if job.kind == "lstm" else None
    steps: list[Step] = []
    h, c = job.h0, job.c0
    for t in range(T):
        x = xs[:, t]
        v = {"h": h, "h_": h[..., None]}
        if job.kind == "rnn":
            a = h @ Wh + x @ Wx + b
            v.update(a=_gate_major(a, 1), ca=_gate_major(np.cosh(a), 1))
            h = np.tanh(a)
        elif job.kind == "lstm":
            assert c is not None and cs is not None
            sa = _LSTM_SCALE * _gate_major(h @ Wh + x @ Wx + b, 4)
            act = _LSTM_SCALE * np.tanh(sa) + (1.0 - _LSTM_SCALE)  # σ, tanh, σ, σ
            c_next = act[:, 0] * c[..., None] + act[:, 1] * act[:, 2]
            v.update(c=c[..., None], sa=sa, csa=np.cosh(sa), act=act)
            v.update(cn=c_next, cc=np.cosh(c_next), tc=np.tanh(c_next))
            h, c = (act[:, 3] * v["tc"])[..., 0], c_next[..., 0]
            cs[:, t] = c
        else:
            ax = x @ Wx + b
            sa_zr = 0.5 * _gate_major(ax[:, : 2 * H] + h @ Wh[:, : 2 * H], 2)
            zr = 0.5 + 0.5 * np.tanh(sa_zr)
            u = zr[:, 1, :, 0] * h
            a_h = (ax[:, 2 * H :] + u @ Wh[:, 2 * H :])[..., None]
            v.update(sa_zr=sa_zr, csa_zr=np.cosh(sa_zr), z=zr[:, 0], r=zr[:, 1])
            v.update(keep=_sigmoid(-2.0 * sa_zr[:, 0]))  # 1 - z, to full precision
            v.update(u=u, a_h=a_h, ca_h=np.cosh(a_h), h_new=np.tanh(a_h))
            h = (v["keep"] * v["h_"] + v["z"] * v["h_new"])[..., 0]
        hs[:, t] = h
        steps.append(v)
    return hs, cs, steps


# Rows of the perturbation batch move through time in chunks whose working arrays
# (N, G, H, rows) stay in a core's cache, where the whole batch of a big case would not.
CHUNK_ELEMENTS = 32_768
Entries = tuple[Array, Array, Array, Array]  # rows, i, j, off: "row moves W[i, j] by off"


class _Layout:
    """The perturbation batch of one segment shape: the block of rows of each input, how
    far each row moves its direction, and the chunks of rows that run together."""

    def __init__(self, kind: str, N: int, T: int, D: int, H: int) -> None:
        self.kind, self.N, self.T, self.D, self.H = kind, N, T, D, H
        self.G = GATES[kind]
        self.slots = _directions(kind, T, D, H)
        self.block: dict[str, slice] = {}
        P = 0
        for name, slot in self.slots.items():
            n = int(np.prod(slot)) * K
            self.block[name] = slice(P, P + n)
            P += n
        self.P = P
        self.off = np.tile(OFFSETS * STEP, P // K)  # row r moves its direction by off[r]
        self.xs_start = self.block["xs"].start
        self.entries: dict[str, Entries] = {}
        for name in ("Wx", "Wh", "b", "h0", "c0"):
            if name in self.block:
                sl = self.block[name]
                rows = np.arange(sl.start, sl.stop)
                direction = (rows - sl.start) // K
                if name in ("Wx", "Wh"):
                    i, j = divmod(direction, self.G * H)
                else:
                    i, j = np.zeros_like(direction), direction
                self.entries[name] = (rows, i, j, self.off[rows])
        size = max(1, CHUNK_ELEMENTS // (N * self.G * H))
        self.chunks = [_Chunk(self, lo, min(lo + size, P)) for lo in range(0, P, size)]


@functools.lru_cache(maxsize=32)
def _layout(kind: str, N: int, T: int, D: int, H: int) -> _Layout:
    """The layout of a segment shape, built once (the case pool repeats its shapes)."""
    return _Layout(kind, N, T, D, H)


class _Moves:
    """Some parameter rows of a chunk of n rows (row moves W[i, j] by off, rows counted
    from the chunk's first), as flat indices, one per (entry, sample): into Δa (N, G, H, n)
    where it adds its move, and into the Δ (N, H, n) of the recurrent input Wh multiplies."""

    def __init__(self, entries: Entries, n: int, N: int, G: int, H: int) -> None:
        rows, i, j, off = entries
        samples = np.arange(N)
        self.size, self.i = rows.size, i
        # (sample, column j = (gate, unit), row) of (N, G*H, n): j picks gate and unit
        self.dst = ((samples * (G * H) + j[:, None]) * n + rows[:, None]).ravel()
        self.src = ((samples * H + i[:, None]) * n + rows[:, None]).ravel()
        self.off = np.repeat(off, N)

    def select(self, keep: Array) -> _Moves:
        """The moves of the entries where `keep` (one per entry) holds."""
        out = object.__new__(_Moves)
        rep = np.repeat(keep, self.off.size // max(keep.size, 1))
        out.size, out.i = int(keep.sum()), self.i[keep]
        out.dst, out.src, out.off = self.dst[rep], self.src[rep], self.off[rep]
        return out


class _Chunk:
    """Rows lo..hi of a layout: the entries they move, and the first step at which any
    of them has moved."""

    def __init__(self, layout: _Layout, lo: int, hi: int) -> None:
        self.layout, self.lo, self.hi, self.n = layout, lo, hi, hi - lo
        self.t0 = 0 if lo < layout.xs_start else (lo - layout.xs_start) // (layout.D * K)
        self.entries: dict[str, Entries] = {}
        for name, (rows, i, j, off) in layout.entries.items():
            sel = (rows >= lo) & (rows < hi)
            self.entries[name] = (rows[sel] - lo, i[sel], j[sel], off[sel])
        N, G, H = layout.N, layout.G, layout.H
        self.Wx = _Moves(self.entries["Wx"], self.n, N, G, H)
        self.b = _Moves(self.entries["b"], self.n, N, G, H)
        # The GRU's h~ block multiplies r h, not h: its Wh moves are `Wh_late`.
        Wh = _Moves(self.entries["Wh"], self.n, N, G, H)
        late = self.entries["Wh"][2] >= (2 * H if layout.kind == "gru" else layout.G * H)
        self.Wh, self.Wh_late = Wh.select(~late), Wh.select(late)

    def start(self, d: Array, name: str) -> None:
        """Δ (N, H, n) of initial state `name` (h0 or c0) before step 0: row (j, k) moves
        column j of every sample by off."""
        d[...] = 0.0
        if name in self.entries:
            rows, _, j, off = self.entries[name]
            d[:, j, rows] = off

    def inputs(self, xs: Array, Wx: Array) -> tuple[Array, Array]:
        """For `add_inputs`: the moves of Wx at every step, off * xs[n, t, i] per (entry,
        sample) (T, entries * N), and those of one step's xs rows (1, G, H, D * K)."""
        x_moves = xs[:, :, self.Wx.i].transpose(1, 2, 0).reshape(xs.shape[1], -1) * self.Wx.off
        G = self.layout.G
        xs_moves = (OFFSETS * STEP)[None, :, None] * Wx[:, None, :]  # (D, K, G*H)
        xs_moves = xs_moves.reshape(-1, G, self.layout.H).transpose(1, 2, 0)[None]
        return x_moves, np.ascontiguousarray(xs_moves)

    def add_inputs(self, dA: Array, t: int, moves: tuple[Array, Array]) -> None:
        """Add the moves of Wx, b and xs[:, t] to Δa (N, G, H, n) at step t."""
        flat = dA.reshape(-1)
        if self.Wx.size:
            flat[self.Wx.dst] += moves[0][t]
        if self.b.size:
            flat[self.b.dst] += self.b.off
        L = self.layout
        first = L.xs_start + t * L.D * K
        lo, hi = max(first, self.lo), min(first + L.D * K, self.hi)
        if lo < hi:
            dA[..., lo - self.lo : hi - self.lo] += moves[1][..., lo - first : hi - first]

    @staticmethod
    def add_recurrent(dA: Array, v: Array, dv: Array, moves: _Moves) -> None:
        """Add the moves of Wh (`moves`) to Δa, whose recurrent input is v + Δv: v (N, H),
        Δv (N, H, n)."""
        if moves.size:
            value = v.T[moves.i].ravel() + dv.reshape(-1)[moves.src]
            flat = dA.reshape(-1)
            flat[moves.dst] += moves.off * value


def _dtanh(a: Array, cosh_a: Array, d: Array, tmp: Array) -> None:
    """d <- tanh(a + d) - tanh(a), exactly, in place (tmp: scratch of d's shape). Run
    under np.errstate(over="ignore"): cosh -> inf means the change is 0."""
    np.add(a, d, out=tmp)
    np.cosh(tmp, out=tmp)
    tmp *= cosh_a
    np.sinh(d, out=d)
    d /= tmp


def _loss_changes(job: SegmentJob, layout: _Layout, steps: list[Step]) -> Array:
    """The exact L_n(θ + off_r e_r) - L_n(θ) of every row r and sample n, per dhs:
    (len(job.dhs), P, N).

    A chunk's Δ arrays are (N, G, H, rows) and (N, H, rows): the rows last, so that each
    operation with a step's (N, H) values runs over the rows in one long inner loop.
    Every update is in place."""
    kind, N, H, G = layout.kind, layout.N, layout.H, layout.G
    dhs = np.stack(job.dhs)[..., None]  # (calls, N, T, H, 1)
    changes = np.zeros((len(dhs), layout.P, N))
    WhT = np.ascontiguousarray(job.Wh.T)  # (G*H, H)
    Wh_hT = np.ascontiguousarray(job.Wh[:, 2 * H :].T)  # the GRU's h~ block
    n_buf = -1
    for chunk in layout.chunks:
        n = chunk.n
        if n != n_buf:  # the last chunk may be shorter: buffers of its own
            n_buf = n
            dA, tmp = np.empty((N, G, H, n)), np.empty((N, G, H, n))
            dh, dc, b1, b2, b3 = (np.empty((N, H, n)) for _ in range(5))
            acc = np.empty((len(dhs), N, H, n))
        chunk.start(dh, "h0")
        chunk.start(dc, "c0")
        acc[...] = 0.0
        moves = chunk.inputs(job.xs, job.Wx)
        for t in range(chunk.t0, layout.T):
            v = steps[t]
            np.matmul(WhT, dh, out=dA.reshape(N, G * H, n))  # Δh Wh
            if kind == "gru":
                dA[:, 2] = 0.0  # h~'s recurrent input is r h: below
            chunk.add_inputs(dA, t, moves)
            chunk.add_recurrent(dA, v["h"], dh, chunk.Wh)
            if kind == "rnn":
                _dtanh(v["a"], v["ca"], dA, tmp)
                dh[...] = dA[:, 0]
            elif kind == "lstm":
                dA *= _LSTM_SCALE
                _dtanh(v["sa"], v["csa"], dA, tmp)
                dA *= _LSTM_SCALE
                f, g_, i, o = (v["act"][:, k] for k in range(4))
                df, dg, di, do = (dA[:, k] for k in range(4))
                # Δc' = f Δc + Δf (c + Δc) + g Δi + Δg (i + Δi)
                np.add(v["c"], dc, out=b1)
                b1 *= df
                np.multiply(f, dc, out=b2)
                b1 += b2
                np.add(i, di, out=b2)
                b2 *= dg
                b1 += b2
                np.multiply(g_, di, out=b2)
                b1 += b2
                b3[...] = b1
                _dtanh(v["cn"], v["cc"], b3, b2)  # Δ tanh(c')
                # Δh' = o Δtanh(c') + Δo (tanh(c') + Δtanh(c'))
                np.add(v["tc"], b3, out=b2)
                b2 *= do
                np.multiply(o, b3, out=dh)
                dh += b2
                dc, b1 = b1, dc
            else:
                zr = dA[:, :2]
                zr *= 0.5
                _dtanh(v["sa_zr"], v["csa_zr"], zr, tmp[:, :2])
                zr *= 0.5
                dz, dr, dh_new = (dA[:, k] for k in range(3))
                # Δu = r Δh + Δr (h + Δh), for u = r h; then Δ of h~'s pre-activation
                np.add(v["h_"], dh, out=b1)
                b1 *= dr
                np.multiply(v["r"], dh, out=b2)
                b1 += b2
                np.matmul(Wh_hT, b1, out=b2)
                dh_new += b2
                chunk.add_recurrent(dA, v["u"], b1, chunk.Wh_late)
                _dtanh(v["a_h"], v["ca_h"], dh_new, tmp[:, 2])
                # Δh' = (1 - z) Δh + z Δh~ + Δz (h~ + Δh~ - h - Δh)
                np.add(v["h_new"], dh_new, out=b2)
                b2 -= v["h_"]
                b2 -= dh
                b2 *= dz
                np.multiply(v["z"], dh_new, out=b3)
                b2 += b3
                dh *= v["keep"]
                dh += b2
            for k in range(len(dhs)):  # ΔL_n += Σ_h dhs_t Δh_t, summed over h at the end
                np.multiply(dh, dhs[k, :, t], out=b2)
                acc[k] += b2
        changes[:, chunk.lo : chunk.hi] = acc.sum(axis=2).transpose(0, 2, 1)
    return changes


class NumericOracle:
    """NumPy forward; gradients by fourth-order central differences (small cases only)."""

    name = "numeric"
    kinds = ("rnn", "lstm", "gru")  # the kinds it implements
    # Measured pairwise against every other oracle of the kind, in compare's scale (max
    # |ref| floored at compare.FLOOR), on the cases of iter_cases(2000, seed, kind) it
    # supports (seeds 1000 and 2000 for the gated kinds, 1000 for the rnn): at most
    # 8.4e-14 (rnn, 1800 cases), 2.2e-14 (lstm, 3054 cases) and 6.0e-14 (gru, 3283
    # cases). Without the floor it is the one to doubt on gradients that are tiny
    # overall (up to 6e-4 relative to such a gradient's own size), which the floor
    # makes harmless. Spot checks of the RNN against 50-digit mpmath (of the
    # implementation before this one, same method) came out within 1e-15.
    accuracy = 1e-12

    # What the cost bound admits of iter_cases(4000, seed=0, kind) (both dtypes), and the
    # time of a supported case (200 drawn at random; the slowest of the 60 costliest):
    #   rnn   90.0%   mean 3.0 ms, median 1.5 ms, slowest 18 ms
    #   lstm  77.0%   mean 8.7 ms, median 4.0 ms, slowest 43 ms
    #   gru   82.9%   mean 7.7 ms, median 3.1 ms, slowest 47 ms

    def supports(self, case: Case) -> bool:
        if case.kind not in self.kinds:
            return False
        segments = enumerate(case.segments)
        cost = sum(_cost_ns(case.kind, case.batch(k), s.T, case.D, case.H) for k, s in segments)
        return cost <= MAX_COST_NS

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        check_kinds(self, jobs)
        return [self._run_one(j) for j in jobs]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        N, T, D = job.xs.shape
        H = job.Wh.shape[0]
        layout = _layout(job.kind, N, T, D, H)
        with np.errstate(over="ignore"):  # cosh -> inf: see _dtanh
            hs, cs, steps = _forward(job)
            changes = _loss_changes(job, layout, steps)
        # dL_n / d(direction), per dhs: {input: (calls, n_dir, N)}
        calls = len(job.dhs)
        g = {
            m: np.tensordot(changes[:, sl].reshape(calls, -1, K, N), WEIGHTS, axes=(2, 0)) / STEP
            for m, sl in layout.block.items()
        }
        GH = job.Wh.shape[1]
        backward = tuple(
            Grads(
                dxs=g["xs"][k].T.reshape(N, T, D).copy(),
                # a parameter shared by all samples changes the sum of their losses
                dWx=g["Wx"][k].sum(axis=1).reshape(D, GH),
                dWh=g["Wh"][k].sum(axis=1).reshape(H, GH),
                db=g["b"][k].sum(axis=1),
                dh=g["h0"][k].T.copy(),
                dc=g["c0"][k].T.copy() if "c0" in g else None,
            )
            for k in range(calls)
        )
        c = None if cs is None else cs[:, -1].copy()
        return SegmentValues(hs=hs, h=hs[:, -1].copy(), backward=backward, c=c)


def oracles() -> list[Oracle]:
    return [NumericOracle()]
