"""crosscheck.twin and the float32 part of the tolerance model (crosscheck.compare)."""

from __future__ import annotations

import numpy as np
import pytest

from crosscheck import compare
from crosscheck.cases import generate_cases, parse_case
from crosscheck.mistakes import simulate
from crosscheck.quantities import positions
from crosscheck.twin import errors, run_twin
from crosscheck.verification import verify

# seed 4242's false alarm under RTOL * sqrt(steps) alone: dWx 2.6e-4 against 2.4e-4.
ILL = parse_case("f32:N4:D5:H3:exploding:stateful:64z,64r,64r2*:129057371")


def test_the_twin_is_the_recurrence_in_float32() -> None:
    for case in generate_cases(20, 3, ["float32"]):
        twin = run_twin(case)
        assert all(s.hs.dtype == np.float32 for s in twin)
        ref = simulate(case, case.data())
        errs = errors(twin, ref)
        assert set(errs) == set(positions(ref))
        # float32 rounding, amplified at most by the case's conditioning
        assert max(errs.values()) < 1e-2, case.id


def test_the_twin_raises_the_threshold_only_where_the_case_amplifies_rounding() -> None:
    ref = simulate(ILL, ILL.data())
    errs = errors(run_twin(ILL), ref)
    p = (2, 1, "dWx")
    old = compare.limit(ILL, p, 0.0)
    new = compare.limit(ILL, p, 0.0, twin_error=errs[p])
    assert new == pytest.approx(compare.TWIN_FACTOR * errs[p]) and new > old
    calm = parse_case("f32:N2:D3:H4:small:stateless:8z:1")
    ref = simulate(calm, calm.data())
    for q, e in errors(run_twin(calm), ref).items():
        assert compare.limit(calm, q, 0.0, twin_error=e) == compare.limit(calm, q, 0.0)


def test_float64_thresholds_ignore_the_twin() -> None:
    case = parse_case("f64:N2:D3:H4:exploding:stateful:16z,16c:1")
    p = (0, 0, "dWh")
    assert compare.limit(case, p, 0.0, twin_error=1.0) == compare.limit(case, p, 0.0)
    assert compare.threshold("float32", 4, 0.0, float("nan")) == compare.threshold("float32", 4)


@pytest.mark.torch
def test_the_ill_conditioned_case_passes_correct_layers_and_catches_a_stray_factor() -> None:
    pytest.importorskip("torch")
    for spec in ("handrnn:TimeRNN", "tests.catalog.book_original:TimeRNN",
                 "tests.catalog.correct_vectorized:TimeRNN"):  # fmt: skip
        report = verify(spec, cases=[ILL], backends=["torch"], explain=False)
        assert report.ok, spec
    wrong = verify("tests.catalog.wrong_dwh_off_by_0p1pct:TimeRNN", cases=[ILL],
                   backends=["torch"], explain=False)  # fmt: skip
    assert {f.quantity for f in wrong.failures} == {"dWh"}
