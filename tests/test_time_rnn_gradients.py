"""TimeRNN's numbers: forward against a plain loop, backward against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_params, reference_forward, reference_grads
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from handrnn import TimeRNN

sizes = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
scales = st.sampled_from([0.3, 1.0, 2.5])  # small, moderate, saturating weights


def run_segment(layer: TimeRNN, xs: np.ndarray, dhs: np.ndarray) -> dict[str, np.ndarray]:
    """One forward + backward; everything the layer produced, copied."""
    hs = layer.forward(xs)
    h = layer.h.copy()
    dxs = layer.backward(dhs)
    dWx, dWh, db = (g.copy() for g in layer.grads)
    return {"hs": hs, "h": h, "dxs": dxs, "dWx": dWx, "dWh": dWh, "db": db, "dh": layer.dh}


@settings(max_examples=60, deadline=None)
@given(N=sizes, T=sizes, D=sizes, H=sizes, scale=scales, seed=seeds, from_zeros=st.booleans())
@example(N=1, T=1, D=1, H=1, scale=1.0, seed=0, from_zeros=False)
@example(N=1, T=6, D=1, H=6, scale=1.0, seed=1, from_zeros=True)
@example(N=6, T=1, D=6, H=1, scale=1.0, seed=2, from_zeros=False)
def test_forward_and_backward_match_plain_loop_and_finite_differences(
    N: int, T: int, D: int, H: int, scale: float, seed: int, from_zeros: bool
) -> None:
    rng = np.random.default_rng(seed)
    Wx, Wh, b = make_params(rng, D, H, np.float64, scale)
    xs = rng.normal(size=(N, T, D))
    dhs = rng.normal(size=(N, T, H))
    if from_zeros:
        layer = TimeRNN(Wx, Wh, b, stateful=False)
        h0 = np.zeros((N, H))
    else:
        layer = TimeRNN(Wx, Wh, b, stateful=True)
        h0 = rng.uniform(-0.9, 0.9, size=(N, H))
        layer.set_state(h0)

    got = run_segment(layer, xs, dhs)

    hs_ref, h_ref = reference_forward(xs, Wx, Wh, b, h0)
    assert_allclose(got["hs"], hs_ref, rtol=1e-12, atol=1e-12)
    assert_allclose(got["h"], h_ref, rtol=1e-12, atol=1e-12)
    fd = reference_grads(xs, Wx, Wh, b, h0, dhs)
    for name, want in fd.items():
        assert got[name].shape == want.shape, name
        assert_allclose(got[name], want, rtol=1e-5, atol=1e-7, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(N=sizes, T=sizes, D=sizes, H=sizes, seed=seeds)
@example(N=1, T=1, D=1, H=1, seed=0)
def test_float32_layer_computes_in_float32_close_to_float64(
    N: int, T: int, D: int, H: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    params64 = make_params(rng, D, H, np.float64)
    params32 = tuple(p.astype(np.float32) for p in params64)
    xs = rng.normal(size=(N, T, D)).astype(np.float32)
    dhs = rng.normal(size=(N, T, H)).astype(np.float32)

    got32 = run_segment(TimeRNN(*params32), xs, dhs)
    # The float64 run sees exactly the float32 inputs, so only rounding differs.
    want64 = run_segment(TimeRNN(*(p.astype(np.float64) for p in params32)), xs, dhs)

    for name, want in want64.items():
        assert got32[name].dtype == np.float32, name
        assert_allclose(got32[name], want, rtol=3e-4, atol=3e-5, err_msg=name)


@pytest.mark.parametrize("param_dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "data_dtype", [np.float32, np.float64, np.int64, np.float16, np.longdouble]
)
def test_outputs_take_the_params_dtype_whatever_the_data_dtype(
    rng: np.random.Generator, param_dtype: type, data_dtype: type
) -> None:
    layer = TimeRNN(*make_params(rng, 3, 4, param_dtype), stateful=True)
    layer.set_state(rng.normal(size=(2, 4)).astype(data_dtype))
    assert layer.h.dtype == param_dtype
    hs = layer.forward(rng.normal(size=(2, 5, 3)).astype(data_dtype))
    dxs = layer.backward(rng.normal(size=(2, 5, 4)).astype(data_dtype))
    for arr in (hs, dxs, layer.h, layer.dh, *layer.grads):
        assert arr.dtype == param_dtype


@pytest.mark.parametrize("param_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_dtype", [np.float16, np.longdouble], ids=["float16", "longdouble"])
def test_data_of_another_float_dtype_is_cast_to_the_params_dtype_first(
    rng: np.random.Generator, param_dtype: type, data_dtype: type
) -> None:
    """Params must be float32 or float64; the data (xs, dhs, the state given to set_state)
    may be any real dtype, and the layer computes on it cast to the params' dtype."""
    params = make_params(rng, 3, 4, param_dtype)
    h0 = rng.uniform(-0.9, 0.9, size=(2, 4)).astype(data_dtype)
    xs = rng.normal(size=(2, 5, 3)).astype(data_dtype)
    dhs = rng.normal(size=(2, 5, 4)).astype(data_dtype)

    def run(cast: type | None) -> dict[str, np.ndarray]:
        layer = TimeRNN(*params, stateful=True)
        layer.set_state(h0 if cast is None else h0.astype(cast))
        if cast is None:
            return run_segment(layer, xs, dhs)
        return run_segment(layer, xs.astype(cast), dhs.astype(cast))

    got, want = run(None), run(param_dtype)
    for name in want:
        assert got[name].dtype == param_dtype, name
        assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_memory_layout_of_params_and_data_does_not_change_the_numbers(
    rng: np.random.Generator, dtype: type
) -> None:
    """Fortran-ordered, transposed and strided arrays give what contiguous copies give."""
    N, T, D, H = 3, 4, 5, 6
    Wx, Wh, b = make_params(rng, D, H, dtype)
    xs = rng.normal(size=(N, T, D)).astype(dtype)
    dhs = rng.normal(size=(N, T, H)).astype(dtype)
    h0 = rng.normal(size=(N, H)).astype(dtype)
    odd_params = (
        np.asfortranarray(Wx),
        np.ascontiguousarray(Wh.T).T,  # same values, transposed strides
        np.repeat(b, 2)[::2],  # strided view
    )
    odd_xs = np.ascontiguousarray(xs.transpose(2, 1, 0)).transpose(2, 1, 0)
    odd_dhs = np.ascontiguousarray(dhs.transpose(1, 2, 0)).transpose(2, 0, 1)
    odd_h0 = np.asfortranarray(h0)

    def run(params: tuple[np.ndarray, ...], xs: np.ndarray, dhs: np.ndarray, h0: np.ndarray):
        layer = TimeRNN(*params, stateful=True)
        layer.set_state(h0)
        got = run_segment(layer, xs, dhs)
        again = layer.backward(dhs)  # backward twice: no stale state from odd layouts
        assert_allclose(again, got["dxs"], rtol=0, atol=0)
        return got

    want = run((Wx, Wh, b), xs, dhs, h0)
    got = run(odd_params, odd_xs, odd_dhs, odd_h0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name in want:
        assert_allclose(got[name], want[name], rtol=tol, atol=tol, err_msg=name)
