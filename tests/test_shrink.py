"""crosscheck.shrink: the smallest case that still fails, its numbers, and the report sections.

Wrong layers come from the catalog (tests/catalog/). The predicate here judges each
candidate in this process against finite differences (verify's own predicate runs the
layer in a worker, tested at the end).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import crosscheck.shrink as shrink_module
from crosscheck import verify
from crosscheck.cases import Case, parse_case
from crosscheck.drive import drive
from crosscheck.oracles import load_backend, reference
from crosscheck.render import dump_json, render_text
from crosscheck.shrink import Predicate, numbers
from crosscheck.shrink import shrink as shrink_case
from handrnn import TimeRNN

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.catalog.*`
    sys.path.insert(0, str(ROOT))

# Large enough to shrink: four segments with every start, a second backward, a scribble.
BIG = parse_case("f32:N4:D5:H3:saturating:stateful:8s,8c2,8r*,8c:3")


def wrong(name: str) -> Any:
    return importlib.import_module(f"tests.catalog.wrong_{name}").TimeRNN


NUMERIC = load_backend("numeric")


def fails(layer: Any, case: Case) -> frozenset[tuple[str, str]]:
    report = verify(layer, cases=[case], oracles=NUMERIC, explain=False, isolate=False)
    return frozenset((f.kind, f.quantity) for f in report.failures)


def predicate(layer: Any) -> Predicate:
    return lambda case: fails(layer, case)


def shrink(layer: Any, case: Case) -> Case:
    # Results must not depend on how busy the machine is: bound the calls, not the time.
    return shrink_case(case, predicate(layer), max_seconds=1e9)


def numbers_of(layer: Any, case: Case) -> list[str]:
    ref = reference(NUMERIC[0], [case])[0]
    return numbers(case, drive(layer, case), ref, NUMERIC[0].accuracy)


def no_larger(small: Case, big: Case) -> bool:
    return (
        small.N <= big.N
        and small.D <= big.D
        and small.H <= big.H
        and len(small.segments) <= len(big.segments)
        and max(s.T for s in small.segments) <= max(s.T for s in big.segments)
        and small.total_steps <= big.total_steps
        and sum(s.backwards for s in small.segments) <= sum(s.backwards for s in big.segments)
    )


def test_a_missing_branch_sum_shrinks_to_two_steps_of_size_one() -> None:
    small = shrink(wrong("no_branch_sum"), BIG)
    assert [s.T for s in small.segments] == [2]
    assert (small.N, small.D, small.H) == (1, 1, 1)
    assert small.dtype == "float64"  # preferred when it still fails
    assert small.segments[0].backwards == 1 and not small.segments[0].scribble


# catalog layer -> what its smallest failing case needs
NEEDS = {
    "no_branch_sum": "T == 2",
    "dh_prev_no_transpose": "H == 2",
    "db_batch_mean": "N == 2",
    "grads_accumulate_across_calls": "two backward calls",
    "stateless_carries": "two segments",
    "reuses_hs_buffer": "two segments",
    "branch_sum_in_place": "T == 2",
    "params_copied": "anything",
}


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_shrunken_case_still_fails_and_is_no_larger(name: str) -> None:
    big = (
        BIG
        if name != "stateless_carries"
        else parse_case("f32:N4:D5:H3:moderate:stateless:8z,8z2*,6z:3")
    )
    layer = wrong(name)
    before = fails(layer, big)
    assert before
    small = shrink(layer, big)
    assert fails(layer, small) & before
    assert no_larger(small, big)
    assert small.N * small.D * small.H <= 2, small.id  # tiny: at most one size is 2
    assert small.total_steps <= 2, small.id


def test_a_mismatch_is_kept_when_a_protocol_problem_alone_would_be_smaller() -> None:
    """backward_squares_cache changes layer.h after forward (protocol, visible at T = 1) and
    gets a second backward wrong (mismatch): the shrunken case must still show wrong values."""
    layer = wrong("backward_squares_cache")
    small = shrink(layer, BIG)
    assert any(kind == "mismatch" for kind, _ in fails(layer, small)), small.id
    assert no_larger(small, BIG)


def test_a_passing_case_is_returned_unchanged() -> None:
    assert shrink(TimeRNN, BIG) == BIG


def test_the_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = shrink_module._Checker.signature

    def counted(self: Any, case: Case) -> Any:
        calls.append(case.id)
        return real(self, case)

    monkeypatch.setattr(shrink_module._Checker, "signature", counted)
    small = shrink_case(BIG, predicate(wrong("no_branch_sum")), max_calls=5)
    assert len(set(calls)) <= 5
    assert fails(wrong("no_branch_sum"), small)


def test_numbers_show_the_first_wrong_entries_beside_the_reference() -> None:
    small = parse_case("f64:N1:D1:H1:moderate:stateless:2z:1302740408")
    lines = numbers_of(wrong("no_branch_sum"), small)
    wrong_lines = [line for line in lines if not line.startswith("input")]
    assert wrong_lines[0].startswith("dxs[0, 0, 0] (segment 0, backward call 0): layer -0.0368872")
    assert "reference -0.0344537" in wrong_lines[0]
    assert {line.split("[")[0] for line in wrong_lines} == {"dxs", "dWx", "db", "dh"}
    assert "input xs = [[[1.255474], [-0.583766]]]" in lines
    assert "input dhs = [[[-0.566855], [1.272787]]]" in lines


def test_numbers_of_a_protocol_failure_say_what_happened() -> None:
    small = parse_case("f64:N1:D1:H1:moderate:stateless:2z:1302740408")
    lines = numbers_of(wrong("branch_sum_in_place"), small)
    assert lines[0] == "segment 0: the dhs given to backward in segment 0 was changed by the layer"


def test_numbers_show_enough_digits_for_a_precision_bug() -> None:
    small = parse_case("f64:N1:D1:H1:moderate:stateless:1z:2055323745")
    lines = numbers_of(wrong("xs_cast_float32"), small)
    first = lines[0].split(": ", 1)[1]
    layer_value, reference_value = (part.split()[-1] for part in first.split(", "))
    assert layer_value != reference_value


# --------------------------------------------------------------------------------------
# verify(explain=True) fills the report; the renderers show it.


def test_verify_explains_the_first_failing_case_and_renders_it() -> None:
    report = verify(wrong("no_branch_sum"), cases=[BIG], backends=["numeric"])
    assert report.diagnosis and report.diagnosis[0].startswith("dxs, dWx, dWh, db and dh match")
    assert report.smallest_case is not None
    small = parse_case(report.smallest_case)
    assert [s.T for s in small.segments] == [2] and (small.N, small.D, small.H) == (1, 1, 1)
    assert report.smallest_reproducer is not None
    assert f"--case {report.smallest_case}" in report.smallest_reproducer
    assert report.numbers

    text = render_text(report)
    assert "\nLikely cause:\n  - dxs, dWx, dWh, db and dh match" in text
    assert (
        f"\nSmallest failing case: {report.smallest_case}\n  {report.smallest_reproducer}\n" in text
    )
    assert text.index("FAIL:") < text.index("Likely cause") < text.index("Smallest failing case")

    data = json.loads(dump_json(report))
    assert data["diagnosis"] == report.diagnosis
    assert data["smallest_case"] == report.smallest_case
    assert data["smallest_reproducer"] == report.smallest_reproducer
    assert data["numbers"] == report.numbers


def test_explain_false_leaves_the_report_plain() -> None:
    report = verify(wrong("no_branch_sum"), cases=[BIG], backends=["numeric"], explain=False)
    assert not report.ok
    assert report.diagnosis == [] and report.smallest_case is None and report.numbers == []
    assert "Likely cause" not in render_text(report)
    data = json.loads(dump_json(report))
    assert data["diagnosis"] == [] and data["smallest_case"] is None


def test_a_passing_report_has_no_explanation() -> None:
    report = verify(TimeRNN, cases=[BIG], backends=["numeric"])
    assert report.ok and report.diagnosis == [] and report.smallest_case is None
    assert "Smallest failing case" not in render_text(report)


def test_shrinking_uses_only_the_backends_that_were_chosen() -> None:
    report = verify(wrong("no_branch_sum"), cases=[BIG], backends=["numeric"])
    assert report.smallest_reproducer is not None
    assert report.smallest_reproducer.endswith("--backend numeric")


@pytest.mark.torch
@pytest.mark.jax
def test_shrinking_prefers_torch_for_tiny_cases() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    report = verify(wrong("no_branch_sum"), cases=[BIG], backends=["jax", "torch"])
    assert report.smallest_reproducer is not None
    assert report.smallest_reproducer.endswith("--backend torch")


def test_verify_shrinks_a_layer_it_runs_in_a_worker() -> None:
    report = verify(wrong("db_batch_mean"), cases=[BIG], backends=["numeric"])
    assert report.isolation == "imported in a worker process"
    assert report.smallest_case is not None
    small = parse_case(report.smallest_case)
    assert small.N == 2 and small.total_steps == 1, small.id
