"""Private helpers shared by the layers: work buffers, weight-gradient products, σ.

Shared by TimeRNN, TimeLSTM and TimeGRU; NumPy only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def _reuse(buf: Array | None, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """buf if it has this shape and dtype (its contents are overwritten), else a new array.

    Saves the allocation, and the page faults of a fresh large array, on every call.
    """
    if buf is not None and buf.shape == shape and buf.dtype == dtype:
        return buf
    return np.empty(shape, dtype=dtype)


def _dot_into(a: Array, b: Array, out: Array) -> None:
    """out[...] = a @ b: np.dot (less overhead) when out is C-contiguous, as np.dot requires."""
    if out.flags.c_contiguous:
        np.dot(a, b, out=out)
    else:
        np.matmul(a, b, out=out)


@lru_cache(maxsize=8)
def _ones(n: int, dtype: np.dtype[Any]) -> Array:
    """A read-only vector of n ones, kept for the next call (db = ones @ dt)."""
    ones = np.ones(n, dtype=dtype)
    ones.flags.writeable = False
    return ones


def sigmoid(a: Array, out: Array | None = None) -> Array:
    """σ(a) = 1 / (1 + exp(-a)), computed as (1 + tanh(a / 2)) / 2 in a's dtype.

    The same function in exact arithmetic, but safe for any a: tanh saturates at ±1
    where exp(-a) overflows (a < -88 in float32, a < -709 in float64) with a warning.
    Its absolute error is tanh's, a few units in the last place of 1; far out on the
    left (a < -17 in float32, a < -37 in float64) σ(a) comes out as 0 or a few eps
    instead of exp(a) to full relative precision, which the gates do not need (they
    multiply other values). `out` may be `a` itself (in place).
    """
    # Positional out arguments (the keyword costs a little in the per-step loops).
    out = np.multiply(a, 0.5, out)
    np.tanh(out, out)
    np.multiply(out, 0.5, out)
    np.add(out, 0.5, out)
    return out
