"""Argument checks shared by the layers.

Every check raises before the layer touches its state, so a failed call leaves
params, grads and the carried hidden state exactly as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def shape_str(shape: tuple[Any, ...]) -> str:
    """(3, 4) -> '(3, 4)'; (5,) -> '(5,)'; symbolic names are kept as they are."""
    inner = ", ".join(str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def as_array(name: str, value: object) -> NDArray[Any]:
    """Return `value` as an ndarray or raise a TypeError naming the argument."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) or np.isscalar(value):
        return np.asarray(value)
    raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")


PARAM_TYPES = (np.float32, np.float64)  # the parameter dtypes the layers compute in


def check_params(params: list[Any]) -> tuple[int, int, np.dtype[Any]]:
    """Check [Wx, Wh, b]: Wx (D, H), Wh (H, H), b (H,), one dtype, float32 or float64.

    Returns (D, H, dtype).
    """
    if len(params) != 3:
        raise ValueError(f"params must be [Wx, Wh, b], got a list of {len(params)}")
    for name, p in zip(("Wx", "Wh", "b"), params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(p).__name__}")
        # Exactly float32 or float64 in native byte order: not float16, not longdouble
        # (not even where it is 64 bits wide), complex, integer or bool.
        if p.dtype.type not in PARAM_TYPES or not p.dtype.isnative:
            raise TypeError(
                f"{name} must have a floating dtype (float32 or float64), got {p.dtype}"
            )
    Wx, Wh, b = params
    if Wx.ndim != 2:
        raise ValueError(f"Wx must be 2-D with shape (D, H), got shape {shape_str(Wx.shape)}")
    D, H = Wx.shape
    if D == 0 or H == 0:
        raise ValueError(f"Wx must have D >= 1 and H >= 1, got shape {shape_str(Wx.shape)}")
    if Wh.shape != (H, H):
        raise ValueError(
            f"Wh must have shape (H, H) = {shape_str((H, H))} to match Wx {shape_str(Wx.shape)}, "
            f"got {shape_str(Wh.shape)}"
        )
    if b.shape != (H,):
        raise ValueError(
            f"b must have shape (H,) = {shape_str((H,))} to match Wx {shape_str(Wx.shape)}, "
            f"got {shape_str(b.shape)}"
        )
    if not (Wx.dtype == Wh.dtype == b.dtype):
        raise TypeError(
            f"Wx, Wh and b must share one dtype, got {Wx.dtype}, {Wh.dtype} and {b.dtype}"
        )
    return D, H, Wx.dtype


def check_grads(grads: list[Any], params: list[Any]) -> None:
    """grads must still be arrays shaped like params (they are written in place)."""
    for name, g, p in zip(("dWx", "dWh", "db"), grads, params):
        if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
            got = (
                f"{g.dtype} {shape_str(g.shape)}" if isinstance(g, np.ndarray) else type(g).__name__
            )
            raise ValueError(
                f"grads entry {name} must be a {p.dtype} array of shape {shape_str(p.shape)} "
                f"(it is written in place), got {got}"
            )


Dim = tuple[str, int | None]  # ("T", None): any size; ("D", 4): must be 4


def dims_str(dims: tuple[Dim, ...]) -> str:
    """(("N", None), ("D", 4)) -> '(N, D=4)'."""
    return shape_str(tuple(label if size is None else f"{label}={size}" for label, size in dims))


def check_data(
    name: str, value: object, dims: tuple[Dim, ...], dtype: np.dtype[Any]
) -> NDArray[Any]:
    """Check a data array against named dimensions and cast it to the params' dtype.

    The caller's array is never written to: the result is either the very same
    array (already the right dtype) or a new one.
    """
    arr = as_array(name, value)
    if arr.dtype.kind not in "fiu":  # floating, signed or unsigned integer; not bool
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    fits = arr.ndim == len(dims) and all(
        size is None or got == size for got, (_, size) in zip(arr.shape, dims)
    )
    if not fits:
        raise ValueError(f"{name} must have shape {dims_str(dims)}, got {shape_str(arr.shape)}")
    return np.asarray(arr, dtype=dtype)
