"""The single step RNN: numbers, grads in place, and the book's TimeRNN built from it.

Its bad-input tests live in test_errors.py with TimeRNN's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import make_params, numerical_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import RNN, TimeRNN

sizes = st.integers(min_value=1, max_value=6)


@settings(max_examples=60, deadline=None)
@given(N=sizes, D=sizes, H=sizes, seed=st.integers(0, 2**32 - 1))
def test_step_matches_the_formula_and_finite_differences(N: int, D: int, H: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Wx, Wh, b = make_params(rng, D, H, scale=1.0)
    x, h_prev, dh_next = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    cell = RNN(Wx, Wh, b)

    h_next = cell.forward(x, h_prev)
    dx, dh_prev = cell.backward(dh_next)

    assert_allclose(h_next, np.tanh(h_prev @ Wh + x @ Wx + b), rtol=1e-12, atol=1e-12)
    Wx, Wh, b, x, h_prev = (a.copy() for a in (Wx, Wh, b, x, h_prev))  # perturbed below

    def loss() -> float:
        return float(np.sum(np.tanh(h_prev @ Wh + x @ Wx + b) * dh_next))

    got = {"dx": dx, "dh_prev": dh_prev, "dWx": cell.grads[0], "dWh": cell.grads[1]}
    got["db"] = cell.grads[2]
    want = {"dx": x, "dh_prev": h_prev, "dWx": Wx, "dWh": Wh, "db": b}
    for name, wrt in want.items():
        assert got[name].shape == wrt.shape, name
        assert_allclose(got[name], numerical_grad(loss, wrt), rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_computes_in_the_params_dtype(rng: np.random.Generator, dtype: Any) -> None:
    cell = RNN(*make_params(rng, 3, 4, dtype))
    h = cell.forward(rng.normal(size=(2, 3)), rng.normal(size=(2, 4)))
    dx, dh_prev = cell.backward(rng.normal(size=(2, 4)))
    for arr in (h, dx, dh_prev, *cell.grads):
        assert arr.dtype == dtype


def test_params_are_the_arrays_passed_in_and_grads_are_overwritten_in_place(
    rng: np.random.Generator,
) -> None:
    Wx, Wh, b = make_params(rng, 3, 4)
    cell = RNN(Wx, Wh, b)
    grads = list(cell.grads)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    dh_a, dh_b = rng.normal(size=(2, 2, 4))
    fresh = RNN(Wx, Wh, b)
    fresh.forward(x, h)
    fresh.backward(dh_b)

    cell.forward(x, h)
    cell.backward(dh_a)
    cell.backward(dh_b)

    assert cell.params[0] is Wx and cell.params[1] is Wh and cell.params[2] is b
    assert all(g is g0 for g, g0 in zip(cell.grads, grads, strict=True))
    for g, want in zip(cell.grads, fresh.grads, strict=True):
        assert_array_equal(g, want)  # the second backward replaced the first, no sum


def test_step_never_writes_to_its_arguments(rng: np.random.Generator) -> None:
    cell = RNN(*make_params(rng, 3, 4))
    args = [rng.normal(size=s) for s in ((2, 3), (2, 4), (2, 4))]
    for a in args:
        a.flags.writeable = False
    cell.forward(args[0], args[1])
    cell.backward(args[2])  # a write to any of them would have raised


def test_editing_returned_arrays_changes_nothing_else(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    x, h, dh = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    clean = RNN(*params)
    clean.forward(x, h)
    want_dx, want_dh_prev = clean.backward(dh)
    cell = RNN(*params)

    h_next = cell.forward(x, h)
    h_next[...] = 0.0  # backward must use its own copy of h_next
    dx, dh_prev = cell.backward(dh)
    dx[...] = 1.0
    dh_prev[...] = 2.0

    for g, want in zip(cell.grads, clean.grads, strict=True):
        assert_array_equal(g, want)
    again_dx, again_dh_prev = cell.backward(dh)
    assert_array_equal(again_dx, want_dx)
    assert_array_equal(again_dh_prev, want_dh_prev)
    assert_array_equal(dx, 1.0)


def test_book_time_rnn_built_from_cells_equals_time_rnn(rng: np.random.Generator) -> None:
    """The book's TimeRNN: T cells sharing params, dh flowing back, grads summed."""
    params = make_params(rng, 3, 4, scale=1.0)
    N, T = 2, 6
    xs, dhs = rng.normal(size=(N, T, 3)), rng.normal(size=(N, T, 4))
    h0 = rng.normal(size=(N, 4))
    layer = TimeRNN(*params, stateful=True)
    layer.set_state(h0)
    hs = layer.forward(xs)
    dxs = layer.backward(dhs)

    cells, h, book_hs = [], h0, np.empty((N, T, 4))
    for t in range(T):
        cells.append(RNN(*params))
        h = cells[-1].forward(xs[:, t], h)
        book_hs[:, t] = h
    book_dxs, dh = np.empty((N, T, 3)), np.zeros((N, 4))
    book_grads = [np.zeros_like(p) for p in params]
    for t in reversed(range(T)):
        dx, dh = cells[t].backward(dhs[:, t] + dh)
        book_dxs[:, t] = dx
        for total, g in zip(book_grads, cells[t].grads, strict=True):
            total += g

    assert_allclose(hs, book_hs, rtol=1e-12, atol=1e-12)
    assert_allclose(layer.h, h, rtol=1e-12, atol=1e-12)
    assert_allclose(dxs, book_dxs, rtol=1e-10, atol=1e-12)
    for g, want in zip(layer.grads, book_grads, strict=True):
        assert_allclose(g, want, rtol=1e-10, atol=1e-12)
    assert_allclose(layer.dh, dh, rtol=1e-10, atol=1e-12)
