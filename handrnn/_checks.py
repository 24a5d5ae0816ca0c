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


def check_params(params: list[Any], gates: int = 1) -> tuple[int, int, np.dtype[Any]]:
    """Check [Wx, Wh, b] of a layer with `gates` blocks of H columns, one dtype (float32/64).

    gates=1 (the tanh RNN): Wx (D, H), Wh (H, H), b (H,). gates=4 (the LSTM's f, g, i, o)
    or 3 (the GRU's z, r, h-hat): Wx (D, 4H), Wh (H, 4H), b (4H,) and so on. H is read
    from Wx, so every message about Wh and b gives the shape that matches Wx.

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
    G = "H" if gates == 1 else f"{gates}H"  # the width of the gate blocks, as a symbol
    if Wx.ndim != 2:
        raise ValueError(f"Wx must be 2-D with shape (D, {G}), got shape {shape_str(Wx.shape)}")
    D, GH = Wx.shape
    if D == 0 or GH == 0:
        raise ValueError(
            f"Wx must have shape (D, {G}) with D >= 1 and H >= 1, got shape {shape_str(Wx.shape)}"
        )
    if GH % gates:
        raise ValueError(
            f"Wx must have shape (D, {G}): {gates} gate blocks of H columns each, but its "
            f"{GH} columns are not a multiple of {gates} (got shape {shape_str(Wx.shape)})"
        )
    H = GH // gates
    if Wh.shape != (H, GH):
        raise ValueError(
            f"Wh must have shape (H, {G}) = {shape_str((H, GH))} to match Wx "
            f"{shape_str(Wx.shape)}, got {shape_str(Wh.shape)}"
        )
    if b.shape != (GH,):
        raise ValueError(
            f"b must have shape ({G},) = {shape_str((GH,))} to match Wx {shape_str(Wx.shape)}, "
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


def check_carried(
    name: str, state: object, N: int, H: int, dtype: np.dtype[Any]
) -> NDArray[Any] | None:
    """The carried state `name` (h or c) a stateful forward starts from, checked; None: zeros.

    It must be (N, H) for the batch about to run: a state of another batch size is
    refused, not broadcast.
    """
    if state is None:
        return None
    if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[1] != H:
        got = shape_str(state.shape) if isinstance(state, np.ndarray) else type(state).__name__
        raise ValueError(f"the carried state {name} must have shape (N, H={H}), got {got}")
    if state.shape[0] != N:
        raise ValueError(
            f"the carried state {name} has batch size {state.shape[0]} (shape "
            f"{shape_str(state.shape)}) but xs has N={N}: call reset_state() or set_state() "
            f"with shape (N={N}, H={H}) first"
        )
    return check_data(name, state, (("N", N), ("H", H)), dtype)


def no_forward_error(layer: str, failed: str | None) -> RuntimeError:
    """The error of a backward with nothing to differentiate.

    `failed` is the name of the exception that stopped the last forward part-way
    (None: there was no forward at all).
    """
    if failed is not None:
        return RuntimeError(
            f"{layer}.backward() called without a completed forward(): the last forward() "
            f"raised {failed} part-way, so there is nothing to differentiate; call forward() "
            "again"
        )
    return RuntimeError(
        f"{layer}.backward() called before forward(): there is nothing to differentiate"
    )
