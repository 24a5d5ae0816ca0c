"""The "jax" oracle: lax.scan forward, jax.vjp backward, in float64.

Each job is zero-padded to a bucket shape (N, T, D, H) and the jobs of one bucket go
through one compiled function, vmapped over a fixed chunk of jobs and over two
cotangents: the default case pool needs two compiles in all. The padding is exact:
padded hidden units and inputs have zero weights, so they stay at tanh(0) = 0 and
feed nothing back; padded batch rows and time steps get zero dhs, so they add
nothing to any gradient. Compiled code is also kept on disk across runs (see
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

from crosscheck.cases import Case
from crosscheck.oracles import Oracle, SegmentJob
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


def _segment(Wx: Any, Wh: Any, b: Any, h0: Any, xs: Any) -> Any:
    """xs (N, T, D), h0 (N, H) -> hs (N, T, H)."""

    def step(h: Any, x: Any) -> tuple[Any, Any]:
        h = _tanh(jnp.dot(h, Wh, precision=_HIGHEST) + jnp.dot(x, Wx, precision=_HIGHEST) + b)
        return h, h

    _, hs = lax.scan(step, h0, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


def _one_job(Wx: Any, Wh: Any, b: Any, h0: Any, xs: Any, dhs: Any) -> tuple[Any, ...]:
    """dhs (K, N, T, H) -> hs, then dxs, dWx, dWh, db, dh, each with a leading K axis."""
    hs, vjp = jax.vjp(_segment, Wx, Wh, b, h0, xs)
    dWx, dWh, db, dh, dxs = jax.vmap(vjp)(dhs)
    return hs, dxs, dWx, dWh, db, dh


_batched = jax.jit(jax.vmap(_one_job))


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


def _check_float64(what: str, dtype: Any) -> None:
    if dtype != np.float64:
        raise RuntimeError(
            f"the jax oracle {what} {dtype}, not float64: jax_enable_x64 was turned off after "
            "crosscheck.oracles.jax_scan was imported; leave it on to use this oracle"
        )


class JaxOracle:
    """lax.scan + jax.vjp in float64, one compiled executable per bucket shape."""

    name = "jax"
    # Measured over 2000 generated cases (1000 per dtype): at most 1.3e-13 relative
    # disagreement with any other oracle in compare's scale (max |ref| floored at
    # compare.FLOOR), alike for float32 and float64 cases. Without the floor: at most
    # 4.9e-12 against "torch" and "numeric", on gradients of size ~1e-4 (against
    # "torch.nn.RNN" more, which is that oracle's error: see torch_oracles).
    accuracy = 1e-12

    def __init__(self) -> None:
        self._compiled: dict[Shape, Callable[..., Any]] = {}

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        _check_float64("would compute in", jnp.asarray(0.0).dtype)
        out: dict[int, SegmentValues] = {}
        by_shape: dict[Shape, list[int]] = {}
        for i, job in enumerate(jobs):
            N, T, D = job.xs.shape
            by_shape.setdefault(bucket((N, T, D, job.Wh.shape[0])), []).append(i)
        for shape, idx in by_shape.items():
            for start in range(0, len(idx), CHUNK):
                chunk = idx[start : start + CHUNK]
                out.update(zip(chunk, self._run_chunk(shape, [jobs[i] for i in chunk])))
        return [out[i] for i in range(len(jobs))]

    def _executable(self, shape: Shape) -> Callable[..., Any]:
        if shape not in self._compiled:
            N, T, D, H = shape
            dims = ((D, H), (H, H), (H,), (N, H), (N, T, D), (COTANGENTS, N, T, H))
            specs = [jax.ShapeDtypeStruct((CHUNK, *d), np.float64) for d in dims]  # type: ignore[no-untyped-call]
            self._compiled[shape] = _batched.lower(*specs).compile()
        return self._compiled[shape]

    def _run_chunk(self, shape: Shape, jobs: list[SegmentJob]) -> list[SegmentValues]:
        """Run up to CHUNK jobs padded to the bucket `shape`; cut the results back."""
        Np, Tp, Dp, Hp = shape
        padded = jobs + [jobs[-1]] * (CHUNK - len(jobs))
        dhs = [[j.dhs[min(k, len(j.dhs) - 1)] for k in range(COTANGENTS)] for j in padded]
        args = [
            np.stack([_pad(a, dims) for a in arrays])
            for arrays, dims in (
                ([j.Wx for j in padded], (Dp, Hp)),
                ([j.Wh for j in padded], (Hp, Hp)),
                ([j.b for j in padded], (Hp,)),
                ([j.h0 for j in padded], (Np, Hp)),
                ([j.xs for j in padded], (Np, Tp, Dp)),
                ([np.stack(d) for d in dhs], (COTANGENTS, Np, Tp, Hp)),
            )
        ]
        hs, dxs, dWx, dWh, db, dh = (np.asarray(r) for r in self._executable(shape)(*args))
        _check_float64("returned", hs.dtype)
        _check_float64("returned", dWh.dtype)
        results = []
        for i, job in enumerate(jobs):
            N, T, D = job.xs.shape
            H = job.Wh.shape[0]
            # Copies: every array must own its memory rather than view the chunk's buffers.
            grads = tuple(
                Grads(
                    dxs[i, k, :N, :T, :D].copy(),
                    dWx[i, k, :D, :H].copy(),
                    dWh[i, k, :H, :H].copy(),
                    db[i, k, :H].copy(),
                    dh[i, k, :N, :H].copy(),
                )
                for k in range(len(job.dhs))
            )
            hs_i = hs[i, :N, :T, :H]
            results.append(SegmentValues(hs_i.copy(), hs_i[:, -1].copy(), grads))
        return results


def oracles() -> list[Oracle]:
    return [JaxOracle()]
