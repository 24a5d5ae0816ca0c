"""The contract TimeLSTM and TimeGRU share with TimeRNN, tested on both.

Numbers (against plain float64 loops written from the book's formulas and central
finite differences), dtypes, params/grads identity, errors that change nothing, no
aliasing, the carried state and truncated backward, failures part-way, copies.

The references and the finite-difference helper here share no code with handrnn;
test_time_lstm.py and test_time_gru.py use them too.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from numpy.typing import NDArray

from handrnn import TimeGRU, TimeLSTM

Array = NDArray[Any]
TIGHT = {"rtol": 1e-12, "atol": 1e-12}
FD_TOL = {"rtol": 1e-5, "atol": 1e-7}


# --- independent references ----------------------------------------------------------


def sigma(a: Array) -> Array:
    """The logistic function the textbook way; exp(-a) may overflow to inf, giving 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


def reference_lstm(
    xs: Array, Wx: Array, Wh: Array, b: Array, h0: Array | None = None, c0: Array | None = None
) -> tuple[Array, tuple[Array, Array]]:
    """Plain float64 loop: (hs (N, T, H), (h_T, c_T)), from h0, c0 or zeros."""
    N, T, _ = xs.shape
    H = Wh.shape[0]
    h = np.zeros((N, H)) if h0 is None else np.array(h0, dtype=np.float64)
    c = np.zeros((N, H)) if c0 is None else np.array(c0, dtype=np.float64)
    hs = np.zeros((N, T, H))
    for t in range(T):
        A = xs[:, t] @ Wx + h @ Wh + b
        f, g = sigma(A[:, :H]), np.tanh(A[:, H : 2 * H])
        i, o = sigma(A[:, 2 * H : 3 * H]), sigma(A[:, 3 * H :])
        c = f * c + g * i
        h = o * np.tanh(c)
        hs[:, t] = h
    return hs, (h, c)


def reference_gru(
    xs: Array, Wx: Array, Wh: Array, b: Array, h0: Array | None = None
) -> tuple[Array, tuple[Array]]:
    """Plain float64 loop: (hs (N, T, H), (h_T,)), from h0 or zeros."""
    N, T, _ = xs.shape
    H = Wh.shape[0]
    h = np.zeros((N, H)) if h0 is None else np.array(h0, dtype=np.float64)
    hs = np.zeros((N, T, H))
    for t in range(T):
        x = xs[:, t]
        z = sigma(x @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])
        r = sigma(x @ Wx[:, H : 2 * H] + h @ Wh[:, H : 2 * H] + b[H : 2 * H])
        h_hat = np.tanh(x @ Wx[:, 2 * H :] + (r * h) @ Wh[:, 2 * H :] + b[2 * H :])
        h = (1 - z) * h + z * h_hat
        hs[:, t] = h
    return hs, (h,)


def numerical_grad(f: Callable[[], float], x: Array, eps: float = 1e-6) -> Array:
    """Central differences of the scalar f() w.r.t. every entry of x (perturbed in place)."""
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        up = f()
        x[idx] = orig - eps
        down = f()
        x[idx] = orig
        grad[idx] = (up - down) / (2 * eps)
    return grad


@dataclass(frozen=True)
class Spec:
    """What the shared tests need to know about one gated layer."""

    name: str
    cls: Any
    gates: int  # blocks of H columns in Wx, Wh, b
    states: tuple[str, ...]  # carried states, in set_state's order
    reference: Callable[..., tuple[Array, tuple[Array, ...]]]

    @property
    def grad_names(self) -> tuple[str, ...]:
        return tuple("d" + s for s in self.states)  # dh (, dc)

    def params(
        self,
        rng: np.random.Generator,
        D: int,
        H: int,
        dtype: Any = np.float64,
        scale: float = 0.5,
    ) -> tuple[Array, Array, Array]:
        """Random Wx (D, gH), Wh (H, gH), b (gH,), entries ~ N(0, scale^2 / fan_in)."""
        G = self.gates * H
        Wx = rng.normal(0.0, scale / np.sqrt(D), (D, G)).astype(dtype)
        Wh = rng.normal(0.0, scale / np.sqrt(H), (H, G)).astype(dtype)
        b = rng.normal(0.0, scale, G).astype(dtype)
        return Wx, Wh, b

    def initial(
        self, rng: np.random.Generator, N: int, H: int, dtype: Any = np.float64
    ) -> list[Array]:
        """Random initial states, one per carried state, (N, H) each."""
        return [rng.uniform(-0.9, 0.9, size=(N, H)).astype(dtype) for _ in self.states]

    def fd_grads(
        self, xs: Array, params: tuple[Array, ...], init: list[Array], dhs: Array
    ) -> dict[str, Array]:
        """Finite-difference gradients of L = sum(hs * dhs) in float64: dxs, dWx, dWh, db
        and one per initial state (dh, dc)."""
        xs, *arrays = (np.array(a, dtype=np.float64) for a in (xs, *params, *init))
        Wx, Wh, b, *states = arrays

        def loss() -> float:
            return float(np.sum(self.reference(xs, Wx, Wh, b, *states)[0] * dhs))

        names = ("dxs", "dWx", "dWh", "db", *self.grad_names)
        return {n: numerical_grad(loss, a) for n, a in zip(names, (xs, Wx, Wh, b, *states))}


LSTM_SPEC = Spec("TimeLSTM", TimeLSTM, 4, ("h", "c"), reference_lstm)
GRU_SPEC = Spec("TimeGRU", TimeGRU, 3, ("h",), reference_gru)
SPECS = [LSTM_SPEC, GRU_SPEC]
each_layer = pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
DTYPES = [np.float32, np.float64]


def run_segment(spec: Spec, layer: Any, xs: Array, dhs: Array) -> dict[str, Array]:
    """One forward + backward; everything the layer produced, copied."""
    out = {"hs": layer.forward(xs)}
    out.update({s: getattr(layer, s).copy() for s in spec.states})
    out["dxs"] = layer.backward(dhs)
    out.update(zip(("dWx", "dWh", "db"), (g.copy() for g in layer.grads)))
    out.update({d: getattr(layer, d).copy() for d in spec.grad_names})
    return out


def layer_state(spec: Spec, layer: Any) -> dict[str, Any]:
    """Everything a layer holds that a caller can see, copied (None stays None)."""
    names = (*spec.states, *spec.grad_names)
    state = {n: None if getattr(layer, n) is None else getattr(layer, n).copy() for n in names}
    state["params"] = [p.copy() for p in layer.params]
    state["grads"] = [g.copy() for g in layer.grads]
    return state


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if a[name] is None or b[name] is None:
            assert a[name] is None and b[name] is None, name
        elif isinstance(a[name], list):
            for x, y in zip(a[name], b[name], strict=True):
                assert_array_equal(x, y, err_msg=name)
        else:
            assert_array_equal(a[name], b[name], err_msg=name)


def read_only(a: Array) -> Array:
    a = a.copy()
    a.flags.writeable = False
    return a


# --- numbers ---------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=4)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
scales = st.sampled_from([0.3, 1.0, 2.5])  # small, moderate, saturating weights
starts = st.sampled_from(["zeros", "set_state", "set_state h only"])


@each_layer
@settings(max_examples=40, deadline=None)
@given(N=sizes, T=sizes, D=sizes, H=sizes, scale=scales, seed=seeds, start=starts)
@example(N=1, T=1, D=1, H=1, scale=1.0, seed=0, start="set_state")
@example(N=1, T=4, D=1, H=4, scale=1.0, seed=1, start="zeros")
@example(N=4, T=1, D=4, H=1, scale=2.5, seed=2, start="set_state h only")
def test_forward_and_backward_match_the_formulas_and_finite_differences(
    spec: Spec, N: int, T: int, D: int, H: int, scale: float, seed: int, start: str
) -> None:
    rng = np.random.default_rng(seed)
    params = spec.params(rng, D, H, np.float64, scale)
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    init = spec.initial(rng, N, H)
    if start == "zeros":
        layer = spec.cls(*params, stateful=False)
        init = [np.zeros((N, H)) for _ in init]
    else:
        layer = spec.cls(*params, stateful=True)
        if start == "set_state h only":  # the LSTM's c starts from zeros
            init[1:] = [np.zeros((N, H)) for _ in init[1:]]
            layer.set_state(init[0])
        else:
            layer.set_state(*init)

    got = run_segment(spec, layer, xs, dhs)

    hs_ref, finals = spec.reference(xs, *params, *init)
    assert_allclose(got["hs"], hs_ref, **TIGHT)
    for name, want in zip(spec.states, finals, strict=True):
        assert_allclose(got[name], want, **TIGHT, err_msg=name)
    for name, want in spec.fd_grads(xs, params, init, dhs).items():
        assert got[name].shape == want.shape, name
        assert_allclose(got[name], want, **FD_TOL, err_msg=name)


@each_layer
@settings(max_examples=30, deadline=None)
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
def test_float32_layer_computes_in_float32_close_to_float64(
    spec: Spec, N: int, T: int, D: int, H: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params32 = tuple(p.astype(np.float32) for p in spec.params(rng, D, H))
    xs = rng.normal(size=(N, T, D)).astype(np.float32)
    dhs = rng.normal(size=(N, T, H)).astype(np.float32)
    init = spec.initial(rng, N, H, np.float32)

    def run(params: tuple[Array, ...]) -> dict[str, Array]:
        layer = spec.cls(*params, stateful=True)
        layer.set_state(*init)
        return run_segment(spec, layer, xs, dhs)

    got32 = run(params32)
    # The float64 run sees exactly the float32 inputs, so only rounding differs.
    want64 = run(tuple(p.astype(np.float64) for p in params32))
    for name, want in want64.items():
        assert got32[name].dtype == np.float32, name
        assert want.dtype == np.float64, name
        assert_allclose(got32[name], want, rtol=3e-4, atol=3e-5, err_msg=name)


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_inputs_saturate_the_gates_without_warnings_or_nans(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    """σ must not overflow (pytest turns every warning into an error here)."""
    N, T, D, H = 2, 6, 3, 4
    params = spec.params(rng, D, H, dtype, scale=1.0)
    xs = (rng.normal(size=(N, T, D)) * 1e6).astype(dtype)  # pre-activations of ~1e6
    init = spec.initial(rng, N, H, dtype)
    layer = spec.cls(*params, stateful=True)
    layer.set_state(*init)

    got = run_segment(spec, layer, xs, rng.normal(size=(N, T, H)).astype(dtype))

    for name, value in got.items():
        assert np.all(np.isfinite(value)), name
    assert np.all(np.abs(got["hs"]) <= 1)
    # The gates are 0 or 1 and tanh is ±1: the formulas' values, to rounding.
    as64 = (a.astype(np.float64) for a in (xs, *params, *init))
    assert_allclose(got["hs"], spec.reference(*as64)[0], rtol=0, atol=1e-5)


@each_layer
@pytest.mark.parametrize("param_dtype", DTYPES)
@pytest.mark.parametrize(
    "data_dtype", [np.float32, np.float64, np.int64, np.float16, np.longdouble]
)
def test_outputs_take_the_params_dtype_whatever_the_data_dtype(
    spec: Spec, rng: np.random.Generator, param_dtype: Any, data_dtype: Any
) -> None:
    N, T, D, H = 2, 5, 3, 4
    layer = spec.cls(*spec.params(rng, D, H, param_dtype), stateful=True)
    layer.set_state(*(s.astype(data_dtype) for s in spec.initial(rng, N, H)))
    for name in spec.states:
        assert getattr(layer, name).dtype == param_dtype, name
    got = run_segment(
        spec,
        layer,
        rng.normal(size=(N, T, D)).astype(data_dtype),
        rng.normal(size=(N, T, H)).astype(data_dtype),
    )
    for name, value in got.items():
        assert value.dtype == param_dtype, name
    for value in (layer.h, layer.dh, *layer.grads):
        assert value.dtype == param_dtype


@each_layer
@pytest.mark.parametrize("param_dtype", DTYPES)
@pytest.mark.parametrize("data_dtype", [np.float16, np.longdouble], ids=["float16", "longdouble"])
def test_data_of_another_float_dtype_is_cast_to_the_params_dtype_first(
    spec: Spec, rng: np.random.Generator, param_dtype: Any, data_dtype: Any
) -> None:
    N, T, D, H = 2, 5, 3, 4
    params = spec.params(rng, D, H, param_dtype)
    init = [s.astype(data_dtype) for s in spec.initial(rng, N, H)]
    xs = rng.normal(size=(N, T, D)).astype(data_dtype)
    dhs = rng.normal(size=(N, T, H)).astype(data_dtype)

    def run(cast: Any) -> dict[str, Array]:
        layer = spec.cls(*params, stateful=True)
        layer.set_state(*(s if cast is None else s.astype(cast) for s in init))
        if cast is None:
            return run_segment(spec, layer, xs, dhs)
        return run_segment(spec, layer, xs.astype(cast), dhs.astype(cast))

    got, want = run(None), run(param_dtype)
    for name in want:
        assert got[name].dtype == param_dtype, name
        assert_array_equal(got[name], want[name], err_msg=name)


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_memory_layout_of_params_and_data_does_not_change_the_numbers(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    """Fortran-ordered, transposed and strided arrays give what contiguous copies give."""
    N, T, D, H = 3, 4, 5, 6
    Wx, Wh, b = spec.params(rng, D, H, dtype)
    xs = rng.normal(size=(N, T, D)).astype(dtype)
    dhs = rng.normal(size=(N, T, H)).astype(dtype)
    init = spec.initial(rng, N, H, dtype)
    odd_params = (np.asfortranarray(Wx), np.ascontiguousarray(Wh.T).T, np.repeat(b, 2)[::2])
    odd_xs = np.ascontiguousarray(xs.transpose(2, 1, 0)).transpose(2, 1, 0)
    odd_dhs = np.ascontiguousarray(dhs.transpose(1, 2, 0)).transpose(2, 0, 1)
    odd_init = [np.asfortranarray(s) for s in init]

    def run(params: tuple[Array, ...], xs: Array, dhs: Array, init: list[Array]) -> Any:
        layer = spec.cls(*params, stateful=True)
        layer.set_state(*init)
        got = run_segment(spec, layer, xs, dhs)
        assert_array_equal(layer.backward(dhs), got["dxs"])  # twice: nothing stale
        return got

    want = run((Wx, Wh, b), xs, dhs, init)
    got = run(odd_params, odd_xs, odd_dhs, odd_init)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name in want:
        assert_allclose(got[name], want[name], rtol=tol, atol=tol, err_msg=name)


# --- params and grads ------------------------------------------------------------------

N, T, D, H = 2, 5, 3, 4  # the shapes of the protocol, state and error tests below


@each_layer
def test_params_are_the_very_arrays_passed_in_and_keep_their_values(
    spec: Spec, rng: np.random.Generator
) -> None:
    Wx, Wh, b = spec.params(rng, D, H)
    before = [Wx.copy(), Wh.copy(), b.copy()]
    layer = spec.cls(Wx, Wh, b, stateful=True)
    assert layer.params[0] is Wx and layer.params[1] is Wh and layer.params[2] is b

    layer.forward(rng.normal(size=(N, T, D)))
    layer.backward(rng.normal(size=(N, T, H)))

    assert layer.params[0] is Wx and layer.params[1] is Wh and layer.params[2] is b
    for p, p0 in zip(layer.params, before, strict=True):
        assert_array_equal(p, p0)


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_grads_are_allocated_once_and_overwritten_in_place(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    params = spec.params(rng, D, H, dtype)
    layer = spec.cls(*params, stateful=True)
    grads = list(layer.grads)  # a book-style model collects them once
    assert [(g.shape, g.dtype) for g in grads] == [(p.shape, p.dtype) for p in params]
    assert not any(np.shares_memory(g, p) for g, p in zip(grads, params, strict=True))

    for n, t in [(2, 5), (2, 1), (1, 3), (4, 2), (4, 6)]:
        layer.reset_state()
        xs, dhs = rng.normal(size=(n, t, D)), rng.normal(size=(n, t, H))
        layer.forward(xs)
        layer.backward(dhs)
        fresh = spec.cls(*params)  # what this backward alone gives
        fresh.forward(xs)
        fresh.backward(dhs)
        for g, want in zip(grads, fresh.grads, strict=True):
            assert_array_equal(g, want)  # overwritten, not accumulated
        layer.set_state(*spec.initial(rng, n, H))

    assert len(layer.grads) == 3
    assert all(g is g0 for g, g0 in zip(layer.grads, grads, strict=True))


@each_layer
def test_in_place_optimizer_updates_reach_the_layer(spec: Spec, rng: np.random.Generator) -> None:
    Wx, Wh, b = spec.params(rng, D, H)
    layer = spec.cls(Wx, Wh, b)
    xs = rng.normal(size=(N, T, D))
    hs_before = layer.forward(xs)
    layer.backward(rng.normal(size=(N, T, H)))

    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.5 * g  # the book's SGD

    hs_after = layer.forward(xs)
    assert not np.allclose(hs_after, hs_before)
    assert_allclose(hs_after, spec.reference(xs, Wx, Wh, b)[0], **TIGHT)


@each_layer
def test_backward_twice_gives_identical_results(spec: Spec, rng: np.random.Generator) -> None:
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    layer.set_state(*spec.initial(rng, N, H))
    layer.forward(rng.normal(size=(N, T, D)))
    dhs = rng.normal(size=(N, T, H))
    first = run_segment_backward(spec, layer, dhs)
    second = run_segment_backward(spec, layer, dhs)
    for name in first:
        assert_array_equal(second[name], first[name], err_msg=name)


def run_segment_backward(spec: Spec, layer: Any, dhs: Array) -> dict[str, Array]:
    out = {"dxs": layer.backward(dhs)}
    out.update(zip(("dWx", "dWh", "db"), (g.copy() for g in layer.grads)))
    out.update({d: getattr(layer, d).copy() for d in spec.grad_names})
    return out


# --- no aliasing -----------------------------------------------------------------------


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_backward_and_set_state_never_write_to_their_arguments(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    # Read-only arrays make any write raise; the copies catch writes through other routes.
    layer = spec.cls(*spec.params(rng, D, H, dtype), stateful=True)
    init = [read_only(s) for s in spec.initial(rng, N, H, dtype)]
    xs = read_only(rng.normal(size=(N, T, D)).astype(dtype))
    dhs = read_only(rng.normal(size=(N, T, H)).astype(dtype))
    args = [*init, xs, dhs]
    copies = [a.copy() for a in args]

    layer.set_state(*init)
    layer.forward(xs)
    layer.backward(dhs)
    layer.backward(dhs)
    layer.forward(xs)

    for a, a0 in zip(args, copies, strict=True):
        assert_array_equal(a, a0)


@each_layer
def test_set_state_keeps_its_own_copies(spec: Spec, rng: np.random.Generator) -> None:
    params = spec.params(rng, D, H)
    layer = spec.cls(*params, stateful=True)
    init = spec.initial(rng, N, H)
    want = [s.copy() for s in init]
    xs = rng.normal(size=(N, T, D))

    layer.set_state(*init)
    for s in init:
        s[...] = 5.0
    carried = [getattr(layer, name) for name in spec.states]
    hs = layer.forward(xs)

    assert_allclose(hs, spec.reference(xs, *params, *want)[0], **TIGHT)
    for s, w in zip(carried, want, strict=True):
        assert_array_equal(s, w)  # the state arrays it handed out were not reused


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_editing_what_forward_returned_or_set_changes_nothing_else(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    params = spec.params(rng, D, H, dtype)
    edited, clean = spec.cls(*params, stateful=True), spec.cls(*params, stateful=True)
    xs = rng.normal(size=(N, T, D)).astype(dtype)
    dhs = rng.normal(size=(N, T, H)).astype(dtype)
    hs = edited.forward(xs)
    assert_array_equal(clean.forward(xs), hs)
    states = [getattr(edited, s) for s in spec.states]

    hs[...] = 7.0
    for k, s in enumerate(states):
        s[...] = -3.0 - k

    assert_array_equal(hs, 7.0)  # hs is no view of a state, and no state of the others
    for k, s in enumerate(states):
        assert_array_equal(s, -3.0 - k)
    # backward reads its own copies of what forward computed.
    assert_array_equal(edited.backward(dhs), clean.backward(dhs))
    for ga, gb in zip(edited.grads, clean.grads, strict=True):
        assert_array_equal(ga, gb)


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_editing_what_backward_returned_or_set_changes_nothing_else(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    params = spec.params(rng, D, H, dtype)
    edited, clean = spec.cls(*params, stateful=True), spec.cls(*params, stateful=True)
    xs = rng.normal(size=(N, T, D)).astype(dtype)
    dhs = rng.normal(size=(N, T, H)).astype(dtype)
    edited.forward(xs)
    clean.forward(xs)
    dxs = edited.backward(dhs)
    want = run_segment_backward(spec, clean, dhs)

    dxs[...] = 7.0
    for k, d in enumerate(spec.grad_names):
        getattr(edited, d)[...] = -3.0 - k

    assert_array_equal(dxs, 7.0)
    for k, d in enumerate(spec.grad_names):
        assert_array_equal(getattr(edited, d), -3.0 - k)  # dh and dc are not views of each other
    again = run_segment_backward(spec, edited, dhs)
    for name in want:
        assert_array_equal(again[name], want[name], err_msg=name)
    # ...and the carried states are untouched, so the next segment matches too.
    assert_array_equal(edited.forward(xs), clean.forward(xs))
    assert_same_state(layer_state(spec, edited), layer_state(spec, clean))


@each_layer
def test_editing_xs_after_forward_does_not_change_backward(
    spec: Spec, rng: np.random.Generator
) -> None:
    """Forward keeps its own copy of xs (the book's layers keep a reference)."""
    layer = spec.cls(*spec.params(rng, D, H))
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    layer.forward(xs.copy())
    want = run_segment_backward(spec, layer, dhs)
    layer.forward(xs)
    xs[...] = 9.0
    got = run_segment_backward(spec, layer, dhs)
    for name in want:
        assert_array_equal(got[name], want[name], err_msg=name)


@each_layer
@pytest.mark.parametrize("dtype", DTYPES)
def test_an_array_it_returned_never_changes_later(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    layer = spec.cls(*spec.params(rng, D, H, dtype), stateful=True)
    xs = rng.normal(size=(N, T, D)).astype(dtype)
    dhs = rng.normal(size=(N, T, H)).astype(dtype)
    returned = [layer.forward(xs), *(getattr(layer, s) for s in spec.states)]
    returned += [layer.backward(dhs), *(getattr(layer, d) for d in spec.grad_names)]
    kept = [(a, a.copy()) for a in returned]

    # Same shapes again (where reused buffers would show), then other calls.
    for _ in range(2):
        layer.forward(xs * 2)
        layer.backward(dhs * 3)
    layer.set_state(*(np.ones((N, H), dtype=dtype) for _ in spec.states))
    layer.forward(xs)
    layer.backward(-dhs)
    layer.reset_state()
    layer.forward(xs[:1, :2])
    layer.backward(dhs[:1, :2])

    for a, a0 in kept:
        assert_array_equal(a, a0)


@each_layer
def test_backward_does_not_change_the_carried_states(spec: Spec, rng: np.random.Generator) -> None:
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    layer.forward(rng.normal(size=(N, T, D)))
    states = [getattr(layer, s) for s in spec.states]
    copies = [s.copy() for s in states]
    layer.backward(rng.normal(size=(N, T, H)))
    for name, s, s0 in zip(spec.states, states, copies, strict=True):
        assert getattr(layer, name) is s
        assert_array_equal(s, s0)


# --- the carried state -----------------------------------------------------------------


@each_layer
def test_stateless_forward_starts_from_zeros_every_call_and_ignores_set_state(
    spec: Spec, rng: np.random.Generator
) -> None:
    params = spec.params(rng, D, H)
    layer = spec.cls(*params, stateful=False)
    xs1, xs2 = rng.normal(size=(N, T, D)), rng.normal(size=(N, T - 1, D))
    hs1 = layer.forward(xs1)
    layer.set_state(*(np.full((N, H), 0.7) for _ in spec.states))

    assert_allclose(layer.forward(xs2), spec.reference(xs2, *params)[0], **TIGHT)
    assert_array_equal(layer.forward(xs1), hs1)
    assert layer.forward(rng.normal(size=(N + 1, T, D))).shape == (N + 1, T, H)


@each_layer
def test_first_stateful_forward_starts_from_zeros(spec: Spec, rng: np.random.Generator) -> None:
    params = spec.params(rng, D, H)
    xs = rng.normal(size=(N, T, D))
    layer = spec.cls(*params, stateful=True)
    assert all(getattr(layer, s) is None for s in (*spec.states, *spec.grad_names))
    assert_allclose(layer.forward(xs), spec.reference(xs, *params)[0], **TIGHT)


@each_layer
@settings(max_examples=30, deadline=None)
@given(
    N=sizes,
    D=sizes,
    H=sizes,
    Ts=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    seed=seeds,
)
def test_a_stateful_chain_of_segments_equals_the_unrolled_sequence(
    spec: Spec, N: int, D: int, H: int, Ts: list[int], seed: int
) -> None:
    """h (and c) are carried from segment to segment; backward in between disturbs nothing."""
    rng = np.random.default_rng(seed)
    params = spec.params(rng, D, H, scale=1.0)
    xs = rng.normal(size=(N, sum(Ts), D))
    hs_full, _ = spec.reference(xs, *params)
    layer = spec.cls(*params, stateful=True)

    start = 0
    for T in Ts:
        hs = layer.forward(xs[:, start : start + T])
        layer.backward(np.ones((N, T, H)))
        assert_allclose(hs, hs_full[:, start : start + T], **TIGHT)
        _, finals = spec.reference(xs[:, : start + T], *params)
        for name, want in zip(spec.states, finals, strict=True):
            assert_allclose(getattr(layer, name), want, **TIGHT, err_msg=name)
        start += T


@each_layer
def test_truncated_backward_differentiates_only_the_last_segment(
    spec: Spec, rng: np.random.Generator
) -> None:
    """Segment 2 starts from segment 1's final states, taken as constants: no gradient
    comes into its last step, and dh (dc) is the gradient w.r.t. those states."""
    params = spec.params(rng, D, H, scale=1.0)
    xs1, xs2 = rng.normal(size=(N, 6, D)), rng.normal(size=(N, 4, D))
    dhs2 = rng.normal(size=(N, 4, H))
    layer = spec.cls(*params, stateful=True)
    layer.forward(xs1)
    layer.backward(rng.normal(size=(N, 6, H)))
    carried = [getattr(layer, s).copy() for s in spec.states]

    got = run_segment(spec, layer, xs2, dhs2)

    for name, want in spec.fd_grads(xs2, params, carried, dhs2).items():
        assert_allclose(got[name], want, **FD_TOL, err_msg=name)


@each_layer
def test_set_state_starts_the_next_stateful_forward_from_that_state(
    spec: Spec, rng: np.random.Generator
) -> None:
    params = spec.params(rng, D, H)
    layer = spec.cls(*params, stateful=True)
    layer.forward(rng.normal(size=(1, T, D)))  # carried states of batch size 1
    init = spec.initial(rng, 3, H)
    xs = rng.normal(size=(3, T, D))

    layer.set_state(*init)

    for name, s in zip(spec.states, init, strict=True):
        assert_array_equal(getattr(layer, name), s)
    hs_ref, finals = spec.reference(xs, *params, *init)
    assert_allclose(layer.forward(xs), hs_ref, **TIGHT)
    for name, want in zip(spec.states, finals, strict=True):
        assert_allclose(getattr(layer, name), want, **TIGHT, err_msg=name)


@each_layer
def test_reset_state_starts_the_next_forward_from_zeros(
    spec: Spec, rng: np.random.Generator
) -> None:
    params = spec.params(rng, D, H)
    layer = spec.cls(*params, stateful=True)
    layer.set_state(*(np.full((N, H), 0.5) for _ in spec.states))
    layer.forward(rng.normal(size=(N, T, D)))
    xs = rng.normal(size=(4, 3, D))  # a new batch size is fine after a reset

    layer.reset_state()

    assert all(getattr(layer, s) is None for s in spec.states)
    assert_allclose(layer.forward(xs), spec.reference(xs, *params)[0], **TIGHT)


# --- bad input: a clear error and nothing changed ---------------------------------------

Z = np.zeros


def layer_with_state(spec: Spec, rng: np.random.Generator, n: int = N) -> Any:
    """A stateful layer after set_state, forward and backward: states, grads, cache set."""
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    layer.set_state(*spec.initial(rng, n, H))
    layer.forward(rng.normal(size=(n, T, D)))
    layer.backward(rng.normal(size=(n, T, H)))
    return layer


def outcome(fn: Callable[[], Any]) -> Any:
    """What a call did: the exception type it raised, or its result."""
    try:
        return fn()
    except Exception as e:
        return type(e)


def assert_fails_cleanly(
    spec: Spec,
    layer: Any,
    call: Callable[[Any], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
    rng: np.random.Generator,
    n: int = N,
) -> None:
    """call(layer) raises exc_type with every one of `parts` in its message and leaves the
    layer exactly as a deep copy taken before it: same state, and the same outcomes of a
    backward (of the forward before the failure), a forward and a backward after it."""
    twin = copy.deepcopy(layer)
    params, grads = list(layer.params), list(layer.grads)

    with pytest.raises(exc_type) as info:
        call(layer)

    for part in parts:
        assert part in str(info.value), f"{part!r} not in message {str(info.value)!r}"
    assert all(p is q for p, q in zip(layer.params, params, strict=True))
    assert all(g is q for g, q in zip(layer.grads, grads, strict=True))
    assert_same_state(layer_state(spec, layer), layer_state(spec, twin))
    dhs, xs = rng.normal(size=(n, T, H)), rng.normal(size=(n, T, D))
    for step in (lambda l: l.backward(dhs), lambda l: l.forward(xs), lambda l: l.backward(dhs)):
        mine, theirs = outcome(partial(step, layer)), outcome(partial(step, twin))
        if isinstance(theirs, type):
            assert mine is theirs
        else:
            assert_array_equal(mine, theirs)
        assert_same_state(layer_state(spec, layer), layer_state(spec, twin))


BAD_CALLS: dict[str, tuple[Callable[[Any], object], type[Exception], tuple[str, ...]]] = {
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
        ("carried state h", "(2, 4)", "N=3"),
    ),
    "dhs wrong N": (lambda l: l.backward(Z((3, T, H))), ValueError, ("dhs", "(3, 5, 4)", "N=2")),
    "dhs wrong T": (lambda l: l.backward(Z((N, 4, H))), ValueError, ("dhs", "(2, 4, 4)", "T=5")),
    "dhs wrong H": (lambda l: l.backward(Z((N, T, 3))), ValueError, ("dhs", "(2, 5, 3)", "H=4")),
    "dhs 2-D": (lambda l: l.backward(Z((N, H))), ValueError, ("dhs", "(2, 4)", "(N=2, T=5, H=4)")),
    "dhs complex": (lambda l: l.backward(Z((N, T, H), complex)), TypeError, ("dhs", "complex")),
    "set_state h wrong H": (lambda l: l.set_state(Z((N, 5))), ValueError, ("h", "(2, 5)", "H=4")),
    "set_state h 1-D": (lambda l: l.set_state(Z(H)), ValueError, ("h", "(4,)", "(N, H=4)")),
    "set_state h 3-D": (
        lambda l: l.set_state(Z((1, N, H))),
        ValueError,
        ("h", "(1, 2, 4)", "H=4"),
    ),
    "set_state h complex": (
        lambda l: l.set_state(Z((N, H), complex)),
        TypeError,
        ("h", "complex"),
    ),
    "set_state h None": (lambda l: l.set_state(None), TypeError, ("h", "NoneType")),
}


@each_layer
@pytest.mark.parametrize(("call", "exc_type", "parts"), BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_a_bad_call_raises_a_clear_error_and_changes_nothing(
    spec: Spec,
    rng: np.random.Generator,
    call: Callable[[Any], object],
    exc_type: type[Exception],
    parts: tuple[str, ...],
) -> None:
    assert_fails_cleanly(spec, layer_with_state(spec, rng), call, exc_type, parts, rng)


@each_layer
@pytest.mark.parametrize("how", ["set_state", "carried"])
def test_a_state_of_batch_size_one_is_not_broadcast(
    spec: Spec, rng: np.random.Generator, how: str
) -> None:
    """NumPy would silently broadcast a (1, H) state over a batch of 3; the layer must not."""
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    if how == "set_state":
        layer.set_state(*spec.initial(rng, 1, H))
    else:
        layer.forward(rng.normal(size=(1, T, D)))
        layer.backward(rng.normal(size=(1, T, H)))
    parts = ("carried state h", "(1, 4)", "N=3", "reset_state()")
    assert_fails_cleanly(spec, layer, lambda l: l.forward(Z((3, T, D))), ValueError, parts, rng, 1)


@each_layer
def test_backward_before_forward_is_a_runtime_error(spec: Spec, rng: np.random.Generator) -> None:
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    parts = (f"{spec.name}.backward() called before forward()",)
    assert_fails_cleanly(spec, layer, lambda l: l.backward(Z((N, T, H))), RuntimeError, parts, rng)


def params_with(spec: Spec, **changes: Any) -> list[Any]:
    params = dict(zip(("Wx", "Wh", "b"), spec.params(np.random.default_rng(0), D, H)))
    params.update(changes)
    return list(params.values())


ACCEPTED = "float32 or float64"


def bad_params(spec: Spec) -> dict[str, tuple[list[Any], type[Exception], tuple[str, ...]]]:
    """Wrong [Wx, Wh, b] for D=3, H=4 and what the constructor must say about them."""
    g = spec.gates
    G, gH = f"{g}H", g * H  # "4H", 16 for the LSTM
    longdouble = str(np.dtype(np.longdouble))
    swapped = np.dtype(np.float64).newbyteorder()
    return {
        "Wx 1-D": (params_with(spec, Wx=Z(D)), ValueError, ("Wx", "(3,)", f"(D, {G})")),
        "Wx 3-D": (params_with(spec, Wx=Z((D, gH, 1))), ValueError, ("Wx", f"(D, {G})")),
        "Wx empty": (params_with(spec, Wx=Z((0, gH))), ValueError, ("Wx", f"(0, {gH})")),
        "Wx no columns": (params_with(spec, Wx=Z((D, 0))), ValueError, ("Wx", "(3, 0)")),
        "Wx columns not gate blocks": (
            params_with(spec, Wx=Z((D, gH + 1))),
            ValueError,
            ("Wx must have shape", f"(D, {G})", f"(3, {gH + 1})", f"multiple of {g}"),
        ),
        "Wx for H=1": (  # then Wh and b are the wrong size, and the message says why
            params_with(spec, Wx=Z((D, g))),
            ValueError,
            ("Wh must have shape", f"(H, {G}) = (1, {g})", f"to match Wx (3, {g})", f"({H}, {gH})"),
        ),
        "Wh square": (
            params_with(spec, Wh=Z((H, H))),
            ValueError,
            ("Wh", f"(H, {G}) = (4, {gH})", "got (4, 4)"),
        ),
        "Wh wrong H": (
            params_with(spec, Wh=Z((3, gH))),
            ValueError,
            ("Wh", f"(4, {gH})", f"(3, {gH})"),
        ),
        "b 2-D": (params_with(spec, b=Z((1, gH))), ValueError, ("b", f"({G},) = ({gH},)")),
        "b wrong size": (params_with(spec, b=Z(H)), ValueError, ("b", f"({gH},)", "got (4,)")),
        "Wx int": (params_with(spec, Wx=Z((D, gH), int)), TypeError, ("Wx", "int64", ACCEPTED)),
        "Wh int32": (
            params_with(spec, Wh=Z((H, gH), np.int32)),
            TypeError,
            ("Wh", "int32", ACCEPTED),
        ),
        "b bool": (params_with(spec, b=Z(gH, bool)), TypeError, ("b", "bool", ACCEPTED)),
        "Wx complex": (
            params_with(spec, Wx=Z((D, gH), complex)),
            TypeError,
            ("Wx", "complex", ACCEPTED),
        ),
        "Wx float16": (
            params_with(spec, Wx=Z((D, gH), np.float16)),
            TypeError,
            ("Wx", "float16", ACCEPTED),
        ),
        "b longdouble": (
            params_with(spec, b=Z(gH, np.longdouble)),
            TypeError,
            ("b", longdouble, ACCEPTED),
        ),
        "Wx byte-swapped": (
            params_with(spec, Wx=Z((D, gH), swapped)),
            TypeError,
            ("Wx", str(swapped), ACCEPTED),
        ),
        "Wx list": (params_with(spec, Wx=Z((D, gH)).tolist()), TypeError, ("Wx", "list")),
        "mixed f32/f64": (
            params_with(spec, Wx=Z((D, gH), np.float32)),
            TypeError,
            ("Wx, Wh and b must share one dtype", "float32", "float64"),
        ),
    }


BAD_PARAM_CASES = [
    pytest.param(spec, *case, id=f"{spec.name}-{name}")
    for spec in SPECS
    for name, case in bad_params(spec).items()
]


@pytest.mark.parametrize(("spec", "params", "exc_type", "parts"), BAD_PARAM_CASES)
def test_bad_params_are_refused_by_the_constructor(
    spec: Spec, params: list[Any], exc_type: type[Exception], parts: tuple[str, ...]
) -> None:
    with pytest.raises(exc_type) as info:
        spec.cls(*params)
    for part in parts:
        assert part in str(info.value), f"{part!r} not in message {str(info.value)!r}"


@each_layer
def test_params_broken_after_construction_are_caught_before_anything_changes(
    spec: Spec, rng: np.random.Generator
) -> None:
    layer = layer_with_state(spec, rng)
    layer.params[1] = Z((3, 3))
    twin = copy.deepcopy(layer)
    with pytest.raises(ValueError, match=rf"Wh.*\(4, {spec.gates * H}\).*\(3, 3\)"):
        layer.forward(Z((N, T, D)))
    with pytest.raises(ValueError, match="Wh"):
        layer.backward(Z((N, T, H)))
    with pytest.raises(ValueError, match="Wh"):
        layer.set_state(*spec.initial(rng, N, H))
    assert_same_state(layer_state(spec, layer), layer_state(spec, twin))


@each_layer
@pytest.mark.parametrize("dtype", [np.float16, np.longdouble], ids=["float16", "longdouble"])
def test_params_of_a_refused_dtype_set_after_construction_are_refused_by_every_call(
    spec: Spec, rng: np.random.Generator, dtype: Any
) -> None:
    layer = layer_with_state(spec, rng)
    layer.params[:] = [p.astype(dtype) for p in layer.params]
    twin = copy.deepcopy(layer)
    calls = [
        lambda: layer.forward(rng.normal(size=(N, T, D))),
        lambda: layer.backward(rng.normal(size=(N, T, H))),
        lambda: layer.set_state(*spec.initial(rng, N, H)),
    ]
    for call in calls:
        with pytest.raises(TypeError) as info:
            call()
        for part in ("Wx", ACCEPTED, str(np.dtype(dtype))):
            assert part in str(info.value)
        assert_same_state(layer_state(spec, layer), layer_state(spec, twin))
    assert layer.h.dtype == np.float64


# --- a forward that fails part-way -----------------------------------------------------


@contextlib.contextmanager
def numpy_raises(name: str, on_call: int, exc: type[BaseException]) -> Iterator[list[int]]:
    """Inside the block, the on_call-th call (from 1) of np.<name> raises exc (0: none does).

    Stands for what can stop a forward after it has begun to overwrite its buffers: a
    KeyboardInterrupt (Ctrl-C in a long forward), a MemoryError. Yields [calls so far].
    """
    real = getattr(np, name)
    calls = [0]

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == on_call:
            raise exc(f"injected into call {calls[0]} of np.{name}")
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, name, failing)
        yield calls
    assert calls[0] >= on_call, f"np.{name} was called only {calls[0]} times, not {on_call}"


def tanh_calls_of_a_forward(spec: Spec, layer: Any, xs: Array) -> int:
    dup = copy.deepcopy(layer)
    with numpy_raises("tanh", 0, KeyboardInterrupt) as calls:
        dup.forward(xs)
    return calls[0]


@each_layer
@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
@pytest.mark.parametrize("where", ["projection", "first tanh", "last tanh"])
@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
@pytest.mark.parametrize("new_T", [T, T + 2], ids=["same shape", "new shape"])
def test_backward_after_a_forward_that_failed_part_way_is_refused(
    spec: Spec,
    rng: np.random.Generator,
    exc: type[BaseException],
    where: str,
    stateful: bool,
    new_T: int,
) -> None:
    """No backward of half-overwritten buffers; h (and c) as before; the next forward works."""
    params = spec.params(rng, D, H)
    layer = spec.cls(*params, stateful=stateful)
    layer.set_state(*spec.initial(rng, N, H))
    layer.forward(rng.normal(size=(N, T, D)))  # a completed forward: its buffers get reused
    dhs_done = rng.normal(size=(N, T, H))
    layer.backward(dhs_done)
    before = layer_state(spec, layer)
    states = [getattr(layer, s) for s in spec.states]
    twin = copy.deepcopy(layer)
    xs, dhs = rng.normal(size=(N, new_T, D)), rng.normal(size=(N, new_T, H))
    point = {
        "projection": ("dot", 1),  # the input projections of all steps, the first product
        "first tanh": ("tanh", 1),
        "last tanh": ("tanh", tanh_calls_of_a_forward(spec, layer, xs)),
    }[where]

    with numpy_raises(*point, exc), pytest.raises(exc, match="injected"):
        layer.forward(xs)

    for name, s in zip(spec.states, states, strict=True):
        assert getattr(layer, name) is s, name  # not half-updated: the states before the call
    for d in (dhs, dhs_done):
        with pytest.raises(RuntimeError) as info:
            layer.backward(d)
        msg = str(info.value)
        assert "backward() called without a completed forward()" in msg and exc.__name__ in msg
    assert_same_state(layer_state(spec, layer), before)  # the refused backward wrote nothing

    # The next forward works normally, from the states the failed one started from.
    hs = layer.forward(xs)
    init = [before[s] for s in spec.states] if stateful else []
    assert_allclose(hs, spec.reference(xs, *params, *init)[0], **TIGHT)
    assert_array_equal(hs, twin.forward(xs))
    assert_array_equal(layer.backward(dhs), twin.backward(dhs))
    assert_same_state(layer_state(spec, layer), layer_state(spec, twin))


@each_layer
def test_a_forward_that_failed_its_checks_keeps_the_last_forward_for_backward(
    spec: Spec, rng: np.random.Generator
) -> None:
    layer = spec.cls(*spec.params(rng, D, H))
    layer.forward(rng.normal(size=(N, T, D)))
    dhs = rng.normal(size=(N, T, H))
    want = layer.backward(dhs)
    with pytest.raises(ValueError):
        layer.forward(Z((N, T, D + 1)))
    assert_array_equal(layer.backward(dhs), want)


@each_layer
def test_a_copy_of_a_layer_whose_forward_failed_refuses_backward_too(
    spec: Spec, rng: np.random.Generator
) -> None:
    layer = spec.cls(*spec.params(rng, D, H))
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


# --- copy.copy and copy.deepcopy -------------------------------------------------------

COPIES: dict[str, Callable[[Any], Any]] = {"copy": copy.copy, "deepcopy": copy.deepcopy}
how = pytest.mark.parametrize("how", COPIES.values(), ids=COPIES.keys())
stateful = pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])


def layer_mid_batch(spec: Spec, rng: np.random.Generator, stateful: bool) -> Any:
    """After forward + backward and forward again: every buffer allocated, grads non-zero,
    a cache waiting for its backward."""
    layer = spec.cls(*spec.params(rng, D, H), stateful=stateful)
    layer.set_state(*spec.initial(rng, N, H))
    layer.forward(rng.normal(size=(N, T, D)))
    layer.backward(rng.normal(size=(N, T, H)))
    layer.forward(rng.normal(size=(N, T, D)))
    return layer


def run_other_batches(spec: Spec, layer: Any, rng: np.random.Generator) -> None:
    """Batches of the same shape (where shared buffers would be overwritten), then others."""
    for _ in range(2):
        layer.forward(rng.normal(size=(N, T, D)))
        layer.backward(rng.normal(size=(N, T, H)))
    layer.set_state(*spec.initial(rng, N + 1, H))
    layer.forward(rng.normal(size=(N + 1, T + 2, D)))
    layer.backward(rng.normal(size=(N + 1, T + 2, H)))


@each_layer
@how
@stateful
@pytest.mark.parametrize("run", ["copy", "original"])
def test_running_one_of_a_layer_and_its_copy_does_not_change_the_other(
    spec: Spec, rng: np.random.Generator, how: Callable[[Any], Any], stateful: bool, run: str
) -> None:
    """Either can take the backward of the original's last forward, whatever the other did."""
    layer = layer_mid_batch(spec, rng, stateful)
    dhs = rng.normal(size=(N, T, H))
    before = layer_state(spec, layer)
    want = run_segment_backward(spec, copy.deepcopy(layer), dhs)

    dup = how(layer)
    busy, kept = (dup, layer) if run == "copy" else (layer, dup)
    run_other_batches(spec, busy, rng)

    assert_same_state(layer_state(spec, kept), before)
    got = run_segment_backward(spec, kept, dhs)
    for name in want:
        assert_array_equal(got[name], want[name], err_msg=name)


@each_layer
@how
@stateful
def test_the_copy_continues_where_the_original_is(
    spec: Spec, rng: np.random.Generator, how: Callable[[Any], Any], stateful: bool
) -> None:
    layer = layer_mid_batch(spec, rng, stateful)
    init = [getattr(layer, s).copy() for s in spec.states] if stateful else []
    dup = how(layer)
    assert dup.stateful is layer.stateful
    xs, dhs = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))

    got = run_segment(spec, dup, xs, dhs)

    assert_allclose(got["hs"], spec.reference(xs, *layer.params, *init)[0], **TIGHT)
    want = run_segment(spec, layer, xs, dhs)
    for name in want:
        assert_array_equal(got[name], want[name], err_msg=name)


@each_layer
def test_a_shallow_copy_shares_the_parameter_arrays_and_nothing_else(
    spec: Spec, rng: np.random.Generator
) -> None:
    layer = layer_mid_batch(spec, rng, stateful=True)
    layer.backward(rng.normal(size=(N, T, H)))
    dup = copy.copy(layer)

    assert dup.params is not layer.params
    assert all(p is q for p, q in zip(dup.params, layer.params, strict=True))
    assert dup.grads is not layer.grads
    for name in (*spec.states, *spec.grad_names):
        assert not np.shares_memory(getattr(dup, name), getattr(layer, name)), name
    for g, g0 in zip(dup.grads, layer.grads, strict=True):
        assert not np.shares_memory(g, g0)
    assert_same_state(layer_state(spec, dup), layer_state(spec, layer))

    # An optimizer step on the original's params is one on the copy's.
    xs = rng.normal(size=(N, T, D))
    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.1 * g
    layer.reset_state()
    dup.reset_state()
    assert_array_equal(dup.forward(xs), layer.forward(xs))


@each_layer
def test_a_deep_copy_shares_nothing(spec: Spec, rng: np.random.Generator) -> None:
    layer = layer_mid_batch(spec, rng, stateful=True)
    layer.backward(rng.normal(size=(N, T, H)))
    dup = copy.deepcopy(layer)

    for a, b in [*zip(dup.params, layer.params), *zip(dup.grads, layer.grads)]:
        assert not np.shares_memory(a, b)
    for name in (*spec.states, *spec.grad_names):
        assert not np.shares_memory(getattr(dup, name), getattr(layer, name)), name
    assert_same_state(layer_state(spec, dup), layer_state(spec, layer))

    # An optimizer step on the original leaves the copy's params alone.
    xs = rng.normal(size=(N, T, D))
    dup.reset_state()
    want = dup.forward(xs)
    for p, g in zip(layer.params, layer.grads, strict=True):
        p -= 0.1 * g
    dup.reset_state()
    assert_array_equal(dup.forward(xs), want)


@each_layer
def test_a_new_layer_and_its_copy_work_on_their_own(spec: Spec, rng: np.random.Generator) -> None:
    layer = spec.cls(*spec.params(rng, D, H), stateful=True)
    for dup in (copy.copy(layer), copy.deepcopy(layer)):
        with pytest.raises(RuntimeError, match="before forward"):
            dup.backward(Z((N, T, H)))
        run_segment(spec, dup, rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H)))
    assert all(getattr(layer, n) is None for n in (*spec.states, *spec.grad_names))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(Z((N, T, H)))
