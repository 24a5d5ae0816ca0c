"""TimeRNN's hidden state: stateless vs stateful, chains, set_state/reset_state, truncated BPTT."""

from __future__ import annotations

import numpy as np
from conftest import make_params, reference_forward, reference_grads
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import TimeRNN

TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def test_stateless_forward_starts_from_zeros_every_call(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    layer = TimeRNN(*params, stateful=False)
    xs1, xs2 = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4, 3))

    hs1 = layer.forward(xs1)
    hs2 = layer.forward(xs2)

    assert_allclose(hs2, reference_forward(xs2, *params)[0], **TIGHT)
    assert_array_equal(layer.forward(xs1), hs1)


def test_stateless_layer_ignores_set_state(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    layer = TimeRNN(*params, stateful=False)
    xs = rng.normal(size=(2, 5, 3))

    layer.set_state(np.full((2, 4), 0.7))

    assert_allclose(layer.forward(xs), reference_forward(xs, *params)[0], **TIGHT)


def test_first_stateful_forward_starts_from_zeros(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    xs = rng.normal(size=(2, 5, 3))
    hs = TimeRNN(*params, stateful=True).forward(xs)
    assert_allclose(hs, reference_forward(xs, *params)[0], **TIGHT)


@settings(max_examples=50, deadline=None)
@given(
    N=st.integers(1, 5),
    D=st.integers(1, 5),
    H=st.integers(1, 5),
    Ts=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_stateful_chain_of_segments_equals_the_unrolled_sequence(
    N: int, D: int, H: int, Ts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params = make_params(rng, D, H, scale=1.0)
    xs = rng.normal(size=(N, sum(Ts), D))
    hs_full, _ = reference_forward(xs, *params)
    layer = TimeRNN(*params, stateful=True)

    start = 0
    for T in Ts:
        hs = layer.forward(xs[:, start : start + T])
        # Backward between segments must not disturb the carried state.
        layer.backward(np.ones((N, T, H)))
        assert_allclose(hs, hs_full[:, start : start + T], **TIGHT)
        assert_allclose(layer.h, hs_full[:, start + T - 1], **TIGHT)
        start += T


def test_truncated_backward_differentiates_only_the_last_segment(
    rng: np.random.Generator,
) -> None:
    """Segment 2 starts from segment 1's final state, taken as a constant.

    dh is the gradient with respect to that state.
    """
    params = make_params(rng, 3, 4, scale=1.0)
    xs1, xs2 = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 4, 3))
    dhs2 = rng.normal(size=(2, 4, 4))
    layer = TimeRNN(*params, stateful=True)
    layer.forward(xs1)
    h1 = layer.h.copy()

    layer.forward(xs2)
    dxs2 = layer.backward(dhs2)

    fd = reference_grads(xs2, *params, h1, dhs2)
    assert_allclose(dxs2, fd["dxs"], rtol=1e-5, atol=1e-7)
    for got, name in zip(layer.grads, ("dWx", "dWh", "db"), strict=True):
        assert_allclose(got, fd[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert_allclose(layer.dh, fd["dh"], rtol=1e-5, atol=1e-7)


def test_set_state_starts_the_next_stateful_forward_from_that_state(
    rng: np.random.Generator,
) -> None:
    params = make_params(rng, 3, 4)
    layer = TimeRNN(*params, stateful=True)
    layer.forward(rng.normal(size=(1, 5, 3)))  # carried state of batch size 1
    h0 = rng.uniform(-0.9, 0.9, size=(3, 4))
    xs = rng.normal(size=(3, 5, 3))

    layer.set_state(h0)

    assert_allclose(layer.h, h0, **TIGHT)
    hs_ref, h_ref = reference_forward(xs, *params, h0)
    assert_allclose(layer.forward(xs), hs_ref, **TIGHT)
    assert_allclose(layer.h, h_ref, **TIGHT)


def test_reset_state_starts_the_next_forward_from_zeros(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    layer = TimeRNN(*params, stateful=True)
    layer.set_state(np.full((2, 4), 0.5))
    layer.forward(rng.normal(size=(2, 5, 3)))
    xs = rng.normal(size=(4, 3, 3))  # a new batch size is fine after a reset

    layer.reset_state()

    assert layer.h is None
    assert_allclose(layer.forward(xs), reference_forward(xs, *params)[0], **TIGHT)


def test_backward_twice_gives_identical_results(rng: np.random.Generator) -> None:
    layer = TimeRNN(*make_params(rng, 3, 4), stateful=True)
    layer.set_state(rng.normal(size=(2, 4)))
    layer.forward(rng.normal(size=(2, 5, 3)))
    dhs = rng.normal(size=(2, 5, 4))

    dxs1 = layer.backward(dhs)
    grads1 = [g.copy() for g in layer.grads]
    dh1 = layer.dh.copy()
    dxs2 = layer.backward(dhs)

    assert_array_equal(dxs2, dxs1)
    for g, g1 in zip(layer.grads, grads1, strict=True):
        assert_array_equal(g, g1)  # overwritten, not accumulated
    assert_array_equal(layer.dh, dh1)


def test_backward_overwrites_grads_of_the_previous_backward(rng: np.random.Generator) -> None:
    params = make_params(rng, 3, 4)
    xs = rng.normal(size=(2, 5, 3))
    dhs_a, dhs_b = rng.normal(size=(2, 2, 5, 4))
    fresh = TimeRNN(*params)
    fresh.forward(xs)
    dxs_b = fresh.backward(dhs_b)
    layer = TimeRNN(*params)
    layer.forward(xs)

    layer.backward(dhs_a)
    got = layer.backward(dhs_b)

    assert_array_equal(got, dxs_b)
    for g, want in zip(layer.grads, fresh.grads, strict=True):
        assert_array_equal(g, want)
    assert_array_equal(layer.dh, fresh.dh)


def test_grads_of_a_new_batch_do_not_include_the_previous_batch(
    rng: np.random.Generator,
) -> None:
    params = make_params(rng, 3, 4)
    xs_a, xs_b = rng.normal(size=(2, 2, 5, 3))
    dhs_a, dhs_b = rng.normal(size=(2, 2, 5, 4))
    layer = TimeRNN(*params)
    layer.forward(xs_a)
    layer.backward(dhs_a)

    layer.forward(xs_b)
    layer.backward(dhs_b)

    fd = reference_grads(xs_b, *params, np.zeros((2, 4)), dhs_b)
    for got, name in zip(layer.grads, ("dWx", "dWh", "db"), strict=True):
        assert_allclose(got, fd[name], rtol=1e-5, atol=1e-7, err_msg=name)
