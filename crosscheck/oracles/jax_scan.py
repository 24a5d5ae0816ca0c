"""The "jax" oracle: lax.scan forward, jax.vjp backward, in float64.

Jobs of one shape (N, T, D, H) go through one compiled function that is vmapped
over a fixed chunk of jobs and over two cotangents, so each shape compiles once.
Compiled code is also kept on disk across runs (see `_enable_persistent_cache`).
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

jax.config.update("jax_enable_x64", True)

# Jobs per compiled call: the last chunk of a shape is padded by repeating a job,
# so a larger chunk wastes work on shapes that have few jobs.
CHUNK = 8
# Every job is run with this many cotangents (a missing second dhs repeats the first),
# so one compile serves segments with one or two backward calls.
COTANGENTS = 2
_HIGHEST = lax.Precision.HIGHEST  # no TF32 / bf16 passes on accelerators


def _cache_dir() -> Path:
    """CROSSCHECK_CACHE_DIR, else $XDG_CACHE_HOME/crosscheck/jax, else ~/.cache/crosscheck/jax."""
    env = os.environ.get("CROSSCHECK_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "crosscheck" / "jax"


def _enable_persistent_cache() -> None:
    """Keep compiled executables on disk; a second run then skips XLA compilation."""
    if jax.config.jax_compilation_cache_dir:  # the user chose a cache: keep it
        return
    path = _cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # caching is an optimisation only
    if not os.access(path, os.W_OK | os.X_OK):
        return  # JAX would warn on every failed write
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Our compiles take well under JAX's default 1 s threshold; cache them all.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


_enable_persistent_cache()


@jax.custom_jvp
def _tanh(a: Any) -> Any:
    return jnp.tanh(a)


@_tanh.defjvp
def _tanh_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    # JAX's own rule uses 1 - tanh(a)^2, which where tanh saturates keeps only
    # ~1e-16 / (1 - tanh(a)^2) of relative precision (and none once tanh(a) rounds to
    # +-1); 1 / cosh(a)^2 from the pre-activation stays exact to a few ulps.
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
    """One job with dhs (K, N, T, H) -> hs, then dxs, dWx, dWh, db, dh each with a leading K axis."""
    hs, vjp = jax.vjp(_segment, Wx, Wh, b, h0, xs)
    dWx, dWh, db, dh, dxs = jax.vmap(vjp)(dhs)
    return hs, dxs, dWx, dWh, db, dh


_batched = jax.jit(jax.vmap(_one_job))


class JaxOracle:
    """lax.scan + jax.vjp in float64, one compiled executable per shape."""

    name = "jax"
    # Measured: at most 4.7e-15 relative disagreement with the torch oracles and
    # 6.7e-10 with "numeric" (whose own error that is) over 400 cases (200 per
    # dtype); a float64 recurrence of <= 64 steps rounds at ~1e-14, hence 1e-12.
    accuracy = 1e-12

    def __init__(self) -> None:
        self._compiled: dict[Shape, Callable[..., Any]] = {}

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        out: list[SegmentValues | None] = [None] * len(jobs)
        by_shape: dict[Shape, list[int]] = {}
        for i, job in enumerate(jobs):
            N, T, D = job.xs.shape
            by_shape.setdefault((N, T, D, job.Wh.shape[0]), []).append(i)
        for shape, idx in by_shape.items():
            for start in range(0, len(idx), CHUNK):
                chunk = idx[start : start + CHUNK]
                for i, values in zip(chunk, self._run_chunk(shape, [jobs[i] for i in chunk])):
                    out[i] = values
        return [v for v in out if v is not None]

    def _executable(self, shape: Shape) -> Callable[..., Any]:
        if shape not in self._compiled:
            N, T, D, H = shape

            def spec(*dims: int) -> jax.ShapeDtypeStruct:
                return jax.ShapeDtypeStruct((CHUNK, *dims), np.float64)

            args = (spec(D, H), spec(H, H), spec(H), spec(N, H), spec(N, T, D),
                    spec(COTANGENTS, N, T, H))  # fmt: skip
            self._compiled[shape] = _batched.lower(*args).compile()
        return self._compiled[shape]

    def _run_chunk(self, shape: Shape, jobs: list[SegmentJob]) -> list[SegmentValues]:
        padded = jobs + [jobs[-1]] * (CHUNK - len(jobs))

        def stack(get: Callable[[SegmentJob], Array]) -> Array:
            return np.stack([np.asarray(get(j), dtype=np.float64) for j in padded])

        def cotangents(j: SegmentJob) -> Array:
            return np.stack([j.dhs[min(k, len(j.dhs) - 1)] for k in range(COTANGENTS)])

        args = (stack(lambda j: j.Wx), stack(lambda j: j.Wh), stack(lambda j: j.b),
                stack(lambda j: j.h0), stack(lambda j: j.xs), stack(cotangents))  # fmt: skip
        hs, dxs, dWx, dWh, db, dh = (np.asarray(r) for r in self._executable(shape)(*args))
        if hs.dtype != np.float64 or dWh.dtype != np.float64:
            raise RuntimeError(
                f"the jax oracle computed in {hs.dtype}, not float64: something turned "
                "jax_enable_x64 off after crosscheck.oracles.jax_scan was imported"
            )
        # Copies: each array must own its memory, not view the batched buffers.
        return [
            SegmentValues(
                hs=hs[i].copy(),
                h=hs[i, :, -1].copy(),
                backward=tuple(
                    Grads(
                        dxs[i, k].copy(),
                        dWx[i, k].copy(),
                        dWh[i, k].copy(),
                        db[i, k].copy(),
                        dh[i, k].copy(),
                    )  # fmt: skip
                    for k in range(len(job.dhs))
                ),
            )
            for i, job in enumerate(jobs)
        ]


def oracles() -> list[Oracle]:
    return [JaxOracle()]
