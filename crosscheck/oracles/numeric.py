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

All perturbations of one job run as one batch, one row per (direction, stencil point);
the columns xs[:, t, d], h0[:, j] and c0[:, j] are moved for all N samples at once
(samples do not interact, so each sample's own loss change gives its entry). The rows
that move xs[:, t', :] come last, ordered by t': they change nothing before step t', so
step t runs only the prefix of rows that can have moved by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import CELL_STATE, GATES, Case
from crosscheck.oracles import Oracle, SegmentJob
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]
KINDS = ("rnn", "lstm", "gru")

# f'(0) ~ sum_k WEIGHTS[k] f(OFFSETS[k] * STEP) / STEP, truncation error O(STEP^4).
OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])
WEIGHTS = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0
K = len(OFFSETS)
# Rounding no longer grows as the step shrinks (see the module doc), so the step is
# small enough for the truncation error to stay far below 1e-12 even on exploding
# 64-step chains, whose loss bends sharply within ~1e-3 of a parameter.
STEP = 2.0**-30

# The cost of a case in ns, roughly: per segment, T * STEP_NS + ROW_NS * N * G*H * (rows
# summed over the steps) (see `_cost_ns`; fit per kind on generated cases with the
# bound below: sinh and cosh dominate). The bound keeps every supported case near 50 ms
# or less. Measured on iter_cases(4000, seed=0, kind) (both dtypes), supported / mean /
# max ms: rnn 90.3% / 4.2 / 39; lstm 67.0% / 7.8 / 45; gru 72.4% / 7.6 / 44.
STEP_NS = {"rnn": 60_000, "lstm": 150_000, "gru": 160_000}
ROW_NS = {"rnn": 3.4, "lstm": 3.2, "gru": 3.6}
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


def _cost_ns(kind: str, N: int, T: int, D: int, H: int) -> float:
    fixed = K * sum(int(np.prod(s)) for m, s in _directions(kind, T, D, H).items() if m != "xs")
    rows = T * fixed + K * D * T * (T + 1) // 2  # the rows each step runs, summed
    return T * STEP_NS[kind] + ROW_NS[kind] * N * GATES[kind] * H * rows


def _sigmoid(a: Array) -> Array:
    """σ(a) to full relative precision on both sides."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # type: ignore[no-any-return]


def _blocks(a: Array, H: int) -> list[Array]:
    """The gate blocks of H columns of a (..., G*H), as views."""
    return [a[..., k : k + H] for k in range(0, a.shape[-1], H)]


Step = dict[str, Array]  # the forward's values at one step


def _forward(job: SegmentJob) -> tuple[Array, Array | None, list[Step]]:
    """hs (N, T, H), cs (N, T, H) for the LSTM (else None), and each step's values."""
    Wx, Wh, b, xs = job.Wx, job.Wh, job.b, job.xs
    N, T, _ = xs.shape
    H = job.H
    hs = np.empty((N, T, H))
    cs = np.empty((N, T, H)) if job.kind == "lstm" else None
    steps: list[Step] = []
    h, c = job.h0, job.c0
    for t in range(T):
        x = xs[:, t]
        if job.kind == "rnn":
            a = h @ Wh + x @ Wx + b
            v = {"h": h, "a": a, "ca": np.cosh(a)}
            h = np.tanh(a)
        elif job.kind == "lstm":
            assert c is not None and cs is not None
            # σ(a) = (1 + tanh(a/2)) / 2: f, i and o run as tanh at half scale
            sa = _LSTM_SCALE(H) * (h @ Wh + x @ Wx + b)
            f, g, i, o = _blocks(np.tanh(sa) * _LSTM_SCALE(H) + (1.0 - _LSTM_SCALE(H)), H)
            c_next = f * c + g * i
            v = {"h": h, "c": c, "sa": sa, "csa": np.cosh(sa), "f": f, "g": g, "i": i, "o": o}
            v.update(cn=c_next, cc=np.cosh(c_next), tc=np.tanh(c_next))
            h, c = o * v["tc"], c_next
            cs[:, t] = c
        else:
            ax = x @ Wx + b
            sa_zr = 0.5 * (ax[:, : 2 * H] + h @ Wh[:, : 2 * H])
            z, r = _blocks(0.5 + 0.5 * np.tanh(sa_zr), H)
            keep = _sigmoid(-2.0 * sa_zr[:, :H])  # 1 - z, to full precision
            u = r * h
            a_h = ax[:, 2 * H :] + u @ Wh[:, 2 * H :]
            v = {"h": h, "sa_zr": sa_zr, "csa_zr": np.cosh(sa_zr), "z": z, "r": r}
            v.update(keep=keep, u=u, a_h=a_h, ca_h=np.cosh(a_h), h_new=np.tanh(a_h))
            h = keep * h + z * v["h_new"]
        hs[:, t] = h
        steps.append(v)
    return hs, cs, steps


def _LSTM_SCALE(H: int) -> Array:  # noqa: N802 (a constant of H)
    """Per column of a: 1/2 for the σ blocks f, i, o, 1 for the tanh block g."""
    return np.repeat([0.5, 1.0, 0.5, 0.5], H)


# Rows of the perturbation batch move through time in chunks whose working arrays
# (chunk, N, G*H) stay in a core's cache, where the whole batch of a big case would not.
CHUNK_ELEMENTS = 32_768
Entries = tuple[Array, Array, Array, Array]  # rows, i, j, off: "row moves W[i, j] by off"


class _Layout:
    """The perturbation batch of one segment shape: the block of rows of each input, how
    far each row moves its direction, and the chunks of rows that run together."""

    def __init__(self, kind: str, N: int, T: int, D: int, H: int) -> None:
        self.kind, self.N, self.T, self.D, self.H = kind, N, T, D, H
        self.GH = GATES[kind] * H
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
                    i, j = divmod(direction, self.GH)
                else:
                    i, j = np.zeros_like(direction), direction
                self.entries[name] = (rows, i, j, self.off[rows])
        size = max(1, CHUNK_ELEMENTS // (N * self.GH))
        self.chunks = [_Chunk(self, lo, min(lo + size, P)) for lo in range(0, P, size)]


class _Moves:
    """Some parameter rows of a chunk (row moves W[i, j] by off, rows counted from the
    chunk's first), as flat indices: into Δa (n, N, G*H) where each (row, sample) adds
    its move, and into the recurrent input's Δ (n, N, H) that Wh multiplies."""

    def __init__(self, rows: Array, i: Array, j: Array, off: Array, N: int, GH: int, H: int):
        samples = np.arange(N)
        self.size = rows.size
        self.i = i
        self.dst = (rows[:, None] * (N * GH) + samples * GH + j[:, None]).ravel()
        self.src = (rows[:, None] * (N * H) + samples * H + i[:, None]).ravel()
        self.off = np.repeat(off, N)

    def add(self, dA: Array, value: Array | float) -> None:
        """dA[row, n, j] += off * value[(row, n)] (dA C-contiguous)."""
        flat = dA.reshape(-1)
        flat[self.dst] += self.off * value


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
        N, GH, H = layout.N, layout.GH, layout.H
        self.Wx = _Moves(*self.entries["Wx"], N, GH, H)
        self.b = _Moves(*self.entries["b"], N, GH, H)
        # The GRU's h~ block multiplies r h, not h (its Wh moves go in `Wh_late`).
        cols = 2 * H if layout.kind == "gru" else GH
        rows, i, j, off = self.entries["Wh"]
        early = j < cols
        self.Wh = _Moves(rows[early], i[early], j[early], off[early], N, GH, H)
        self.Wh_late = _Moves(rows[~early], i[~early], j[~early], off[~early], N, GH, H)

    def start(self, d: Array, name: str) -> None:
        """Δ (n, N, H) of initial state `name` (h0 or c0) before step 0: row (j, k) moves
        column j of every sample by off."""
        d[...] = 0.0
        if name in self.entries:
            rows, _, j, off = self.entries[name]
            d[rows, :, j] = off[:, None]

    def inputs(self, xs: Array, Wx: Array) -> tuple[Array, Array]:
        """For `add_inputs`: the moves of Wx at every step, off * xs[n, t, i] per (row, n)
        (T, rows * N), and of xs[:, t] (one step's rows, G*H)."""
        x_moves = xs[:, :, self.Wx.i].transpose(1, 2, 0).reshape(xs.shape[1], -1) * self.Wx.off
        return x_moves, (OFFSETS * STEP)[None, :, None] * Wx[:, None, :]

    def add_inputs(self, dA: Array, t: int, moves: tuple[Array, Array]) -> None:
        """Add the moves of Wx, b and xs[:, t] to Δa (n, N, G*H) at step t."""
        flat = dA.reshape(-1)
        if self.Wx.size:
            flat[self.Wx.dst] += moves[0][t]
        if self.b.size:
            flat[self.b.dst] += self.b.off
        L = self.layout
        first = L.xs_start + t * L.D * K
        lo, hi = max(first, self.lo), min(first + L.D * K, self.hi)
        if lo < hi:
            dA[lo - self.lo : hi - self.lo] += moves[1].reshape(-1, L.GH)[lo - first : hi - first, None]

    @staticmethod
    def add_recurrent(dA: Array, v: Array, dv: Array, moves: _Moves) -> None:
        """Add the moves of Wh (`moves`) to Δa, whose recurrent input is v + Δv (Δv C-contiguous)."""
        if moves.size:
            moves.add(dA, v.T[moves.i].ravel() + dv.reshape(-1)[moves.src])


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
    (len(job.dhs), P, N). Every update is in place, on the chunk's own buffers."""
    kind, N, H, GH = layout.kind, layout.N, layout.H, layout.GH
    dhs = np.stack(job.dhs)
    changes = np.zeros((len(dhs), layout.P, N))
    Wx, Wh, xs = job.Wx, job.Wh, job.xs
    Wh_h = np.ascontiguousarray(Wh[:, 2 * H :])  # the GRU's h~ block
    scale = _LSTM_SCALE(H)
    C = max(c.n for c in layout.chunks)
    buffers = [np.empty((C, N, GH)) for _ in range(2)] + [np.empty((C, N, H)) for _ in range(5)]
    acc = np.empty((len(dhs), C, N, H))
    for chunk in layout.chunks:
        n = chunk.n
        dA, tmp, dh, dc, b1, b2, b3 = (buf[:n] for buf in buffers)
        flat_dA, flat_dh = dA.reshape(n * N, GH), dh.reshape(n * N, H)
        chunk.start(dh, "h0")
        chunk.start(dc, "c0")
        acc[:, :n] = 0.0
        moves = chunk.inputs(xs, Wx)
        for t in range(chunk.t0, layout.T):
            v = steps[t]
            np.matmul(flat_dh, Wh, out=flat_dA)  # Δh Wh
            if kind == "gru":
                dA[..., 2 * H :] = 0.0  # h~'s recurrent input is r h, not h: below
            chunk.add_inputs(dA, t, moves)
            chunk.add_recurrent(dA, v["h"], dh, chunk.Wh)
            if kind == "rnn":
                _dtanh(v["a"], v["ca"], dA, tmp)
                dh[...] = dA
            elif kind == "lstm":
                dA *= scale
                _dtanh(v["sa"], v["csa"], dA, tmp)
                dA *= scale
                df, dg, di, do = _blocks(dA, H)
                # Δc' = f Δc + Δf (c + Δc) + g Δi + Δg (i + Δi)
                np.add(v["c"], dc, out=b1)
                b1 *= df
                np.multiply(v["f"], dc, out=b2)
                b1 += b2
                np.add(v["i"], di, out=b2)
                b2 *= dg
                b1 += b2
                np.multiply(v["g"], di, out=b2)
                b1 += b2
                b3[...] = b1
                _dtanh(v["cn"], v["cc"], b3, b2)  # Δ tanh(c')
                # Δh' = o Δtanh(c') + Δo (tanh(c') + Δtanh(c'))
                np.add(v["tc"], b3, out=b2)
                b2 *= do
                np.multiply(v["o"], b3, out=dh)
                dh += b2
                dc, b1 = b1, dc
            else:
                zr, dh_new = dA[..., : 2 * H], dA[..., 2 * H :]
                zr *= 0.5
                _dtanh(v["sa_zr"], v["csa_zr"], zr, tmp[..., : 2 * H])
                zr *= 0.5
                dz, dr = _blocks(zr, H)
                # Δu = r Δh + Δr (h + Δh), for u = r h; then Δ of h~'s pre-activation
                np.add(v["h"], dh, out=b1)
                b1 *= dr
                np.multiply(v["r"], dh, out=b2)
                b1 += b2
                np.matmul(b1.reshape(n * N, H), Wh_h, out=b2.reshape(n * N, H))
                dh_new += b2
                chunk.add_recurrent(dA, v["u"], b1, chunk.Wh_late)
                _dtanh(v["a_h"], v["ca_h"], dh_new, tmp[..., 2 * H :])
                # Δh' = (1 - z) Δh + z Δh~ + Δz (h~ + Δh~ - h - Δh)
                np.add(v["h_new"], dh_new, out=b2)
                b2 -= v["h"]
                b2 -= dh
                b2 *= dz
                np.multiply(v["z"], dh_new, out=b3)
                b2 += b3
                dh *= v["keep"]
                dh += b2
            for k in range(len(dhs)):  # ΔL_n += Σ_h dhs_t Δh_t, summed over h at the end
                np.multiply(dh, dhs[k, :, t], out=b2)
                acc[k, :n] += b2
        changes[:, chunk.lo : chunk.hi] = acc[:, :n].sum(axis=-1)
    return changes


class NumericOracle:
    """NumPy forward; gradients by fourth-order central differences (small cases only)."""

    name = "numeric"
    kinds = KINDS
    # Measured over 2000 generated cases of each kind (1000 per dtype; those supported):
    # see the module doc of tests/test_oracles_gated.py and the report of the change.
    # Worst relative disagreement with any other oracle, in compare's scale (max |ref|
    # floored at compare.FLOOR): rnn 1.1e-13, lstm and gru below 1e-13 as well. Spot
    # checks of the RNN against 50-digit mpmath came out within 1e-15.
    accuracy = 1e-12

    def supports(self, case: Case) -> bool:
        if case.kind not in self.kinds:
            return False
        segments = enumerate(case.segments)
        cost = sum(_cost_ns(case.kind, case.batch(k), s.T, case.D, case.H) for k, s in segments)
        return cost <= MAX_COST_NS

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        return [self._run_one(j) for j in jobs]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        if job.kind not in self.kinds:
            raise ValueError(f"the numeric oracle has no layer kind {job.kind!r}")
        N, T, D = job.xs.shape
        H = job.Wh.shape[0]
        layout = _Layout(job.kind, N, T, D, H)
        hs, cs, steps = _forward(job)
        with np.errstate(over="ignore"):  # cosh -> inf: see _dtanh
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
