"""TimeRNN's object protocol: params/grads identity, untouched inputs, independent outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import make_params, reference_forward
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import TimeRNN

DTYPES = [np.float32, np.float64]


def read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def test_params_are_the_very_arrays_passed_in(rng: np.random.Generator) -> None:
    Wx, Wh, b = make_params(rng, 3, 4)
    layer = TimeRNN(Wx, Wh, b)
    assert layer.params[0] is Wx and layer.params[1] is Wh and layer.params[2] is b

    layer.forward(rng.normal(size=(2, 5, 3)))
    layer.backward(rng.normal(size=(2, 5, 4)))

    assert layer.params[0] is Wx and layer.params[1] is Wh and layer.params[2] is b


def test_forward_and_backward_leave_params_values_alone(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    before = [p.copy() for p in params]
    layer = TimeRNN(*params, stateful=True)
    layer.forward(rng.normal(size=(2, 5, 3)))
    layer.backward(rng.normal(size=(2, 5, 4)))
    for p, p0 in zip(params, before, strict=True):
        assert_array_equal(p, p0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_are_allocated_once_with_the_params_shapes_and_dtype(
    rng: np.random.Generator, dtype: Any
) -> None:
    params = make_params(rng, 3, 4, dtype)
    layer = TimeRNN(*params, stateful=True)
    grads = list(layer.grads)
    assert [(g.shape, g.dtype) for g in grads] == [(p.shape, p.dtype) for p in params]
    assert all(g is not p for g, p in zip(grads, params, strict=True))

    for N, T in [(2, 5), (2, 1), (1, 3), (4, 2), (4, 6)]:
        layer.reset_state()
        layer.forward(rng.normal(size=(N, T, 3)))
        layer.backward(rng.normal(size=(N, T, 4)))
        layer.set_state(rng.normal(size=(N, 4)))

    assert all(g is g0 for g, g0 in zip(layer.grads, grads, strict=True))
    assert len(layer.grads) == 3


def test_grads_list_taken_once_sees_every_backward(rng: np.random.Generator) -> None:
    """A book-style model collects `grads` once; every later backward must land there."""
    layer = TimeRNN(*make_params(rng, 3, 4))
    grads = layer.grads[:]
    for _ in range(3):
        layer.forward(rng.normal(size=(2, 5, 3)))
        layer.backward(rng.normal(size=(2, 5, 4)))
        fresh = [g.copy() for g in layer.grads]
        for g, f in zip(grads, fresh, strict=True):
            assert_array_equal(g, f)
    assert any(np.any(g != 0) for g in grads)


def test_in_place_optimizer_updates_reach_the_layer(rng: np.random.Generator) -> None:
    Wx, Wh, b = make_params(rng, 3, 4)
    layer = TimeRNN(Wx, Wh, b)
    xs = rng.normal(size=(2, 5, 3))
    hs_before = layer.forward(xs)
    layer.backward(rng.normal(size=(2, 5, 4)))

    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.5 * g  # the book's SGD

    hs_after = layer.forward(xs)
    assert not np.allclose(hs_after, hs_before)
    assert_allclose(hs_after, reference_forward(xs, Wx, Wh, b)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_backward_and_set_state_never_write_to_their_arguments(
    rng: np.random.Generator, dtype: Any
) -> None:
    # Read-only arrays make any write raise; the copies catch writes through other routes.
    layer = TimeRNN(*make_params(rng, 3, 4, dtype), stateful=True)
    h0 = read_only(rng.normal(size=(2, 4)).astype(dtype))
    xs = read_only(rng.normal(size=(2, 5, 3)).astype(dtype))
    dhs = read_only(rng.normal(size=(2, 5, 4)).astype(dtype))
    copies = [h0.copy(), xs.copy(), dhs.copy()]

    layer.set_state(h0)
    layer.forward(xs)
    layer.backward(dhs)
    layer.backward(dhs)
    layer.forward(xs)

    for a, a0 in zip((h0, xs, dhs), copies, strict=True):
        assert_array_equal(a, a0)


def test_set_state_keeps_its_own_copy(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    layer = TimeRNN(*params, stateful=True)
    h0 = rng.uniform(-0.9, 0.9, size=(2, 4))
    want = h0.copy()
    xs = rng.normal(size=(2, 5, 3))

    layer.set_state(h0)
    h0[...] = 5.0

    assert_array_equal(layer.h, want)
    assert_allclose(layer.forward(xs), reference_forward(xs, *params, want)[0], rtol=1e-12)


def test_forward_does_not_write_to_the_array_given_to_set_state(
    rng: np.random.Generator,
) -> None:
    layer = TimeRNN(*make_params(rng, 3, 4), stateful=True)
    h0 = rng.normal(size=(2, 4))
    h0_copy = h0.copy()
    layer.set_state(h0)
    state = layer.h
    layer.forward(rng.normal(size=(2, 5, 3)))
    assert_array_equal(h0, h0_copy)
    assert_array_equal(state, h0_copy)  # the state array the layer handed out is not reused


def _twins(rng: np.random.Generator, dtype: Any) -> tuple[TimeRNN, TimeRNN, np.ndarray, np.ndarray]:
    params = make_params(rng, 3, 4, dtype)
    a = TimeRNN(*(p.copy() for p in params), stateful=True)
    b = TimeRNN(*(p.copy() for p in params), stateful=True)
    xs = rng.normal(size=(2, 5, 3)).astype(dtype)
    dhs = rng.normal(size=(2, 5, 4)).astype(dtype)
    return a, b, xs, dhs


def _assert_same_layer_outputs(a: TimeRNN, b: TimeRNN) -> None:
    assert_array_equal(a.h, b.h)
    for ga, gb in zip(a.grads, b.grads, strict=True):
        assert_array_equal(ga, gb)
    if b.dh is not None:
        assert_array_equal(a.dh, b.dh)


@pytest.mark.parametrize("dtype", DTYPES)
def test_editing_returned_hs_and_h_changes_nothing_else(
    rng: np.random.Generator, dtype: Any
) -> None:
    edited, clean, xs, dhs = _twins(rng, dtype)
    hs = edited.forward(xs)
    clean.forward(xs)
    h_before = edited.h.copy()

    hs[...] = 7.0
    assert_array_equal(edited.h, h_before)  # h is not a view of hs
    h = edited.h
    h[...] = -3.0
    assert_array_equal(hs, 7.0)  # hs is not a view of h

    # backward reads its own copies of what forward computed.
    assert_array_equal(edited.backward(dhs), clean.backward(dhs))
    for ga, gb in zip(edited.grads, clean.grads, strict=True):
        assert_array_equal(ga, gb)


@pytest.mark.parametrize("dtype", DTYPES)
def test_editing_returned_dxs_and_dh_changes_nothing_else(
    rng: np.random.Generator, dtype: Any
) -> None:
    edited, clean, xs, dhs = _twins(rng, dtype)
    edited.forward(xs)
    clean.forward(xs)
    dxs = edited.backward(dhs)
    clean_dxs = clean.backward(dhs)

    dxs[...] = 7.0
    dh = edited.dh
    dh[...] = -3.0

    assert_array_equal(dxs, 7.0)  # dxs is not a view of dh
    for ga, gb in zip(edited.grads, clean.grads, strict=True):
        assert_array_equal(ga, gb)
    assert_array_equal(edited.backward(dhs), clean_dxs)
    assert_array_equal(edited.dh, clean.dh)
    # ...and the carried state is untouched, so the next segment matches too.
    assert_array_equal(edited.forward(xs), clean.forward(xs))
    _assert_same_layer_outputs(edited, clean)


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_array_it_returned_never_changes_later(rng: np.random.Generator, dtype: Any) -> None:
    layer = TimeRNN(*make_params(rng, 3, 4, dtype), stateful=True)
    xs = rng.normal(size=(2, 5, 3)).astype(dtype)
    dhs = rng.normal(size=(2, 5, 4)).astype(dtype)
    hs = layer.forward(xs)
    h = layer.h
    dxs = layer.backward(dhs)
    dh = layer.dh
    kept = [(a, a.copy()) for a in (hs, h, dxs, dh)]

    # Same shapes again (where reused buffers would show), then other calls.
    for _ in range(2):
        layer.forward(xs * 2)
        layer.backward(dhs * 3)
    layer.set_state(np.ones((2, 4), dtype=dtype))
    layer.forward(xs)
    layer.backward(-dhs)
    layer.reset_state()
    layer.forward(xs[:1, :2])
    layer.backward(dhs[:1, :2])

    for a, a0 in kept:
        assert_array_equal(a, a0)


def test_backward_does_not_change_the_carried_state_or_h(rng: np.random.Generator) -> None:
    layer = TimeRNN(*make_params(rng, 3, 4), stateful=True)
    layer.forward(rng.normal(size=(2, 5, 3)))
    h = layer.h
    h_copy = h.copy()
    layer.backward(rng.normal(size=(2, 5, 4)))
    assert layer.h is h
    assert_array_equal(layer.h, h_copy)
