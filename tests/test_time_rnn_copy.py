"""copy.copy and copy.deepcopy of a TimeRNN: two layers that never change each other's results.

A shallow copy shares the parameter arrays (in a list of its own), as two layers built
from the same Wx, Wh, b do; everything a layer writes or carries (grads, h, dh, what
backward needs from the last forward, its work buffers) is its own. A deep copy shares
nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import make_params, reference_forward
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import TimeRNN

N, T, D, H = 3, 5, 4, 6
COPIES: dict[str, Callable[[Any], Any]] = {"copy": copy.copy, "deepcopy": copy.deepcopy}
how = pytest.mark.parametrize("how", COPIES.values(), ids=COPIES.keys())
stateful = pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])


def layer_mid_batch(rng: np.random.Generator, stateful: bool) -> TimeRNN:
    """A layer that has run forward + backward once and then forward again: every buffer
    allocated, grads non-zero, a cache waiting for its backward."""
    layer = TimeRNN(*make_params(rng, D, H), stateful=stateful)
    layer.set_state(rng.normal(size=(N, H)))
    layer.forward(rng.normal(size=(N, T, D)))
    layer.backward(rng.normal(size=(N, T, H)))
    layer.forward(rng.normal(size=(N, T, D)))
    return layer


def results(layer: TimeRNN, dhs: np.ndarray) -> dict[str, Any]:
    """What the layer's backward gives now, and its state; all copied."""
    dxs = layer.backward(dhs)
    return {
        "dxs": dxs,
        "grads": [g.copy() for g in layer.grads],
        "dh": layer.dh.copy(),
        "h": layer.h.copy(),
    }


def assert_results(layer: TimeRNN, dhs: np.ndarray, want: dict[str, Any]) -> None:
    assert_array_equal(layer.h, want["h"])
    for g, g0 in zip(layer.grads, want["grads"], strict=True):
        assert_array_equal(g, g0)  # nothing the other layer did landed in our grads
    got = results(layer, dhs)
    assert_array_equal(got["dxs"], want["dxs"])
    for g, g0 in zip(got["grads"], want["grads"], strict=True):
        assert_array_equal(g, g0)
    assert_array_equal(got["dh"], want["dh"])
    assert_array_equal(got["h"], want["h"])


def run_other_batches(layer: TimeRNN, rng: np.random.Generator) -> None:
    """Batches of the same shape (where shared buffers would be overwritten), then others."""
    for _ in range(2):
        layer.forward(rng.normal(size=(N, T, D)))
        layer.backward(rng.normal(size=(N, T, H)))
    layer.set_state(rng.normal(size=(N + 1, H)))
    layer.forward(rng.normal(size=(N + 1, T + 2, D)))
    layer.backward(rng.normal(size=(N + 1, T + 2, H)))


@how
@stateful
def test_running_the_copy_does_not_change_the_original(
    rng: np.random.Generator, how: Callable[[Any], Any], stateful: bool
) -> None:
    layer = layer_mid_batch(rng, stateful)
    dhs = rng.normal(size=(N, T, H))
    want = results(layer, dhs)

    dup = how(layer)
    run_other_batches(dup, rng)

    assert_results(layer, dhs, want)


@how
@stateful
def test_running_the_original_does_not_change_the_copy(
    rng: np.random.Generator, how: Callable[[Any], Any], stateful: bool
) -> None:
    """The copy holds the original's last forward and can take its backward."""
    layer = layer_mid_batch(rng, stateful)
    dhs = rng.normal(size=(N, T, H))
    want = results(layer, dhs)

    dup = how(layer)
    run_other_batches(layer, rng)

    assert_results(dup, dhs, want)


@how
@stateful
def test_the_copy_continues_where_the_original_is(
    rng: np.random.Generator, how: Callable[[Any], Any], stateful: bool
) -> None:
    layer = layer_mid_batch(rng, stateful)
    h0 = layer.h.copy()
    dup = how(layer)
    assert dup.stateful is layer.stateful
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))

    hs = dup.forward(xs)
    dxs = dup.backward(dhs)

    assert_allclose(hs, reference_forward(xs, *layer.params, h0 if stateful else None)[0], 1e-12)
    assert_array_equal(hs, layer.forward(xs))
    assert_array_equal(dxs, layer.backward(dhs))
    for g, g0 in zip(dup.grads, layer.grads, strict=True):
        assert_array_equal(g, g0)
    assert_array_equal(dup.h, layer.h)
    assert_array_equal(dup.dh, layer.dh)


@how
def test_a_copy_of_a_new_layer_works_on_its_own(
    rng: np.random.Generator, how: Callable[[Any], Any]
) -> None:
    layer = TimeRNN(*make_params(rng, D, H), stateful=True)
    dup = how(layer)
    for one in (layer, dup):
        with pytest.raises(RuntimeError, match="before forward"):
            one.backward(np.zeros((N, T, H)))
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    dup.forward(xs)
    want = results(dup, dhs)
    assert layer.h is None and layer.dh is None
    layer.forward(rng.normal(size=(N, T, D)))
    layer.backward(rng.normal(size=(N, T, H)))
    assert_results(dup, dhs, want)


def test_a_shallow_copy_shares_the_parameter_arrays_and_nothing_else(
    rng: np.random.Generator,
) -> None:
    layer = layer_mid_batch(rng, stateful=True)
    layer.backward(rng.normal(size=(N, T, H)))
    dup = copy.copy(layer)

    assert dup.params is not layer.params
    assert all(p is q for p, q in zip(dup.params, layer.params, strict=True))
    assert dup.grads is not layer.grads
    for g, g0 in zip(dup.grads, layer.grads, strict=True):
        assert g is not g0 and not np.shares_memory(g, g0)
        assert_array_equal(g, g0)
    for name in ("h", "dh"):
        mine, theirs = getattr(dup, name), getattr(layer, name)
        assert not np.shares_memory(mine, theirs), name
        assert_array_equal(mine, theirs)

    # An optimizer step on the original's params is one on the copy's.
    xs = rng.normal(size=(N, T, D))
    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.1 * g
    layer.reset_state()
    dup.reset_state()
    assert_array_equal(dup.forward(xs), layer.forward(xs))


def test_a_deep_copy_shares_nothing(rng: np.random.Generator) -> None:
    layer = layer_mid_batch(rng, stateful=True)
    layer.backward(rng.normal(size=(N, T, H)))
    dup = copy.deepcopy(layer)

    for a, b in [*zip(dup.params, layer.params), *zip(dup.grads, layer.grads)]:
        assert not np.shares_memory(a, b)
        assert_array_equal(a, b)
    for name in ("h", "dh"):
        assert not np.shares_memory(getattr(dup, name), getattr(layer, name)), name

    # An optimizer step on the original leaves the copy's params alone.
    xs = rng.normal(size=(N, T, D))
    dup.reset_state()
    want = dup.forward(xs)
    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.1 * g
    dup.reset_state()
    assert_array_equal(dup.forward(xs), want)


def test_a_model_holding_two_layers_that_share_a_weight_keeps_sharing_it_when_deep_copied(
    rng: np.random.Generator,
) -> None:
    Wx, Wh, b = make_params(rng, D, H)
    model = [TimeRNN(Wx, Wh, b), TimeRNN(Wx, Wh.copy(), b)]
    twin = copy.deepcopy(model)
    assert twin[0].params[0] is twin[1].params[0] is not Wx
    assert twin[0].params[1] is not twin[1].params[1]
