"""The GRU: the one-step cell and the book's TimeGRU built from it.

The contract TimeGRU shares with TimeLSTM and TimeRNN (numbers against the formulas
and finite differences, dtypes, errors, aliasing, the carried state and truncated
backward, failures part-way, copies) is tested in test_gated_contract.py, on both layers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from test_gated_contract import FD_TOL, GRU_SPEC, TIGHT, numerical_grad, sigma

from handrnn import GRU, TimeGRU

Array = np.ndarray
spec = GRU_SPEC
sizes = st.integers(min_value=1, max_value=5)


def gru_step(x: Array, h: Array, Wx: Array, Wh: Array, b: Array) -> Array:
    """The book's formulas for one step, in float64, each block by name."""
    H = Wh.shape[0]
    Wxz, Wxr, Wxh = Wx[:, :H], Wx[:, H : 2 * H], Wx[:, 2 * H :]
    Whz, Whr, Whh = Wh[:, :H], Wh[:, H : 2 * H], Wh[:, 2 * H :]
    bz, br, bh = b[:H], b[H : 2 * H], b[2 * H :]
    z = sigma(x @ Wxz + h @ Whz + bz)
    r = sigma(x @ Wxr + h @ Whr + br)
    h_hat = np.tanh(x @ Wxh + (r * h) @ Whh + bh)
    out: Array = (1 - z) * h + z * h_hat
    return out


# --- the cell --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(N=sizes, D=sizes, H=sizes, seed=st.integers(0, 2**32 - 1))
def test_cell_matches_the_formulas_and_finite_differences(
    N: int, D: int, H: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    Wx, Wh, b = spec.params(rng, D, H, scale=1.0)
    x, h, dh_next = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    cell = GRU(Wx, Wh, b)

    h_next = cell.forward(x, h)
    dx, dh_prev = cell.backward(dh_next)

    assert_allclose(h_next, gru_step(x, h, Wx, Wh, b), **TIGHT)
    Wx, Wh, b, x, h = (a.copy() for a in (Wx, Wh, b, x, h))  # perturbed below

    def loss() -> float:
        return float(np.sum(gru_step(x, h, Wx, Wh, b) * dh_next))

    got = {"dx": dx, "dh_prev": dh_prev}
    got.update(zip(("dWx", "dWh", "db"), cell.grads))
    wrt = {"dx": x, "dh_prev": h, "dWx": Wx, "dWh": Wh, "db": b}
    for name, arr in wrt.items():
        assert got[name].shape == arr.shape, name
        assert_allclose(got[name], numerical_grad(loss, arr), **FD_TOL, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_computes_in_the_params_dtype(rng: np.random.Generator, dtype: Any) -> None:
    cell = GRU(*spec.params(rng, 3, 4, dtype))
    h = cell.forward(rng.normal(size=(2, 3)), rng.normal(size=(2, 4)).astype(np.float16))
    dx, dh_prev = cell.backward(rng.normal(size=(2, 4)))
    for arr in (h, dx, dh_prev, *cell.grads):
        assert arr.dtype == dtype


def test_cell_params_are_the_arrays_passed_in_and_grads_are_overwritten_in_place(
    rng: np.random.Generator,
) -> None:
    Wx, Wh, b = spec.params(rng, 3, 4)
    cell = GRU(Wx, Wh, b)
    grads = list(cell.grads)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    dh_a, dh_b = rng.normal(size=(2, 2, 4))
    fresh = GRU(Wx, Wh, b)
    fresh.forward(x, h)
    fresh.backward(dh_b)

    cell.forward(x, h)
    cell.backward(dh_a)
    cell.backward(dh_b)

    assert cell.params[0] is Wx and cell.params[1] is Wh and cell.params[2] is b
    assert all(g is g0 for g, g0 in zip(cell.grads, grads, strict=True))
    for g, want in zip(cell.grads, fresh.grads, strict=True):
        assert_array_equal(g, want)  # the second backward replaced the first, no sum


def test_cell_never_writes_to_its_arguments(rng: np.random.Generator) -> None:
    cell = GRU(*spec.params(rng, 3, 4))
    args = [rng.normal(size=s) for s in ((2, 3), (2, 4), (2, 4))]
    for a in args:
        a.flags.writeable = False
    cell.forward(args[0], args[1])
    cell.backward(args[2])  # a write to any of them would have raised


def test_cell_editing_returned_arrays_changes_nothing_else(rng: np.random.Generator) -> None:
    params = spec.params(rng, 3, 4)
    x, h, dh = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    clean = GRU(*params)
    clean.forward(x, h)
    want = clean.backward(dh)
    cell = GRU(*params)

    cell.forward(x, h)[...] = 0.0  # backward must use its own arrays
    got = cell.backward(dh)
    for out in got:
        out[...] = 1.0

    for g, g0 in zip(cell.grads, clean.grads, strict=True):
        assert_array_equal(g, g0)
    for again, w in zip(cell.backward(dh), want, strict=True):
        assert_array_equal(again, w)
    for out in got:
        assert_array_equal(out, 1.0)


CELL_BAD_CALLS: dict[str, tuple[Callable[[GRU], object], type[Exception], tuple[str, ...]]] = {
    "x 1-D": (lambda c: c.forward(np.zeros(3), np.zeros((2, 4))), ValueError,
              ("x", "(3,)", "(N, D=3)")),
    "x wrong D": (lambda c: c.forward(np.zeros((2, 5)), np.zeros((2, 4))), ValueError,
                  ("x", "(2, 5)", "D=3")),
    "h_prev wrong N": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((1, 4))), ValueError,
                       ("h_prev", "(1, 4)", "(N=2, H=4)")),
    "h_prev wrong H": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 12))), ValueError,
                       ("h_prev", "(2, 12)", "H=4")),
    "h_prev complex": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 4), complex)),
                       TypeError, ("h_prev", "complex")),
    "dh_next wrong N": (lambda c: c.backward(np.zeros((1, 4))), ValueError,
                        ("dh_next", "(1, 4)", "(N=2, H=4)")),
    "dh_next 3-D": (lambda c: c.backward(np.zeros((2, 1, 4))), ValueError,
                    ("dh_next", "(2, 1, 4)", "(N=2, H=4)")),
}  # fmt: skip


@pytest.mark.parametrize(("call", "exc_type", "parts"), CELL_BAD_CALLS.values(),
                         ids=CELL_BAD_CALLS.keys())  # fmt: skip
def test_cell_bad_call_raises_and_changes_nothing(
    rng: np.random.Generator,
    call: Callable[[GRU], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
) -> None:
    cell = GRU(*spec.params(rng, 3, 4))
    x, h, dh = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    cell.forward(x, h)
    cell.backward(dh)
    twin = copy.deepcopy(cell)

    with pytest.raises(exc_type) as info:
        call(cell)

    for part in parts:
        assert part in str(info.value), f"{part!r} not in {str(info.value)!r}"
    for a, b in zip(cell.backward(dh), twin.backward(dh), strict=True):
        assert_array_equal(a, b)
    assert_array_equal(cell.forward(x, h), twin.forward(x, h))
    for g, g0 in zip(cell.grads, twin.grads, strict=True):
        assert_array_equal(g, g0)


def test_cell_backward_before_forward_is_a_runtime_error(rng: np.random.Generator) -> None:
    cell = GRU(*spec.params(rng, 3, 4))
    with pytest.raises(RuntimeError, match=r"GRU.backward\(\) called before forward\(\)"):
        cell.backward(np.zeros((2, 4)))


def test_cell_refuses_params_that_are_not_three_gate_blocks(rng: np.random.Generator) -> None:
    _, Wh, b = spec.params(rng, 3, 4)
    with pytest.raises(ValueError, match=r"Wx must have shape \(D, 3H\).*\(3, 13\)"):
        GRU(np.zeros((3, 13)), Wh, b)
    with pytest.raises(ValueError, match=r"b must have shape \(3H,\) = \(12,\)"):
        GRU(np.zeros((3, 12)), Wh, b[:4])


# --- the book's TimeGRU ----------------------------------------------------------------


def book_time_gru(params: tuple[Array, ...], xs: Array, dhs: Array, h0: Array) -> dict[str, Array]:
    """The book's TimeGRU: T cells sharing params, dh flowing back, grads summed."""
    N, T, _ = xs.shape
    H = params[1].shape[0]
    cells, h, hs = [], h0, np.empty((N, T, H))
    for t in range(T):
        cells.append(GRU(*params))
        h = cells[-1].forward(xs[:, t], h)
        hs[:, t] = h
    dxs, dh = np.empty_like(xs), np.zeros((N, H))
    grads = [np.zeros_like(p) for p in params]
    for t in reversed(range(T)):
        dx, dh = cells[t].backward(dhs[:, t] + dh)
        dxs[:, t] = dx
        for total, g in zip(grads, cells[t].grads, strict=True):
            total += g
    return {"hs": hs, "h": h, "dxs": dxs, "dWx": grads[0], "dWh": grads[1], "db": grads[2],
            "dh": dh}  # fmt: skip


@pytest.mark.parametrize("start", ["set_state", "zeros"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_book_time_gru_built_from_cells_equals_time_gru(
    rng: np.random.Generator, start: str, scale: float
) -> None:
    N, T, D, H = 3, 7, 4, 5
    params = spec.params(rng, D, H, scale=scale)
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    h0 = rng.normal(size=(N, H))
    layer = TimeGRU(*params, stateful=True)
    if start == "set_state":
        layer.set_state(h0)
    else:
        h0 = np.zeros((N, H))

    hs = layer.forward(xs)
    got = {"hs": hs, "h": layer.h, "dxs": layer.backward(dhs), "dh": layer.dh}
    got.update(zip(("dWx", "dWh", "db"), layer.grads))

    want = book_time_gru(params, xs, dhs, h0)
    for name in want:
        assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_set_state_takes_h_alone(rng: np.random.Generator) -> None:
    layer = TimeGRU(*spec.params(rng, 3, 4), stateful=True)
    with pytest.raises(TypeError):
        layer.set_state(np.zeros((2, 4)), np.zeros((2, 4)))  # type: ignore[call-arg]
    assert layer.h is None
    assert not hasattr(layer, "c") and not hasattr(layer, "dc")
