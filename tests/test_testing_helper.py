"""crosscheck.testing: the one-line pytest helper and the hypothesis strategy for cases."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from crosscheck_helpers import SMALL_CASES
from hypothesis import find, given, settings

from crosscheck.cases import NDH_POOL, T_POOL, Case, Segment, parse_case
from crosscheck.render import verdict
from crosscheck.testing import assert_layer_matches, cases, failure_message
from crosscheck.verification import verify
from handrnn import TimeRNN


class DxsOnePercentOff(TimeRNN):
    """Right in everything but dxs, which is 1% too large."""

    def backward(self, dhs: Any) -> Any:
        return super().backward(dhs) * 1.01


def test_passes_for_handrnn_and_returns_the_report() -> None:
    report = assert_layer_matches(TimeRNN, cases=list(SMALL_CASES), backends=["numeric"])
    assert report.ok
    assert report.checked == {"numeric": len(SMALL_CASES)}


def test_a_wrong_layer_fails_with_the_verdict_first_then_the_cli_report() -> None:
    with pytest.raises(AssertionError) as info:
        assert_layer_matches(DxsOnePercentOff, cases=list(SMALL_CASES), backends=["numeric"])
    assert type(info.value) is AssertionError  # pytest's summary: "AssertionError: FAIL: ..."
    message = str(info.value)
    first, *rest = message.splitlines()
    assert first.startswith("FAIL: ") and "DxsOnePercentOff is wrong on" in first
    assert first.endswith("(dxs)")
    text = "\n".join(rest)
    assert "Rerun the first failing case alone:" in text
    assert "python -m crosscheck --layer" in text and "--case" in text
    assert "array(" not in message and "Traceback" not in message
    assert text.count(first) == 0  # the verdict is not repeated at the end


def test_a_run_in_which_no_oracle_checked_anything_does_not_pass() -> None:
    too_big_for_numeric = parse_case("f64:N6:D10:H10:small:stateless:64z:5")
    with pytest.raises(AssertionError):
        assert_layer_matches(TimeRNN, cases=[too_big_for_numeric], backends=["numeric"])


def test_failure_message_is_the_verdict_then_the_text_report() -> None:
    report = verify(DxsOnePercentOff, cases=list(SMALL_CASES[:1]), backends=["numeric"])
    message = failure_message(report)
    assert message.splitlines()[0] == verdict(report)
    assert message.splitlines()[2].startswith("crosscheck ")


# --- the strategy ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(cases())
def test_every_drawn_case_is_valid_and_round_trips(case: Case) -> None:
    assert parse_case(case.id) == case
    assert (case.N, case.D, case.H) in NDH_POOL
    assert all(s.T in T_POOL for s in case.segments)
    assert 1 <= len(case.segments) <= 4
    for k, seg in enumerate(case.segments):
        if not case.stateful:
            assert seg.start == "z"
        else:  # the reference starts a "z" segment from zeros: only segment 0 may be one
            assert seg.start in (("z", "s") if k == 0 else ("c", "s", "r"))
    data = case.data()
    assert data.segments[0].xs.shape == (case.N, case.segments[0].T, case.D)


@settings(max_examples=30, deadline=None)
@given(cases(dtypes=["float64"], regimes=["saturating"], max_T=3, max_segments=2))
def test_the_strategy_respects_its_options(case: Case) -> None:
    assert case.dtype == "float64" and case.regime == "saturating"
    assert len(case.segments) <= 2 and all(s.T <= 3 for s in case.segments)


def test_the_strategy_refuses_options_no_case_fits() -> None:
    with pytest.raises(ValueError, match="no case fits"):
        cases(max_T=0)


def test_a_failing_case_shrinks_to_the_simplest_one() -> None:
    found = find(
        cases(),
        lambda c: (
            not verify(
                DxsOnePercentOff, cases=[c], backends=["numeric"], explain=False, isolate=False
            ).ok
        ),
        settings=settings(database=None, max_examples=200, deadline=None),
    )
    assert found == Case("float32", 1, 1, 1, "small", False, (Segment(1),), 0)


# What an instructor writes: a property test over cases, with the one-line helper.
@settings(max_examples=8, deadline=None)
@given(cases(max_T=5, max_segments=2))
def test_property_handrnn_matches_torch_on_any_case(case: Case) -> None:
    report = assert_layer_matches(TimeRNN, cases=[case], backends=["torch"])
    assert report.checked["torch"] == 1  # judged, not skipped


def test_importing_crosscheck_testing_does_not_import_hypothesis_or_pytest() -> None:
    probe = (
        "import sys, crosscheck.testing\n"
        "print('hypothesis' in sys.modules, 'pytest' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
