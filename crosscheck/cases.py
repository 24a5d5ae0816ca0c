"""Cases: what a verification drives a layer through. The one seeded generator.

A `Case` is plain data that a short string reproduces bit for bit:

    f32:N2:D3:H4:moderate:stateful:7z,7c2,7s*:981234
    lstm:f64:N2:D3:H4:small:stateless:5z:42

[layer kind :] dtype : N, D, H : weight regime : stateful or stateless : segments : data
seed. The kind (KINDS: the book's tanh RNN, LSTM or GRU) is left out for the RNN.
Each segment is one `forward(xs)` followed by one or two `backward(dhs)` calls:
`<T><start>[2][*][n<N>]` where start is z (fresh layer or zeros), c (carry the state of
the previous segment), s (`set_state(h)` first; `set_state(h, c)` for the LSTM) or r
(`reset_state()` first); `2` means backward is called twice in a row (with two different
dhs), `*` marks a segment where a probe also checks what happens when the caller
overwrites the returned hs before backward, and `n<N>` gives a stateless segment its own
batch size (an epoch's short last batch: `3z,3zn1`).

Sizes, regimes and chain shapes are drawn here and nowhere else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
Start = Literal["z", "c", "s", "r"]
DTYPES = ("float32", "float64")
# The layer kinds and the arrays a case of each has: Wx (D, G*H), Wh (H, G*H), b (G*H,)
# for G = GATES[kind] blocks of H columns; kinds in CELL_STATE also carry a cell state c.
KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CELL_STATE = frozenset({"lstm"})
REGIMES = ("small", "moderate", "saturating", "exploding")
_DTYPE_CODES = {"float32": "f32", "float64": "f64"}

# Shapes come from a pool so that compiled oracles are reused across cases.
# (N, D, H) and the sequence lengths cover 1s, D == H, D != H and T up to 64.
NDH_POOL: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (1, 3, 2),
    (2, 1, 3),
    (2, 4, 4),
    (3, 2, 5),
    (1, 6, 6),
    (4, 5, 3),
    (2, 8, 8),
    (5, 3, 7),
    (3, 7, 4),
    (8, 4, 6),
    (6, 10, 10),
)
T_POOL: tuple[int, ...] = (1, 2, 3, 5, 8, 16, 33, 64)


@dataclass(frozen=True)
class Segment:
    """One forward + backward(s): T steps, how the initial state is set, and flags."""

    T: int
    start: Start = "z"
    backwards: int = 1
    scribble: bool = False
    N: int | None = None  # this segment's batch size, if not the case's

    def token(self) -> str:
        twice = "2" if self.backwards == 2 else ""
        batch = "" if self.N is None else f"n{self.N}"
        return f"{self.T}{self.start}{twice}{'*' if self.scribble else ''}{batch}"


@dataclass(frozen=True)
class SegmentData:
    """xs: (N, T, D); h_set: (N, H) if the segment calls set_state, and c_set: (N, H) as
    well for a kind with a cell state; dhs: (N, T, H) per backward."""

    xs: Array
    h_set: Array | None
    dhs: tuple[Array, ...]
    c_set: Array | None = None


@dataclass(frozen=True)
class CaseData:
    """The arrays of a case, in the case's dtype: Wx (D, G*H), Wh (H, G*H), b (G*H,) (G = 1
    for the RNN) and the segments."""

    Wx: Array
    Wh: Array
    b: Array
    segments: tuple[SegmentData, ...]


@dataclass(frozen=True)
class Case:
    dtype: str
    N: int
    D: int
    H: int
    regime: str
    stateful: bool
    segments: tuple[Segment, ...]
    seed: int
    kind: str = "rnn"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, got {self.regime!r}")
        sizes = (self.N, self.D, self.H, self.seed, *(s.T for s in self.segments))
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in sizes):
            raise ValueError(f"N, D, H, T and seed must be integers, got {sizes}")
        if min(self.N, self.D, self.H) < 1 or not self.segments:
            raise ValueError("a case needs N, D, H >= 1 and at least one segment")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        for k, seg in enumerate(self.segments):
            if seg.T < 1 or seg.backwards not in (1, 2):
                raise ValueError(f"segment {k}: T must be >= 1 and backwards 1 or 2")
            if seg.start not in ("z", "c", "s", "r"):
                raise ValueError(f"segment {k}: start must be z, c, s or r, got {seg.start!r}")
            if self.stateful and k > 0 and seg.start == "z":
                raise ValueError(
                    f"segment {k}: a stateful case starts from zeros only in segment 0 "
                    "(use r to call reset_state)"
                )
            if not self.stateful and seg.start != "z":
                raise ValueError(f"segment {k}: a stateless case starts every segment from zeros")
            if k == 0 and seg.start in ("c", "r"):
                raise ValueError("segment 0 cannot carry or reset: nothing came before it")
            if seg.N is not None and (self.stateful or seg.N < 1 or k == 0):
                raise ValueError(
                    f"segment {k}: only a later segment of a stateless case has its own "
                    "batch size, and it must be >= 1"
                )

    @property
    def id(self) -> str:
        """The short string that reproduces this case bit for bit (see the module doc)."""
        mode = "stateful" if self.stateful else "stateless"
        segs = ",".join(s.token() for s in self.segments)
        kind = "" if self.kind == "rnn" else f"{self.kind}:"
        return (
            f"{kind}{_DTYPE_CODES[self.dtype]}:N{self.N}:D{self.D}:H{self.H}:"
            f"{self.regime}:{mode}:{segs}:{self.seed}"
        )

    def __str__(self) -> str:
        return self.id

    @property
    def gates(self) -> int:
        """G: how many blocks of H columns Wx, Wh and b have (1 for the RNN)."""
        return GATES[self.kind]

    @property
    def has_cell(self) -> bool:
        """Whether the layer carries a cell state c beside h (the LSTM)."""
        return self.kind in CELL_STATE

    @property
    def total_steps(self) -> int:
        return sum(s.T for s in self.segments)

    def batch(self, k: int) -> int:
        """Segment k's batch size N."""
        n = self.segments[k].N
        return self.N if n is None else n

    def chain_steps(self, k: int) -> int:
        """Steps the hidden state has taken by the end of segment k since it last restarted."""
        return self._chain[k]

    @functools.cached_property
    def _chain(self) -> tuple[int, ...]:
        out, steps = [], 0
        for seg in self.segments:
            steps = seg.T + (steps if seg.start == "c" else 0)
            out.append(steps)
        return tuple(out)

    def data(self) -> CaseData:
        """Draw the case's arrays from its seed (float64 draws rounded to the case dtype)."""
        rng = np.random.default_rng(self.seed)
        Wx, Wh, b, x_scale = _weights(rng, self.regime, self.D, self.H, self.gates)
        segs = []
        for k, seg in enumerate(self.segments):
            N = self.batch(k)
            xs = rng.normal(0.0, x_scale, size=(N, seg.T, self.D))
            h_set = rng.uniform(-0.9, 0.9, size=(N, self.H)) if seg.start == "s" else None
            dhs = tuple(rng.normal(size=(N, seg.T, self.H)) for _ in range(seg.backwards))
            # Drawn after everything else, so an RNN case's arrays stay what they were.
            c_set = None
            if self.has_cell and seg.start == "s":
                c_set = self._cast(rng.uniform(-2.0, 2.0, size=(N, self.H)))
            segs.append(
                SegmentData(
                    self._cast(xs),
                    None if h_set is None else self._cast(h_set),
                    tuple(self._cast(d) for d in dhs),
                    c_set,
                )
            )
        return CaseData(self._cast(Wx), self._cast(Wh), self._cast(b), tuple(segs))

    def _cast(self, a: Array) -> Array:
        return np.ascontiguousarray(a, dtype=self.dtype)


def _weights(
    rng: np.random.Generator, regime: str, D: int, H: int, gates: int = 1
) -> tuple[Array, Array, Array, float]:
    """Wx (D, G*H), Wh (H, G*H), b (G*H,) and the input scale for a regime (G = gates)."""
    GH = gates * H
    if regime == "exploding":
        # Each (H, H) block of Wh a scaled orthogonal matrix: gradients grow backwards
        # through time (for the RNN; a gated layer's gates damp them to a degree).
        blocks = []
        for _ in range(gates):
            q, r = np.linalg.qr(rng.normal(size=(H, H)))
            blocks.append(1.25 * q * np.sign(np.diag(r)))
        Wh = np.concatenate(blocks, axis=1)
        return rng.normal(0, 0.3 / np.sqrt(D), (D, GH)), Wh, np.zeros(GH), 0.5
    gains = {
        "small": (0.1, 0.1, 0.1, 1.0),
        "moderate": (1.0, 0.8, 0.2, 1.0),
        "saturating": (3.0, 1.0, 1.0, 1.5),
    }
    gx, gh, gb, x_scale = gains[regime]
    Wx = rng.normal(0, gx / np.sqrt(D), (D, GH))
    Wh = rng.normal(0, gh / np.sqrt(H), (H, GH))
    return Wx, Wh, rng.normal(0, gb, GH), x_scale


def draw_case(rng: np.random.Generator, dtype: str, kind: str = "rnn") -> Case:
    """One random case: a shape from the pool, a regime, a chain of segments."""
    N, D, H = NDH_POOL[rng.integers(len(NDH_POOL))]
    T = int(T_POOL[rng.integers(len(T_POOL))])
    regime = REGIMES[rng.integers(len(REGIMES))]
    stateful = bool(rng.random() < 0.6)
    n_segments = int(rng.integers(1, 5))
    segments = []
    for k in range(n_segments):
        # A later batch may be shorter or longer (the tail of a corpus, another sequence):
        # layers must not size their buffers or cells on the first call.
        Tk = T if k == 0 or rng.random() >= 0.2 else int(T_POOL[rng.integers(len(T_POOL))])
        if not stateful:
            start: Start = "z"
        elif k == 0:
            start = "s" if rng.random() < 0.3 else "z"
        else:
            start = ("c", "c", "c", "s", "r")[rng.integers(5)]
        # A stateless layer may get a batch of another size (an epoch's short last batch).
        Nk = int(rng.integers(1, N + 3)) if not stateful and k > 0 and rng.random() < 0.2 else N
        segments.append(
            Segment(
                Tk,
                start,
                backwards=2 if rng.random() < 0.25 else 1,
                scribble=bool(rng.random() < 0.2),
                N=None if Nk == N else Nk,
            )
        )
    seed = int(rng.integers(2**31))
    return Case(dtype, N, D, H, regime, stateful, tuple(segments), seed, kind)


def iter_cases(
    count: int, seed: int = 0, dtypes: Sequence[str] = DTYPES, kind: str = "rnn"
) -> Iterator[Case]:
    """`count` cases of layer kind `kind`, reproducible from `seed`, drawn one at a time
    (memory stays flat however many are asked for); dtypes alternate so each gets its
    share. The list does not depend on which backends are installed; the kinds share
    shapes and chains (kind lstm's case i is kind rnn's with gated weights)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if count < 0 or seed < 0:
        raise ValueError(f"count and seed must be >= 0, got {count} and {seed}")
    for dt in dtypes:
        if dt not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dt!r}")
    if not dtypes:
        raise ValueError("at least one dtype is needed")
    for i in range(count):
        yield draw_case(np.random.default_rng([seed, i]), dtypes[i % len(dtypes)], kind)


def generate_cases(
    count: int,
    seed: int = 0,
    dtypes: Sequence[str] = DTYPES,
    accept: Callable[[Case], bool] | None = None,
    kind: str = "rnn",
) -> list[Case]:
    """`count` cases, reproducible from `seed` (the list `iter_cases` yields).

    accept: keep only the cases it approves, drawing on until `count` are kept.
    """
    if accept is None:
        return list(iter_cases(count, seed, dtypes, kind))
    cases: list[Case] = []
    for case in iter_cases(1000 * max(count, 1), seed, dtypes, kind):
        if len(cases) == count:
            break
        if accept(case):
            cases.append(case)
    if len(cases) < count:
        raise ValueError(f"the generator found only {len(cases)} acceptable cases of {count}")
    return cases


_CASE_RE = re.compile(
    r"^(?:(?P<kind>lstm|gru):)?(?P<dtype>f32|f64):N(?P<N>\d+):D(?P<D>\d+):H(?P<H>\d+):(?P<regime>[a-z]+):"
    r"(?P<mode>stateful|stateless):(?P<segs>[^:]+):(?P<seed>\d+)$"
)
_SEG_RE = re.compile(r"^(?P<T>\d+)(?P<start>[zcsr])(?P<two>2?)(?P<star>\*?)(?:n(?P<N>\d+))?$")


def parse_case(text: str) -> Case:
    """Inverse of `Case.id`. Raises ValueError with the expected form on bad input."""
    m = _CASE_RE.match(text.strip())
    if not m:
        raise ValueError(
            f"not a case id: {text!r} (expected e.g. f32:N2:D3:H4:moderate:stateful:7z,7c2:981234)"
        )
    segments = []
    for tok in m["segs"].split(","):
        s = _SEG_RE.match(tok)
        if not s:
            raise ValueError(f"bad segment {tok!r} in case id (expected e.g. 7z, 7c2, 7s*, 7zn2)")
        segments.append(
            Segment(int(s["T"]), s["start"], 2 if s["two"] else 1, bool(s["star"]),  # type: ignore[arg-type]
                    None if s["N"] is None else int(s["N"]))
        )  # fmt: skip
    dtype = {v: k for k, v in _DTYPE_CODES.items()}[m["dtype"]]
    return Case(
        dtype,
        int(m["N"]),
        int(m["D"]),
        int(m["H"]),
        m["regime"],
        m["mode"] == "stateful",
        tuple(segments),
        int(m["seed"]),
        m["kind"] or "rnn",
    )
