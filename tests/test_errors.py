"""Bad input: the right exception, a message naming the argument and both shapes, no side effects.

Every failing call is made on a layer that already holds state (params, grads, h, dh
and a forward cache); afterwards the layer must behave exactly like an untouched
deep copy of itself taken just before the call.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from conftest import make_params, reference_forward
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import RNN, TimeRNN

N, T, D, H = 2, 5, 3, 4
Z = np.zeros


def assert_message(exc: BaseException, *parts: str) -> None:
    msg = str(exc)
    for part in parts:
        assert part in msg, f"{part!r} not in message {msg!r}"


def same(a: Any, b: Any) -> None:
    if a is None or b is None:
        assert a is None and b is None
    else:
        assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def outcome(fn: Callable[[], Any]) -> Any:
    """What a call did: the exception type it raised, or its result."""
    try:
        return fn()
    except Exception as e:
        return type(e)


def same_outcome(a: Any, b: Any) -> None:
    if isinstance(a, type) or isinstance(b, type):
        assert a is b
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            same(x, y)
    else:
        same(a, b)


def assert_layer_state(layer: Any, twin: Any) -> None:
    for p, q in zip(layer.params, twin.params, strict=True):
        same(p, q)
    for g, q in zip(layer.grads, twin.grads, strict=True):
        same(g, q)
    for attr in ("h", "dh"):
        if hasattr(twin, attr):
            same(getattr(layer, attr), getattr(twin, attr))


def assert_fails_cleanly(
    layer: Any,
    call: Callable[[Any], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
    later: Callable[[Any], list[Callable[[], Any]]],
) -> list[Any]:
    """call(layer) raises exc_type naming `parts` and leaves the layer as it was.

    `later(layer)` gives the follow-up calls (backward / forward) whose outcomes
    must match those of a deep copy taken before the failing call; those of the
    copy are returned.
    """
    twin = copy.deepcopy(layer)
    params, grads = list(layer.params), list(layer.grads)

    with pytest.raises(exc_type) as info:
        call(layer)

    assert_message(info.value, *parts)
    assert all(p is q for p, q in zip(layer.params, params, strict=True))
    assert all(g is q for g, q in zip(layer.grads, grads, strict=True))
    assert_layer_state(layer, twin)
    outcomes = []
    for mine, theirs in zip(later(layer), later(twin), strict=True):
        outcomes.append(outcome(theirs))
        same_outcome(outcome(mine), outcomes[-1])
        assert_layer_state(layer, twin)
    return outcomes


def succeeded(outcomes: list[Any]) -> bool:
    return not any(isinstance(o, type) for o in outcomes)


# --- TimeRNN ---------------------------------------------------------------------------


def time_rnn_with_state(rng: np.random.Generator, n: int = N) -> TimeRNN:
    """A stateful layer after set_state, forward and backward: h, dh, cache all set."""
    layer = TimeRNN(*make_params(rng, D, H), stateful=True)
    layer.set_state(rng.normal(size=(n, H)))
    layer.forward(rng.normal(size=(n, T, D)))
    layer.backward(rng.normal(size=(n, T, H)))
    return layer


def time_rnn_later(rng: np.random.Generator, n: int = N) -> Callable[[Any], list[Any]]:
    dhs, xs = rng.normal(size=(n, T, H)), rng.normal(size=(n, T, D))
    return lambda layer: [
        lambda: layer.backward(dhs),  # uses the cache of the forward before the failure
        lambda: layer.forward(xs),  # starts from the carried state
        lambda: layer.backward(dhs),
    ]


TIME_RNN_BAD_CALLS = {
    "xs 2-D": (lambda l: l.forward(Z((N, D))), ValueError, ("xs", "(2, 3)", "(N, T, D=3)")),
    "xs 4-D": (lambda l: l.forward(Z((N, T, D, 1))), ValueError, ("xs", "(2, 5, 3, 1)", "D=3")),
    "xs wrong D": (lambda l: l.forward(Z((N, T, 7))), ValueError, ("xs", "(2, 5, 7)", "D=3")),
    "xs empty batch": (lambda l: l.forward(Z((0, T, D))), ValueError, ("xs", "(0, 5, 3)", "N")),
    "xs no steps": (lambda l: l.forward(Z((N, 0, D))), ValueError, ("xs", "(2, 0, 3)", "T")),
    "xs complex": (lambda l: l.forward(Z((N, T, D), complex)), TypeError, ("xs", "complex")),
    "xs bool": (lambda l: l.forward(Z((N, T, D), bool)), TypeError, ("xs", "bool")),
    "xs None": (lambda l: l.forward(None), TypeError, ("xs", "NoneType")),
    "carried h batch differs": (
        lambda l: l.forward(Z((3, T, D))),
        ValueError,
        ("h", "(2, 4)", "N=3"),
    ),
    "dhs wrong N": (lambda l: l.backward(Z((3, T, H))), ValueError, ("dhs", "(3, 5, 4)", "N=2")),
    "dhs wrong T": (lambda l: l.backward(Z((N, 4, H))), ValueError, ("dhs", "(2, 4, 4)", "T=5")),
    "dhs wrong H": (lambda l: l.backward(Z((N, T, 3))), ValueError, ("dhs", "(2, 5, 3)", "H=4")),
    "dhs 2-D": (
        lambda l: l.backward(Z((N, H))),
        ValueError,
        ("dhs", "(2, 4)", "(N=2, T=5, H=4)"),
    ),
    "dhs complex": (lambda l: l.backward(Z((N, T, H), complex)), TypeError, ("dhs", "complex")),
    "set_state wrong H": (lambda l: l.set_state(Z((N, 5))), ValueError, ("h", "(2, 5)", "H=4")),
    "set_state 1-D": (lambda l: l.set_state(Z(H)), ValueError, ("h", "(4,)", "(N, H=4)")),
    "set_state 3-D": (lambda l: l.set_state(Z((1, N, H))), ValueError, ("h", "(1, 2, 4)", "H=4")),
    "set_state complex": (lambda l: l.set_state(Z((N, H), complex)), TypeError, ("h", "complex")),
}


@pytest.mark.parametrize(
    ("call", "exc_type", "parts"), TIME_RNN_BAD_CALLS.values(), ids=TIME_RNN_BAD_CALLS.keys()
)
def test_time_rnn_bad_call_raises_and_changes_nothing(
    rng: np.random.Generator,
    call: Callable[[TimeRNN], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
) -> None:
    layer = time_rnn_with_state(rng)
    assert succeeded(assert_fails_cleanly(layer, call, exc_type, parts, time_rnn_later(rng)))


@pytest.mark.parametrize("how", ["set_state", "carried"])
def test_time_rnn_refuses_to_broadcast_a_batch_of_one_state(
    rng: np.random.Generator, how: str
) -> None:
    """NumPy would silently broadcast a (1, H) state over a batch of 3; the layer must not."""
    layer = TimeRNN(*make_params(rng, D, H), stateful=True)
    if how == "set_state":
        layer.set_state(rng.normal(size=(1, H)))
    else:
        layer.forward(rng.normal(size=(1, T, D)))
        layer.backward(rng.normal(size=(1, T, H)))
    outcomes = assert_fails_cleanly(
        layer,
        lambda l: l.forward(Z((3, T, D))),
        ValueError,
        ("h", "(1, 4)", "N=3"),
        time_rnn_later(rng, n=1),
    )
    assert isinstance(outcomes[1], np.ndarray)  # the carried (1, H) state still works for N=1


def test_time_rnn_backward_before_forward_is_a_runtime_error(rng: np.random.Generator) -> None:
    layer = TimeRNN(*make_params(rng, D, H), stateful=True)
    assert_fails_cleanly(
        layer,
        lambda l: l.backward(Z((N, T, H))),
        RuntimeError,
        ("backward", "forward"),
        time_rnn_later(rng),
    )


def test_stateless_layer_ignores_a_carried_state_of_another_batch_size(
    rng: np.random.Generator,
) -> None:
    layer = TimeRNN(*make_params(rng, D, H), stateful=False)
    layer.forward(rng.normal(size=(1, T, D)))
    assert layer.forward(rng.normal(size=(3, T, D))).shape == (3, T, H)


# --- constructor: both layers ----------------------------------------------------------


def params_with(**changes: Any) -> list[Any]:
    params = dict(zip(("Wx", "Wh", "b"), make_params(np.random.default_rng(0), D, H), strict=True))
    params.update(changes)
    return list(params.values())


ACCEPTED = "float32 or float64"

BAD_PARAMS = {
    "Wx 1-D": (params_with(Wx=Z(D)), ValueError, ("Wx", "(3,)", "(D, H)")),
    "Wx 3-D": (params_with(Wx=Z((D, H, 1))), ValueError, ("Wx", "(3, 4, 1)", "(D, H)")),
    "Wx empty": (params_with(Wx=Z((0, H))), ValueError, ("Wx", "(0, 4)")),
    "Wh not square": (params_with(Wh=Z((H, 3))), ValueError, ("Wh", "(4, 3)", "(4, 4)")),
    "Wh wrong H": (params_with(Wh=Z((3, 3))), ValueError, ("Wh", "(3, 3)", "(4, 4)")),
    "b 2-D": (params_with(b=Z((1, H))), ValueError, ("b", "(1, 4)", "(4,)")),
    "b wrong H": (params_with(b=Z(3)), ValueError, ("b", "(3,)", "(4,)")),
    "Wx int": (params_with(Wx=Z((D, H), int)), TypeError, ("Wx", "int64", "float")),
    "Wh int": (params_with(Wh=Z((H, H), np.int32)), TypeError, ("Wh", "int32", "float")),
    "b bool": (params_with(b=Z(H, bool)), TypeError, ("b", "bool", "float")),
    "Wx complex": (params_with(Wx=Z((D, H), complex)), TypeError, ("Wx", "complex", ACCEPTED)),
    # Only float32 and float64, as the message says: not every floating dtype.
    "Wx float16": (params_with(Wx=Z((D, H), np.float16)), TypeError, ("Wx", "float16", ACCEPTED)),
    "Wh float16": (params_with(Wh=Z((H, H), np.float16)), TypeError, ("Wh", "float16", ACCEPTED)),
    "b longdouble": (
        params_with(b=Z(H, np.longdouble)),
        TypeError,
        ("b", str(np.dtype(np.longdouble)), ACCEPTED),
    ),
    "Wx longdouble": (
        params_with(Wx=Z((D, H), np.longdouble)),
        TypeError,
        ("Wx", str(np.dtype(np.longdouble)), ACCEPTED),
    ),
    "Wx byte-swapped float64": (
        params_with(Wx=Z((D, H), np.dtype(np.float64).newbyteorder())),
        TypeError,
        ("Wx", str(np.dtype(np.float64).newbyteorder()), ACCEPTED),
    ),
    "Wx list": (params_with(Wx=Z((D, H)).tolist()), TypeError, ("Wx", "list")),
    "mixed f32/f64": (
        params_with(Wx=Z((D, H), np.float32)),
        TypeError,
        ("Wx", "Wh", "b", "float32", "float64"),
    ),
    "mixed f64/f32": (
        params_with(b=Z(H, np.float32)),
        TypeError,
        ("Wx", "Wh", "b", "float32", "float64"),
    ),
}


@pytest.mark.parametrize("cls", [TimeRNN, RNN])
@pytest.mark.parametrize(
    ("params", "exc_type", "parts"), BAD_PARAMS.values(), ids=BAD_PARAMS.keys()
)
def test_bad_params_are_refused_by_the_constructor(
    cls: type, params: list[Any], exc_type: type[Exception], parts: tuple[str, ...]
) -> None:
    with pytest.raises(exc_type) as info:
        cls(*params)
    assert_message(info.value, *parts)


def test_params_broken_after_construction_are_caught_before_anything_changes(
    rng: np.random.Generator,
) -> None:
    layer = time_rnn_with_state(rng)
    layer.params[1] = Z((3, 3))
    twin = copy.deepcopy(layer)
    with pytest.raises(ValueError, match=r"Wh.*\(4, 4\).*\(3, 3\)"):
        layer.forward(Z((N, T, D)))
    with pytest.raises(ValueError, match="Wh"):
        layer.backward(Z((N, T, H)))
    assert_layer_state(layer, twin)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble], ids=["float16", "longdouble"])
def test_params_of_a_refused_dtype_set_after_construction_are_refused_by_every_call(
    rng: np.random.Generator, dtype: Any
) -> None:
    """forward, backward and set_state refuse them as the constructor does, changing nothing."""
    layer = time_rnn_with_state(rng)
    layer.params[:] = [p.astype(dtype) for p in layer.params]
    twin = copy.deepcopy(layer)
    calls = {
        "forward": lambda: layer.forward(rng.normal(size=(N, T, D))),
        "backward": lambda: layer.backward(rng.normal(size=(N, T, H))),
        "set_state": lambda: layer.set_state(rng.normal(size=(N, H))),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError) as info:
            call()
        assert_message(info.value, "Wx", str(np.dtype(dtype)), ACCEPTED)
        assert_layer_state(layer, twin)
        assert layer.h.dtype == np.float64, name


# --- a forward that fails part-way -----------------------------------------------------


@contextlib.contextmanager
def numpy_raises(name: str, on_call: int, exc: type[BaseException]) -> Iterator[None]:
    """Inside the block, the on_call-th call (from 1) of np.<name> raises exc.

    Stands for what can stop a forward after it has begun to overwrite its buffers: a
    KeyboardInterrupt (Ctrl-C in a long forward), a MemoryError.
    """
    real = getattr(np, name)
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == on_call:
            raise exc(f"injected into call {calls} of np.{name}")
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, name, failing)
        yield
    assert calls >= on_call, f"np.{name} was called only {calls} times, not {on_call}"


# Where the forward of T = 5 steps stops: its first product (the input projections, into
# the work array), the tanh of its first or of its last step (the states, in place).
FAILURE_POINTS = {"projection": ("dot", 1), "step 0": ("tanh", 1), "last step": ("tanh", T)}


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
@pytest.mark.parametrize("where", FAILURE_POINTS.values(), ids=FAILURE_POINTS.keys())
@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
@pytest.mark.parametrize("new_T", [T, T + 2], ids=["same shape", "new shape"])
def test_backward_after_a_forward_that_failed_part_way_is_refused(
    rng: np.random.Generator,
    exc: type[BaseException],
    where: tuple[str, int],
    stateful: bool,
    new_T: int,
) -> None:
    """No backward of half-overwritten buffers; h as before; the next forward works."""
    params = make_params(rng, D, H)
    layer = TimeRNN(*params, stateful=stateful)
    layer.set_state(rng.normal(size=(N, H)))
    layer.forward(rng.normal(size=(N, T, D)))  # a completed forward: its buffers get reused
    dhs_done = rng.normal(size=(N, T, H))
    layer.backward(dhs_done)
    h, grads, dh = layer.h, [g.copy() for g in layer.grads], layer.dh.copy()
    h_copy = h.copy()
    twin = copy.deepcopy(layer)
    xs, dhs = rng.normal(size=(N, new_T, D)), rng.normal(size=(N, new_T, H))

    with numpy_raises(*where, exc), pytest.raises(exc, match="injected"):
        layer.forward(xs)

    assert layer.h is h  # not half-updated: the state before the call
    assert_array_equal(layer.h, h_copy)
    for d in (dhs, dhs_done):
        with pytest.raises(RuntimeError) as info:
            layer.backward(d)
        assert_message(info.value, "backward() called without a completed forward()", exc.__name__)
    for g, g0 in zip(layer.grads, grads, strict=True):
        assert_array_equal(g, g0)  # the refused backward wrote nothing
    assert_array_equal(layer.dh, dh)

    # The next forward works normally, from the state the failed one started from.
    hs = layer.forward(xs)
    assert_allclose(hs, reference_forward(xs, *params, h_copy if stateful else None)[0], 1e-12)
    assert_array_equal(hs, twin.forward(xs))
    assert_array_equal(layer.h, twin.h)
    assert_array_equal(layer.backward(dhs), twin.backward(dhs))
    assert_layer_state(layer, twin)


def test_a_forward_that_failed_its_checks_keeps_the_last_forward_for_backward(
    rng: np.random.Generator,
) -> None:
    """Checks raise before any buffer changes: the previous forward stays differentiable."""
    layer = TimeRNN(*make_params(rng, D, H))
    layer.forward(rng.normal(size=(N, T, D)))
    dhs = rng.normal(size=(N, T, H))
    want = layer.backward(dhs)
    with pytest.raises(ValueError):
        layer.forward(Z((N, T, D + 1)))
    assert_array_equal(layer.backward(dhs), want)


def test_a_copy_of_a_layer_whose_forward_failed_refuses_backward_too(
    rng: np.random.Generator,
) -> None:
    layer = TimeRNN(*make_params(rng, D, H))
    layer.forward(rng.normal(size=(N, T, D)))
    with numpy_raises("tanh", 2, KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        layer.forward(rng.normal(size=(N, T, D)))
    for dup in (copy.copy(layer), copy.deepcopy(layer)):
        with pytest.raises(RuntimeError, match="KeyboardInterrupt"):
            dup.backward(Z((N, T, H)))
        dup.forward(rng.normal(size=(N, T, D)))
        assert dup.backward(Z((N, T, H))).shape == (N, T, D)
    with pytest.raises(RuntimeError, match="without a completed forward"):
        layer.backward(Z((N, T, H)))


# --- RNN (one step) --------------------------------------------------------------------


def rnn_with_state(rng: np.random.Generator) -> RNN:
    cell = RNN(*make_params(rng, D, H))
    cell.forward(rng.normal(size=(N, D)), rng.normal(size=(N, H)))
    cell.backward(rng.normal(size=(N, H)))
    return cell


def rnn_later(rng: np.random.Generator) -> Callable[[Any], list[Any]]:
    x, h, dh = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    return lambda cell: [
        lambda: cell.backward(dh),
        lambda: cell.forward(x, h),
        lambda: cell.backward(dh),
    ]


RNN_BAD_CALLS = {
    "x 1-D": (lambda c: c.forward(Z(D), Z((N, H))), ValueError, ("x", "(3,)", "(N, D=3)")),
    "x 3-D": (lambda c: c.forward(Z((N, 1, D)), Z((N, H))), ValueError, ("x", "(2, 1, 3)", "D=3")),
    "x wrong D": (lambda c: c.forward(Z((N, 5)), Z((N, H))), ValueError, ("x", "(2, 5)", "D=3")),
    "x complex": (lambda c: c.forward(Z((N, D), complex), Z((N, H))), TypeError, ("x", "complex")),
    "h_prev wrong N": (
        lambda c: c.forward(Z((N, D)), Z((1, H))),
        ValueError,
        ("h_prev", "(1, 4)", "(N=2, H=4)"),
    ),
    "h_prev wrong H": (
        lambda c: c.forward(Z((N, D)), Z((N, 3))),
        ValueError,
        ("h_prev", "(2, 3)", "H=4"),
    ),
    "h_prev 1-D": (
        lambda c: c.forward(Z((N, D)), Z(H)),
        ValueError,
        ("h_prev", "(4,)", "(N=2, H=4)"),
    ),
    "dh_next wrong N": (
        lambda c: c.backward(Z((1, H))),
        ValueError,
        ("dh_next", "(1, 4)", "(N=2, H=4)"),
    ),
    "dh_next wrong H": (
        lambda c: c.backward(Z((N, 5))),
        ValueError,
        ("dh_next", "(2, 5)", "H=4"),
    ),
    "dh_next 3-D": (
        lambda c: c.backward(Z((N, 1, H))),
        ValueError,
        ("dh_next", "(2, 1, 4)", "(N=2, H=4)"),
    ),
    "dh_next complex": (
        lambda c: c.backward(Z((N, H), complex)),
        TypeError,
        ("dh_next", "complex"),
    ),
}


@pytest.mark.parametrize(
    ("call", "exc_type", "parts"), RNN_BAD_CALLS.values(), ids=RNN_BAD_CALLS.keys()
)
def test_rnn_bad_call_raises_and_changes_nothing(
    rng: np.random.Generator,
    call: Callable[[RNN], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
) -> None:
    assert succeeded(
        assert_fails_cleanly(rnn_with_state(rng), call, exc_type, parts, rnn_later(rng))
    )


def test_rnn_backward_before_forward_is_a_runtime_error(rng: np.random.Generator) -> None:
    cell = RNN(*make_params(rng, D, H))
    assert_fails_cleanly(
        cell, lambda c: c.backward(Z((N, H))), RuntimeError, ("backward", "forward"), rnn_later(rng)
    )
