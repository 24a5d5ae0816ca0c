"""crosscheck.compare: the one tolerance model and the relative error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from crosscheck_helpers import HandrnnOracle, run_by_hand

from crosscheck import compare
from crosscheck.cases import generate_cases
from crosscheck.oracles import load_backend, reference
from crosscheck.quantities import QUANTITIES, positions
from handrnn import TimeRNN


def test_threshold_grows_with_the_square_root_of_steps() -> None:
    for dtype in ("float32", "float64"):
        one = compare.threshold(dtype, 1)
        assert compare.threshold(dtype, 4) == pytest.approx(2 * one)
        assert compare.threshold(dtype, 256) == pytest.approx(16 * one)
        assert compare.threshold(dtype, 0) == one  # never below one step's worth


def test_threshold_is_set_by_dtype() -> None:
    f32, f64 = compare.threshold("float32", 10), compare.threshold("float64", 10)
    assert f32 > 1e4 * f64
    # float32 rounding is caught at float64; float32 is allowed a few float32 roundings.
    assert compare.threshold("float64", 256) < np.finfo(np.float32).eps
    assert compare.threshold("float32", 1) > np.finfo(np.float32).eps


def test_threshold_respects_oracle_accuracy() -> None:
    assert compare.threshold("float64", 1, oracle_accuracy=1e-8) == pytest.approx(4e-8)
    # An accurate oracle does not loosen anything.
    assert compare.threshold("float32", 9, 1e-12) == compare.threshold("float32", 9)


def test_agreement_threshold_follows_the_less_accurate_oracle() -> None:
    assert compare.agreement_threshold(1e-12, 1e-8) == pytest.approx(4e-8)
    assert compare.agreement_threshold(1e-8, 1e-12) == pytest.approx(4e-8)
    assert compare.agreement_threshold(0.0, 0.0) >= compare.RTOL["float64"]


def test_relative_error_is_max_abs_difference_over_reference_scale() -> None:
    ref = np.array([[1.0, -4.0], [2.0, 0.5]])
    obs = ref + np.array([[0.0, 0.0], [0.002, -0.001]])
    err = compare.relative_error("dWh", obs, ref)
    assert err.error == pytest.approx(0.002 / 4.0)
    assert err.worst == (1, 0)
    assert err.per_step is None and err.first_bad_step(0.0) is None


def test_relative_error_floor_keeps_vanishing_references_from_exploding() -> None:
    ref = np.full((2, 3), 1e-30)
    obs = ref + 1e-9
    assert compare.relative_error("dh", obs, ref).error == pytest.approx(1e-9 / compare.FLOOR)
    # Above the floor the reference's own scale is used.
    big = np.full(3, 10 * compare.FLOOR)
    assert compare.relative_error("db", big * 1.01, big).error == pytest.approx(0.01)


def test_relative_error_accepts_float32_observed() -> None:
    ref = np.linspace(-1, 1, 12).reshape(3, 4)
    obs = ref.astype(np.float32)
    err = compare.relative_error("dWx", obs, ref).error
    assert 0 < err <= np.finfo(np.float32).eps


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_observed_is_an_infinite_error_that_never_passes(bad: float) -> None:
    ref = np.ones((2, 5, 3))
    obs = ref.copy()
    obs[1, 3, 2] = bad
    err = compare.relative_error("hs", obs, ref)
    assert err.error == math.inf
    assert not err.error <= 1e300
    assert err.worst == (1, 3, 2)
    assert err.first_bad_step(1e300) == 3


def test_all_nan_observed_never_passes() -> None:
    err = compare.relative_error("db", np.full(4, np.nan), np.zeros(4))
    assert not err.error <= 1e300


def test_per_step_errors_and_first_bad_step_for_time_indexed_quantities() -> None:
    ref = np.ones((2, 6, 3))
    obs = ref.copy()
    obs[0, 2, 1] += 1e-6  # small: within a 1e-5 limit
    obs[1, 4, 0] += 1e-3  # first step beyond it
    obs[0, 5, 2] += 1e-2  # the worst
    for q in ("hs", "dxs"):
        err = compare.relative_error(q, obs, ref)
        assert err.per_step == pytest.approx([0, 0, 1e-6, 0, 1e-3, 1e-2], abs=1e-12)
        assert err.first_bad_step(1e-5) == 4
        assert err.first_bad_step(1e-7) == 2
        assert err.first_bad_step(1.0) is None
        assert err.worst == (0, 5, 2)
        assert err.error == pytest.approx(1e-2)


def test_only_hs_and_dxs_are_time_indexed() -> None:
    for q in QUANTITIES:
        shape = (2, 3, 4) if q in ("hs", "dxs") else (3, 4)
        err = compare.relative_error(q, np.ones(shape), np.ones(shape))
        assert (err.per_step is not None) == (q in ("hs", "dxs")), q


def test_empty_arrays_have_no_error() -> None:
    assert compare.relative_error("db", np.zeros(0), np.zeros(0)).error == 0.0


# The claim behind the constants: a correct float32 layer passes against a float64
# reference, and the same values 0.1% off fail, on every quantity whose reference is
# above the floor. handrnn in float32 is the correct layer here.
CASES_F32 = generate_cases(16, seed=5, dtypes=["float32"])


def _tight_and_loose(oracle: object, cases: list) -> int:
    refs = reference(oracle, cases)  # type: ignore[arg-type]
    assessed = 0
    for c, ref in zip(cases, refs):
        assert ref is not None
        got = run_by_hand(TimeRNN, c)
        for k, (seg_got, seg_ref) in enumerate(zip(got, ref)):
            limit = compare.threshold(c.dtype, c.chain_steps(k), oracle.accuracy)  # type: ignore[attr-defined]
            for _, j, q in positions([seg_ref]):
                obs, exp = seg_got.get(q, j or 0), seg_ref.get(q, j or 0)
                assert obs.dtype == np.float32
                where = f"{c.id} segment {k} call {j} {q}"
                assert compare.relative_error(q, obs, exp).error <= limit, where
                if compare.scale(exp) > compare.FLOOR:
                    off = compare.relative_error(q, obs * np.float32(1.001), exp).error
                    assert off > limit, where
                    assessed += 1
    return assessed


def test_float32_layer_passes_and_the_same_output_0p1_percent_off_fails() -> None:
    assert len({c.regime for c in CASES_F32}) >= 3
    assert max(c.total_steps for c in CASES_F32) >= 128  # long chains are in
    assert _tight_and_loose(HandrnnOracle(), CASES_F32) > 200


@pytest.mark.jax
def test_float32_layer_passes_and_0p1_percent_off_fails_against_jax() -> None:
    pytest.importorskip("jax")
    (oracle,) = load_backend("jax")
    assert _tight_and_loose(oracle, CASES_F32[:6]) > 40
