"""The "jax" oracle: lax.scan forward, jax.vjp backward, in float64, for the book's tanh
RNN, LSTM and GRU (one `_rnn`, `_lstm`, `_gru` segment function each).

Each job is zero-padded to a bucket shape (N, T, D, H) and the jobs of one kind and
bucket go through one compiled function, vmapped over a fixed chunk of jobs and over
two cotangents: the default case pool needs two compiles per kind. Wx, Wh and b are
padded gate block by gate block (each block's H columns first in its padded width).
The padding is exact:

- padded hidden units have zero weights and bias in every block and a zero initial
  state, so their pre-activations are 0 and they stay at 0: the RNN's h = tanh(0); the
  LSTM's c = σ(0) c + tanh(0) σ(0) = 0 and h = σ(0) tanh(0) = 0; the GRU's
  h = (1 - σ(0)) h + σ(0) tanh(0) = 0. Their rows of Wh are zero too, so they feed
  nothing back, and their dhs are zero;
- padded inputs have zero weights; padded batch rows and time steps (after the real
  ones) get zero dhs, so they add nothing to any gradient, and the LSTM's c is read at
  the last real step.

Derivatives keep their relative precision where a gate saturates: tanh' = 1 / cosh(a)²
and σ' = σ(a) σ(-a) from the pre-activation (custom JVPs), and the GRU's 1 - z is
computed as σ(-a_z). Compiled code is also kept on disk across runs (see
`_enable_persistent_cache`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import NDArray

from crosscheck.cases import CELL_STATE, GATES, Case
from crosscheck.oracles import Oracle, SegmentJob, check_kinds
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]
Shape = tuple[int, int, int, int]  # N, T, D, H


def _set(option: str, value: Any) -> None:
    jax.config.update(option, value)  # type: ignore[no-untyped-call]


_set("jax_enable_x64", True)

# Jobs per compiled call. The last chunk of a shape is padded by repeating a job; a
# verification has only a few jobs per shape, so a bigger chunk would mostly pad.
CHUNK = 8
# Every job runs with this many cotangents (a missing second dhs repeats the first),
# so segments with one or two backward calls share a compile.
COTANGENTS = 2
_HIGHEST = lax.Precision.HIGHEST  # full float64 products: no TF32 / bf16 passes on GPU


def cache_dir() -> Path:
    """CROSSCHECK_CACHE_DIR, else $XDG_CACHE_HOME/crosscheck/jax, else ~/.cache/crosscheck/jax."""
    env = os.environ.get("CROSSCHECK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "crosscheck" / "jax"


def _enable_persistent_cache() -> None:
    """Keep compiled executables on disk, so that a second run skips XLA compilation.

    Best effort: a cache directory the user already configured is kept, and an
    unwritable one means no cache rather than an error or warnings.
    """
    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(path, os.W_OK | os.X_OK):
        return
    _set("jax_compilation_cache_dir", str(path))
    # Ours compile in well under JAX's default threshold of 1 s: cache them all.
    _set("jax_persistent_cache_min_compile_time_secs", 0.0)


_enable_persistent_cache()


@jax.custom_jvp
def _tanh(a: Any) -> Any:
    return jnp.tanh(a)


@_tanh.defjvp
def _tanh_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    # JAX's own rule, 1 - tanh(a)^2, keeps only ~1e-16 / (1 - tanh(a)^2) of relative
    # precision where tanh saturates, and none once tanh(a) rounds to +-1;
    # 1 / cosh(a)^2 from the pre-activation stays exact to a few ulps.
    (a,), (t,) = primals, tangents
    return jnp.tanh(a), t / jnp.cosh(a) ** 2


@jax.custom_jvp
def _sigmoid(a: Any) -> Any:
    return jax.nn.sigmoid(a)


@_sigmoid.defjvp
def _sigmoid_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    # σ(a) σ(-a) rather than σ (1 - σ): 1 - σ(a) loses all relative precision where the
    # gate saturates towards 1; σ(-a) keeps it.
    (a,), (t,) = primals, tangents
    return jax.nn.sigmoid(a), t * (jax.nn.sigmoid(a) * jax.nn.sigmoid(-a))


def _dot(a: Any, b: Any) -> Any:
    return jnp.dot(a, b, precision=_HIGHEST)


def _scan(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, xs: Any) -> Any:
    """lax.scan over the time axis of xs (N, T, D); the per-step outputs (N, T, ...)."""
    _, out = lax.scan(step, state, jnp.swapaxes(xs, 0, 1))
    return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), out)


def _rnn(Wx: Any, Wh: Any, b: Any, xs: Any, h0: Any) -> tuple[Any, Any]:
    """xs (N, T, D), h0 (N, H) -> hs (N, T, H): h_t = tanh(h_{t-1} Wh + x_t Wx + b)."""

    def step(h: Any, x: Any) -> tuple[Any, Any]:
        h = _tanh(_dot(h, Wh) + _dot(x, Wx) + b)
        return h, h

    return _scan(step, h0, xs), ()


def _lstm(Wx: Any, Wh: Any, b: Any, xs: Any, h0: Any, c0: Any) -> tuple[Any, Any]:
    """The book's LSTM: a = x_t Wx + h_{t-1} Wh + b in blocks f, g, i, o;
    c_t = σ(f) c_{t-1} + tanh(g) σ(i), h_t = σ(o) tanh(c_t). -> hs, and cs (N, T, H)."""
    H = Wh.shape[0]

    def step(state: tuple[Any, Any], x: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        h, c = state
        a = _dot(h, Wh) + _dot(x, Wx) + b
        f, g, i, o = (a[:, k * H : (k + 1) * H] for k in range(4))
        c = _sigmoid(f) * c + _tanh(g) * _sigmoid(i)
        h = _sigmoid(o) * _tanh(c)
        return (h, c), (h, c)

    hs, cs = _scan(step, (h0, c0), xs)
    return hs, cs


def _gru(Wx: Any, Wh: Any, b: Any, xs: Any, h0: Any) -> tuple[Any, Any]:
    """The book's GRU: blocks z, r, h~; z = σ(x Wx_z + h Wh_z + b_z), r likewise,
    h~ = tanh(x Wx_h + (r h) Wh_h + b_h), h_t = (1 - z) h_{t-1} + z h~. -> hs."""
    H = Wh.shape[0]

    def step(h: Any, x: Any) -> tuple[Any, Any]:
        ax = _dot(x, Wx) + b
        a_zr = ax[:, : 2 * H] + _dot(h, Wh[:, : 2 * H])
        a_z, a_r = a_zr[:, :H], a_zr[:, H:]
        h_new = _tanh(ax[:, 2 * H :] + _dot(_sigmoid(a_r) * h, Wh[:, 2 * H :]))
        h = _sigmoid(-a_z) * h + _sigmoid(a_z) * h_new  # 1 - z as σ(-a_z): full precision
        return h, h

    return _scan(step, h0, xs), ()


_SEGMENTS: dict[str, Callable[..., tuple[Any, Any]]] = {"rnn": _rnn, "lstm": _lstm, "gru": _gru}


def _states(kind: str) -> int:
    """How many initial states a kind's segment takes: h0, and c0 for the LSTM."""
    return 2 if kind in CELL_STATE else 1


def _one_job(segment: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[Any, ...]]:
    """(Wx, Wh, b, xs, *states, dhs (K, N, T, H)) -> hs, aux (cs or ()), then dWx, dWh,
    db, dxs and each state's gradient, each with a leading K axis."""

    def run(*args: Any) -> tuple[Any, ...]:
        *inputs, dhs = args
        hs, vjp, aux = jax.vjp(segment, *inputs, has_aux=True)
        return hs, aux, *jax.vmap(vjp)(dhs)

    return run


_batched = {kind: jax.jit(jax.vmap(_one_job(seg))) for kind, seg in _SEGMENTS.items()}


# Smallest padded sizes: the generator's pool (N <= 8, D, H <= 10, T <= 64) falls in
# the buckets (8, 16, 16, 16) and (8, 64, 16, 16); larger sizes round up to a power of 2.
MIN_BUCKET: Shape = (8, 16, 16, 16)


def bucket(shape: Shape) -> Shape:
    """The padded shape a job of `shape` (N, T, D, H) runs in."""
    return tuple(max(m, 1 << (n - 1).bit_length()) for n, m in zip(shape, MIN_BUCKET))  # type: ignore[return-value]


def _pad(a: Array, shape: tuple[int, ...]) -> Array:
    """`a` in the top-left corner of zeros of `shape`."""
    out = np.zeros(shape)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _pad_gates(a: Array, shape: tuple[int, ...], G: int) -> Array:
    """`a` (..., G*H) padded to `shape` (..., G*Hp) gate block by gate block: each block's
    H columns at the start of its Hp."""
    *lead, GH = a.shape
    blocks = _pad(a.reshape(*lead, G, GH // G), (*shape[:-1], G, shape[-1] // G))
    return blocks.reshape(shape)


def _cut_gates(a: Array, lead: tuple[int, ...], G: int, H: int) -> Array:
    """The inverse of _pad_gates: the top-left `lead` of a (..., G*Hp), H of each block."""
    blocks = a.reshape(*a.shape[:-1], G, a.shape[-1] // G)
    index = (*(slice(0, n) for n in lead), slice(None), slice(0, H))
    out: Array = blocks[index].reshape(*lead, G * H).copy()  # its own memory, not the chunk's
    return out


def _check_float64(what: str, dtype: Any) -> None:
    if dtype != np.float64:
        raise RuntimeError(
            f"the jax oracle {what} {dtype}, not float64: jax_enable_x64 was turned off after "
            "crosscheck.oracles.jax_scan was imported; leave it on to use this oracle"
        )


class JaxOracle:
    """lax.scan + jax.vjp in float64, one compiled executable per kind and bucket shape."""

    name = "jax"
    kinds = ("rnn", "lstm", "gru")  # the kinds it implements
    # Measured pairwise against every other oracle of the kind, in compare's scale (max
    # |ref| floored at compare.FLOOR), on iter_cases(2000, seed, kind) (1000 per dtype):
    # lstm at most 1.8e-14 and gru 6.0e-14 (seeds 1000 and 2000); rnn 3.8e-13 (seed
    # 1000), on a float32 exploding 192-step chain (f32:N6:D10:H10:exploding:stateful:
    # 64z*,64c*,64c2:1188547932) whose db this oracle gets 4.3e-13 from a long-double
    # recomputation where the others get <= 1.5e-13: XLA's float64 tanh and cosh are
    # good to ~2.3 ulps, NumPy's and torch's to ~0.8. (An earlier rnn sample of 2000
    # cases gave at most 1.3e-13.) 1e-12 holds for every kind, with the least to spare
    # for the rnn.
    accuracy = 1e-12

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, Shape], Callable[..., Any]] = {}

    def supports(self, case: Case) -> bool:
        return case.kind in self.kinds

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        _check_float64("would compute in", jnp.asarray(0.0).dtype)
        out: dict[int, SegmentValues] = {}
        by_shape: dict[tuple[str, Shape], list[int]] = {}
        check_kinds(self, jobs)
        for i, job in enumerate(jobs):
            N, T, D = job.xs.shape
            by_shape.setdefault((job.kind, bucket((N, T, D, job.H))), []).append(i)
        for (kind, shape), idx in by_shape.items():
            for start in range(0, len(idx), CHUNK):
                chunk = idx[start : start + CHUNK]
                out.update(zip(chunk, self._run_chunk(kind, shape, [jobs[i] for i in chunk])))
        return [out[i] for i in range(len(jobs))]

    def _executable(self, kind: str, shape: Shape) -> Callable[..., Any]:
        if (kind, shape) not in self._compiled:
            N, T, D, H = shape
            GH = GATES[kind] * H
            dims = [(D, GH), (H, GH), (GH,), (N, T, D), *[(N, H)] * _states(kind)]
            dims.append((COTANGENTS, N, T, H))
            specs = [jax.ShapeDtypeStruct((CHUNK, *d), np.float64) for d in dims]  # type: ignore[no-untyped-call]
            self._compiled[(kind, shape)] = _batched[kind].lower(*specs).compile()
        return self._compiled[(kind, shape)]

    def _run_chunk(self, kind: str, shape: Shape, jobs: list[SegmentJob]) -> list[SegmentValues]:
        """Run up to CHUNK jobs of `kind` padded to the bucket `shape`; cut the results back."""
        Np, Tp, Dp, Hp = shape
        G = GATES[kind]
        padded = jobs + [jobs[-1]] * (CHUNK - len(jobs))
        dhs = [np.stack([j.dhs[min(k, len(j.dhs) - 1)] for k in range(COTANGENTS)]) for j in padded]
        states = [[j.h0 for j in padded]]
        if kind in CELL_STATE:
            states.append([j.cell0 for j in padded])
        args = [
            np.stack([_pad_gates(j.Wx, (Dp, G * Hp), G) for j in padded]),
            np.stack([_pad_gates(j.Wh, (Hp, G * Hp), G) for j in padded]),
            np.stack([_pad_gates(j.b, (G * Hp,), G) for j in padded]),
            np.stack([_pad(j.xs, (Np, Tp, Dp)) for j in padded]),
            *(np.stack([_pad(a, (Np, Hp)) for a in s]) for s in states),
            np.stack([_pad(d, (COTANGENTS, Np, Tp, Hp)) for d in dhs]),
        ]
        hs, aux, dWx, dWh, db, dxs, dh, *dc = jax.tree_util.tree_map(
            np.asarray, tuple(self._executable(kind, shape)(*args))
        )
        _check_float64("returned", hs.dtype)
        _check_float64("returned", dWh.dtype)
        results = []
        for i, job in enumerate(jobs):
            N, T, D = job.xs.shape
            H = job.H
            # Copies: every array must own its memory rather than view the chunk's buffers.
            grads = tuple(
                Grads(
                    dxs[i, k, :N, :T, :D].copy(),
                    _cut_gates(dWx[i, k], (D,), G, H),
                    _cut_gates(dWh[i, k], (H,), G, H),
                    _cut_gates(db[i, k], (), G, H),
                    dh[i, k, :N, :H].copy(),
                    dc[0][i, k, :N, :H].copy() if dc else None,
                )
                for k in range(len(job.dhs))
            )
            hs_i = hs[i, :N, :T, :H]
            c = aux[i, :N, T - 1, :H].copy() if dc else None
            results.append(SegmentValues(hs_i.copy(), hs_i[:, -1].copy(), grads, c))
        return results


def oracles() -> list[Oracle]:
    return [JaxOracle()]
