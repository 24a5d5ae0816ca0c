"""The LSTM: the one-step cell, the book's TimeLSTM built from it, and the cell state c.

The contract TimeLSTM shares with TimeGRU and TimeRNN (numbers against the formulas
and finite differences, dtypes, errors, aliasing, failures part-way, copies) is tested
in test_gated_contract.py, on both layers.
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
from test_gated_contract import (
    FD_TOL,
    LSTM_SPEC,
    TIGHT,
    numerical_grad,
    reference_lstm,
    sigma,
)

from handrnn import LSTM, TimeLSTM

Array = np.ndarray
spec = LSTM_SPEC
sizes = st.integers(min_value=1, max_value=5)


def lstm_step(x: Array, h: Array, c: Array, Wx: Array, Wh: Array, b: Array) -> tuple[Array, Array]:
    """The book's formulas for one step, in float64."""
    H = Wh.shape[0]
    A = x @ Wx + h @ Wh + b
    f, g = sigma(A[:, :H]), np.tanh(A[:, H : 2 * H])
    i, o = sigma(A[:, 2 * H : 3 * H]), sigma(A[:, 3 * H :])
    c_next = f * c + g * i
    return o * np.tanh(c_next), c_next


# --- the cell --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(N=sizes, D=sizes, H=sizes, seed=st.integers(0, 2**32 - 1))
def test_cell_matches_the_formulas_and_finite_differences(
    N: int, D: int, H: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    Wx, Wh, b = spec.params(rng, D, H, scale=1.0)
    x, h, c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    dh_next, dc_next = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    cell = LSTM(Wx, Wh, b)

    h_next, c_next = cell.forward(x, h, c)
    dx, dh_prev, dc_prev = cell.backward(dh_next, dc_next)

    want_h, want_c = lstm_step(x, h, c, Wx, Wh, b)
    assert_allclose(h_next, want_h, **TIGHT)
    assert_allclose(c_next, want_c, **TIGHT)
    Wx, Wh, b, x, h, c = (a.copy() for a in (Wx, Wh, b, x, h, c))  # perturbed below

    def loss() -> float:
        h_n, c_n = lstm_step(x, h, c, Wx, Wh, b)
        return float(np.sum(h_n * dh_next) + np.sum(c_n * dc_next))

    got = {"dx": dx, "dh_prev": dh_prev, "dc_prev": dc_prev}
    got.update(zip(("dWx", "dWh", "db"), cell.grads))
    wrt = {"dx": x, "dh_prev": h, "dc_prev": c, "dWx": Wx, "dWh": Wh, "db": b}
    for name, arr in wrt.items():
        assert got[name].shape == arr.shape, name
        assert_allclose(got[name], numerical_grad(loss, arr), **FD_TOL, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_computes_in_the_params_dtype(rng: np.random.Generator, dtype: Any) -> None:
    cell = LSTM(*spec.params(rng, 3, 4, dtype))
    outs = cell.forward(rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), np.zeros((2, 4), int))
    outs += cell.backward(rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    for arr in (*outs, *cell.grads):
        assert arr.dtype == dtype


def test_cell_params_are_the_arrays_passed_in_and_grads_are_overwritten_in_place(
    rng: np.random.Generator,
) -> None:
    Wx, Wh, b = spec.params(rng, 3, 4)
    cell = LSTM(Wx, Wh, b)
    grads = list(cell.grads)
    args = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    douts_a, douts_b = rng.normal(size=(2, 2, 2, 4))
    fresh = LSTM(Wx, Wh, b)
    fresh.forward(*args)
    fresh.backward(*douts_b)

    cell.forward(*args)
    cell.backward(*douts_a)
    cell.backward(*douts_b)

    assert cell.params[0] is Wx and cell.params[1] is Wh and cell.params[2] is b
    assert all(g is g0 for g, g0 in zip(cell.grads, grads, strict=True))
    for g, want in zip(cell.grads, fresh.grads, strict=True):
        assert_array_equal(g, want)  # the second backward replaced the first, no sum


def test_cell_never_writes_to_its_arguments(rng: np.random.Generator) -> None:
    cell = LSTM(*spec.params(rng, 3, 4))
    args = [rng.normal(size=s) for s in ((2, 3), (2, 4), (2, 4), (2, 4), (2, 4))]
    for a in args:
        a.flags.writeable = False
    cell.forward(*args[:3])
    cell.backward(*args[3:])  # a write to any of them would have raised


def test_cell_editing_returned_arrays_changes_nothing_else(rng: np.random.Generator) -> None:
    params = spec.params(rng, 3, 4)
    args = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    douts = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    clean = LSTM(*params)
    clean.forward(*args)
    want = clean.backward(*douts)
    cell = LSTM(*params)

    for out in cell.forward(*args):
        out[...] = 0.0  # backward must use its own arrays
    got = cell.backward(*douts)
    for out in got:
        out[...] = 1.0

    for g, g0 in zip(cell.grads, clean.grads, strict=True):
        assert_array_equal(g, g0)
    for again, w in zip(cell.backward(*douts), want, strict=True):
        assert_array_equal(again, w)
    for out in got:
        assert_array_equal(out, 1.0)  # dx, dh_prev and dc_prev are not views of each other


CELL_BAD_CALLS: dict[str, tuple[Callable[[LSTM], object], type[Exception], tuple[str, ...]]] = {
    "x 1-D": (lambda c: c.forward(np.zeros(3), np.zeros((2, 4)), np.zeros((2, 4))), ValueError,
              ("x", "(3,)", "(N, D=3)")),
    "x wrong D": (lambda c: c.forward(np.zeros((2, 5)), np.zeros((2, 4)), np.zeros((2, 4))),
                  ValueError, ("x", "(2, 5)", "D=3")),
    "h_prev wrong N": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((1, 4)), np.zeros((2, 4))),
                       ValueError, ("h_prev", "(1, 4)", "(N=2, H=4)")),
    "c_prev wrong N": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((1, 4))),
                       ValueError, ("c_prev", "(1, 4)", "(N=2, H=4)")),
    "c_prev wrong H": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 3))),
                       ValueError, ("c_prev", "(2, 3)", "H=4")),
    "c_prev complex": (lambda c: c.forward(np.zeros((2, 3)), np.zeros((2, 4)),
                                           np.zeros((2, 4), complex)), TypeError,
                       ("c_prev", "complex")),
    "dh_next wrong N": (lambda c: c.backward(np.zeros((1, 4)), np.zeros((2, 4))), ValueError,
                        ("dh_next", "(1, 4)", "(N=2, H=4)")),
    "dc_next wrong H": (lambda c: c.backward(np.zeros((2, 4)), np.zeros((2, 5))), ValueError,
                        ("dc_next", "(2, 5)", "(N=2, H=4)")),
    "dc_next None": (lambda c: c.backward(np.zeros((2, 4)), None), TypeError,
                     ("dc_next", "NoneType")),
}  # fmt: skip


@pytest.mark.parametrize(("call", "exc_type", "parts"), CELL_BAD_CALLS.values(),
                         ids=CELL_BAD_CALLS.keys())  # fmt: skip
def test_cell_bad_call_raises_and_changes_nothing(
    rng: np.random.Generator,
    call: Callable[[LSTM], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
) -> None:
    cell = LSTM(*spec.params(rng, 3, 4))
    args = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    douts = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    cell.forward(*args)
    cell.backward(*douts)
    twin = copy.deepcopy(cell)

    with pytest.raises(exc_type) as info:
        call(cell)

    for part in parts:
        assert part in str(info.value), f"{part!r} not in {str(info.value)!r}"
    for mine, theirs in [(cell.backward(*douts), twin.backward(*douts)),
                         (cell.forward(*args), twin.forward(*args))]:  # fmt: skip
        for a, b in zip(mine, theirs, strict=True):
            assert_array_equal(a, b)
    for g, g0 in zip(cell.grads, twin.grads, strict=True):
        assert_array_equal(g, g0)


def test_cell_backward_before_forward_is_a_runtime_error(rng: np.random.Generator) -> None:
    cell = LSTM(*spec.params(rng, 3, 4))
    with pytest.raises(RuntimeError, match=r"LSTM.backward\(\) called before forward\(\)"):
        cell.backward(np.zeros((2, 4)), np.zeros((2, 4)))


def test_cell_refuses_params_that_are_not_four_gate_blocks(rng: np.random.Generator) -> None:
    _, Wh, b = spec.params(rng, 3, 4)
    with pytest.raises(ValueError, match=r"Wx must have shape \(D, 4H\).*\(3, 5\)"):
        LSTM(np.zeros((3, 5)), Wh, b)


# --- the book's TimeLSTM ---------------------------------------------------------------


def book_time_lstm(
    params: tuple[Array, ...], xs: Array, dhs: Array, h0: Array, c0: Array
) -> dict[str, Array]:
    """The book's TimeLSTM: T cells sharing params, dh and dc flowing back, grads summed.

    The gradient coming into the last step is dhs[:, -1] for h and 0 for c.
    """
    N, T, _ = xs.shape
    H = params[1].shape[0]
    cells, h, c, hs = [], h0, c0, np.empty((N, T, H))
    for t in range(T):
        cells.append(LSTM(*params))
        h, c = cells[-1].forward(xs[:, t], h, c)
        hs[:, t] = h
    dxs, dh, dc = np.empty_like(xs), np.zeros((N, H)), np.zeros((N, H))
    grads = [np.zeros_like(p) for p in params]
    for t in reversed(range(T)):
        dx, dh, dc = cells[t].backward(dhs[:, t] + dh, dc)
        dxs[:, t] = dx
        for total, g in zip(grads, cells[t].grads, strict=True):
            total += g
    return {"hs": hs, "h": h, "c": c, "dxs": dxs, "dWx": grads[0], "dWh": grads[1],
            "db": grads[2], "dh": dh, "dc": dc}  # fmt: skip


@pytest.mark.parametrize("start", ["set_state", "zeros"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_the_book_time_lstm_built_from_cells_equals_time_lstm(
    rng: np.random.Generator, start: str, scale: float
) -> None:
    N, T, D, H = 3, 7, 4, 5
    params = spec.params(rng, D, H, scale=scale)
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    h0, c0 = (rng.normal(size=(N, H)) for _ in range(2))
    layer = TimeLSTM(*params, stateful=True)
    if start == "set_state":
        layer.set_state(h0, c0)
    else:
        h0, c0 = np.zeros((N, H)), np.zeros((N, H))

    hs = layer.forward(xs)
    got = {"hs": hs, "h": layer.h, "c": layer.c, "dxs": layer.backward(dhs), "dh": layer.dh,
           "dc": layer.dc}  # fmt: skip
    got.update(zip(("dWx", "dWh", "db"), layer.grads))

    want = book_time_lstm(params, xs, dhs, h0, c0)
    for name in want:
        assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


# --- the cell state c ------------------------------------------------------------------


def test_set_state_with_h_only_starts_c_from_zeros(rng: np.random.Generator) -> None:
    params = spec.params(rng, 3, 4)
    layer = TimeLSTM(*params, stateful=True)
    layer.set_state(rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    h0 = rng.normal(size=(2, 4))
    xs = rng.normal(size=(2, 5, 3))

    layer.set_state(h0)  # replaces the c given before, too

    assert layer.c is None
    hs_ref, (h_ref, c_ref) = reference_lstm(xs, *params, h0, np.zeros((2, 4)))
    assert_allclose(layer.forward(xs), hs_ref, **TIGHT)
    assert_allclose(layer.h, h_ref, **TIGHT)
    assert_allclose(layer.c, c_ref, **TIGHT)


def test_c_is_carried_on_its_own_account(rng: np.random.Generator) -> None:
    """Two stateful layers given the same h but different c give different segments, each
    the one that starts from its (h, c); the next segments start from the carried pairs."""
    params = spec.params(rng, 3, 4, scale=1.0)
    h0 = rng.normal(size=(2, 4))
    xs1, xs2 = rng.normal(size=(2, 2, 5, 3))
    for c0 in (np.zeros((2, 4)), np.full((2, 4), 2.0)):
        layer = TimeLSTM(*params, stateful=True)
        layer.set_state(h0, c0)
        hs1 = layer.forward(xs1)
        hs2 = layer.forward(xs2)
        hs_ref, _ = reference_lstm(np.concatenate([xs1, xs2], axis=1), *params, h0, c0)
        assert_allclose(np.concatenate([hs1, hs2], axis=1), hs_ref, **TIGHT)
    assert not np.allclose(reference_lstm(xs1, *params, h0, c0)[0],
                           reference_lstm(xs1, *params, h0, 0 * c0)[0])  # fmt: skip


@pytest.mark.parametrize(
    ("h", "c", "parts"),
    [
        ((2, 4), (3, 4), ("c", "(3, 4)", "(N=2, H=4)")),
        ((2, 4), (2, 5), ("c", "(2, 5)", "H=4")),
        ((2, 4), (4,), ("c", "(4,)", "(N=2, H=4)")),
        ((2, 5), (2, 4), ("h", "(2, 5)", "H=4")),
    ],
)
def test_set_state_checks_h_and_c_before_changing_either(
    rng: np.random.Generator, h: tuple[int, ...], c: tuple[int, ...], parts: tuple[str, ...]
) -> None:
    layer = TimeLSTM(*spec.params(rng, 3, 4), stateful=True)
    layer.set_state(rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    h0, c0 = layer.h, layer.c
    with pytest.raises(ValueError) as info:
        layer.set_state(np.zeros(h), np.zeros(c))
    for part in parts:
        assert part in str(info.value)
    assert layer.h is h0 and layer.c is c0


def test_a_carried_c_of_another_batch_size_is_refused(rng: np.random.Generator) -> None:
    """c is checked on its own: here h is None (zeros) and c was set by hand."""
    layer = TimeLSTM(*spec.params(rng, 3, 4), stateful=True)
    layer.c = np.ones((1, 4))
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros((2, 5, 3)))
    for part in ("carried state c", "(1, 4)", "N=2"):
        assert part in str(info.value)
    assert layer.h is None and layer._cache is None


def test_dc_is_the_gradient_with_respect_to_the_initial_cell_state(
    rng: np.random.Generator,
) -> None:
    params = spec.params(rng, 3, 4, scale=1.0)
    xs, dhs = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    h0, c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    layer = TimeLSTM(*params, stateful=True)
    layer.set_state(h0, c0)
    layer.forward(xs)
    layer.backward(dhs)

    def loss() -> float:
        return float(np.sum(reference_lstm(xs, *params, h0, c0)[0] * dhs))

    assert layer.dc.shape == (2, 4)
    assert_allclose(layer.dc, numerical_grad(loss, c0), **FD_TOL)
    assert_allclose(layer.dh, numerical_grad(loss, h0), **FD_TOL)


@pytest.mark.parametrize("steps_per_chunk", [1, 2, 3, 7])
def test_backward_in_chunks_of_steps_gives_the_same_numbers(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, steps_per_chunk: int
) -> None:
    """Backward computes its local derivatives a chunk of steps at a time (a chunk fits the
    CPU cache); the small shapes of the other tests fit one chunk. Here T = 7 is cut into
    chunks of 1, 2 (and a last one of 1), 3 (and 1) and 7 steps."""
    N, T, D, H = 2, 7, 3, 4
    params = spec.params(rng, D, H, scale=1.0)
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    h0, c0 = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    one_step = N * 4 * H * 8  # bytes of one step's gates in float64
    monkeypatch.setattr("handrnn.lstm._CHUNK_BYTES", steps_per_chunk * one_step)
    layer = TimeLSTM(*params, stateful=True)
    layer.set_state(h0, c0)
    layer.forward(xs)
    got = {"dxs": layer.backward(dhs), "dh": layer.dh, "dc": layer.dc}
    got.update(zip(("dWx", "dWh", "db"), layer.grads))

    want = book_time_lstm(params, xs, dhs, h0, c0)
    for name in got:
        assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)
