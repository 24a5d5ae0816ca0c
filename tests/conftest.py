"""Shared helpers for the handrnn tests: seeded data and an independent NumPy reference.

The reference below is written from the formula h_t = tanh(h_{t-1} Wh + x_t Wx + b)
alone; it shares no code with handrnn, so comparing against it proves the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

Array = NDArray[Any]


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator: every test sees the same data on every run."""
    return np.random.default_rng(20240611)


def make_params(
    rng: np.random.Generator, D: int, H: int, dtype: Any = np.float64, scale: float = 0.5
) -> tuple[Array, Array, Array]:
    """Random Wx (D, H), Wh (H, H), b (H,) in `dtype`, entries ~ N(0, scale^2 / fan_in)."""
    Wx = rng.normal(0.0, scale / np.sqrt(D), (D, H)).astype(dtype)
    Wh = rng.normal(0.0, scale / np.sqrt(H), (H, H)).astype(dtype)
    b = rng.normal(0.0, scale, H).astype(dtype)
    return Wx, Wh, b


def reference_forward(
    xs: Array, Wx: Array, Wh: Array, b: Array, h0: Array | None = None
) -> tuple[Array, Array]:
    """Plain float64 loop over time: (hs (N, T, H), h_T (N, H)), from h0 or zeros."""
    N, T, _ = xs.shape
    H = Wh.shape[0]
    h = np.zeros((N, H)) if h0 is None else np.array(h0, dtype=np.float64)
    hs = np.zeros((N, T, H))
    for t in range(T):
        h = np.tanh(h @ Wh + xs[:, t] @ Wx + b)
        hs[:, t] = h
    return hs, h


def numerical_grad(f: Callable[[], float], x: Array, eps: float = 1e-6) -> Array:
    """Central finite differences of the scalar f() with respect to every entry of x.

    x is perturbed in place and restored exactly, so f must read x when called.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        up = f()
        x[idx] = orig - eps
        down = f()
        x[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


def reference_grads(
    xs: Array, Wx: Array, Wh: Array, b: Array, h0: Array, dhs: Array
) -> dict[str, Array]:
    """Finite-difference gradients of L = sum(hs * dhs) (so dL/dhs = dhs), in float64.

    Returns dxs, dWx, dWh, db and dh (the gradient w.r.t. the initial state h0).
    """
    xs, Wx, Wh, b, h0 = (np.array(a, dtype=np.float64) for a in (xs, Wx, Wh, b, h0))

    def loss() -> float:
        return float(np.sum(reference_forward(xs, Wx, Wh, b, h0)[0] * dhs))

    return {
        "dxs": numerical_grad(loss, xs),
        "dWx": numerical_grad(loss, Wx),
        "dWh": numerical_grad(loss, Wh),
        "db": numerical_grad(loss, b),
        "dh": numerical_grad(loss, h0),
    }
