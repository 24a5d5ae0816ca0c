"""Layer kinds (crosscheck.kinds): one code path for the RNN, LSTM and GRU, from the case
id to the CLI, the grader and the pytest helper."""

from __future__ import annotations

import ast
import csv
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from crosscheck import grade, gradescope
from crosscheck.cases import KINDS, generate_cases, iter_cases, parse_case
from crosscheck.cli import main
from crosscheck.codec import observed_from_wire, observed_to_wire
from crosscheck.drive import drive
from crosscheck.kinds import get_kind, kind_of
from crosscheck.quantities import positions
from crosscheck.testing import assert_layer_matches
from crosscheck.testing import cases as strategy_cases
from crosscheck.twin import run_twin
from crosscheck.verification import verify
from crosscheck.wire import WireError
from handrnn import TimeGRU, TimeLSTM, TimeRNN

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.catalog_gated.book_time_lstm import TimeLSTM as BookLSTM  # noqa: E402

NUMERIC = ["--backend", "numeric"]
LAYERS = {"rnn": TimeRNN, "lstm": TimeLSTM, "gru": TimeGRU}
RICH = "{kind}:f64:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11"


@pytest.mark.parametrize("kind", KINDS)
def test_a_case_id_names_its_kind_and_reproduces_the_case(kind: str) -> None:
    for case in iter_cases(40, seed=3, kind=kind):
        assert case.kind == kind and parse_case(case.id) == case
        assert case.id.startswith("f") if kind == "rnn" else case.id.startswith(f"{kind}:")
        d = case.data()
        G = get_kind(kind).gates
        assert (d.Wx.shape, d.Wh.shape, d.b.shape) == ((case.D, G * case.H), (case.H, G * case.H),
                                                      (G * case.H,))  # fmt: skip
        for seg, sd in zip(case.segments, d.segments):
            has_c = kind == "lstm" and seg.start == "s"
            assert (sd.c_set is not None) == has_c


def test_the_kinds_share_shapes_and_chains_and_the_rnn_cases_did_not_change() -> None:
    rnn, lstm = generate_cases(30, seed=1), generate_cases(30, seed=1, kind="lstm")
    assert [c.id.partition(":")[2] for c in lstm] == [c.id for c in rnn]
    # The RNN's arrays are what they were before kinds existed (drawn in the same order).
    # (The sums as the generator of commit 10fd1ef, before kinds, drew them.)
    data = parse_case("f64:N2:D3:H4:exploding:stateful:3s,2c:5").data()
    assert data.Wx.sum() == -0.6645755243823326
    assert data.segments[1].dhs[0].sum() == -3.0226552424575734


def test_a_wrong_kind_is_refused_with_the_choices() -> None:
    one = parse_case("f32:N1:D1:H1:small:stateless:1z:0")
    with pytest.raises(ValueError, match="kind must be one of"):
        dataclasses.replace(one, kind="transformer")
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        get_kind("transformer")
    with pytest.raises(ValueError, match="not a case id"):
        parse_case("lstmx:f32:N1:D1:H1:small:stateless:1z:0")


@pytest.mark.parametrize("kind", KINDS)
def test_handrnn_drives_cleanly_and_the_twin_has_the_kinds_quantities(kind: str) -> None:
    case = parse_case(RICH.format(kind=kind) if kind != "rnn" else RICH[7:])
    observed = drive(LAYERS[kind], case)
    assert observed.problems == [] and len(observed.segments) == len(case.segments)
    got = {q for _, _, q in positions(observed.segments)}
    assert got == set(kind_of(case).quantities)  # handrnn's TimeLSTM exposes dc
    twin = run_twin(case, dtype="float32")
    assert {q for _, _, q in positions(twin)} == got
    assert all(s.hs.dtype == np.float32 for s in twin)


def test_the_books_lstm_has_no_dc_and_is_judged_without_it() -> None:
    case = parse_case(RICH.format(kind="lstm"))
    observed = drive(BookLSTM, case)
    qs = {q for _, _, q in positions(observed.segments)}
    assert "c" in qs and "dc" not in qs
    assert {p.kind for p in observed.problems} == {"float32_outputs"}


def test_an_lstm_whose_c_is_its_h_is_a_protocol_problem() -> None:
    class SharedState(TimeLSTM):
        def forward(self, xs: Any) -> Any:
            hs = super().forward(xs)
            self.c = self.h  # one array for both states
            return hs

    case = parse_case("lstm:f64:N2:D3:H4:small:stateless:3z:1")
    problems = drive(SharedState, case).problems
    assert any(p.kind == "protocol" and p.quantity == "c" for p in problems)


def test_the_wire_checks_the_cell_state_against_the_kind() -> None:
    lstm = parse_case("lstm:f64:N2:D3:H4:small:stateless:3z:1")
    body = observed_to_wire(drive(TimeLSTM, lstm))
    back = observed_from_wire(body, lstm)
    assert back.segments[0].c is not None and back.segments[0].backward[0].dc is not None
    rnn = parse_case("f64:N2:D3:H4:small:stateless:3z:1")
    body_rnn = observed_to_wire(drive(TimeRNN, rnn))
    body_rnn["segments"][0]["c"] = body["segments"][0]["c"]  # a c the RNN cannot have
    with pytest.raises(WireError, match="no cell state"):
        observed_from_wire(body_rnn, rnn)
    del body["segments"][0]["c"]  # an LSTM segment without its c
    with pytest.raises(WireError, match="c is not an array"):
        observed_from_wire(body, lstm)


def test_verify_refuses_cases_of_another_kind() -> None:
    lstm = parse_case("lstm:f64:N1:D1:H1:small:stateless:1z:0")
    with pytest.raises(ValueError, match="one layer kind"):
        verify(TimeLSTM, cases=[lstm], kind="gru")
    with pytest.raises(ValueError, match="one layer kind"):
        verify(TimeLSTM, cases=[lstm, parse_case("f64:N1:D1:H1:small:stateless:1z:0")])


def test_an_rnn_checked_as_an_lstm_fails_on_the_parameter_shapes() -> None:
    report = verify(TimeRNN, kind="lstm", cases=3, backends=["numeric"], explain=False)
    assert not report.ok
    assert {f.kind for f in report.failures} == {"exception"}
    assert "Wh must have shape (H, H)" in report.failures[0].message


def test_cli_kind_picks_handrnns_layer_and_the_case_id_carries_its_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--kind", "gru", "--cases", "6", "--quiet", *NUMERIC]) == 0
    assert "PASS: handrnn:TimeGRU" in capsys.readouterr().out
    lstm_id = "lstm:f32:N2:D3:H4:moderate:stateful:3s,4c:9"
    assert main(["--case", lstm_id, "--quiet", *NUMERIC]) == 0
    assert "PASS: handrnn:TimeLSTM agrees with numeric on all 1 cases" in capsys.readouterr().out


def test_cli_kind_conflicts_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    lstm_id = "lstm:f32:N2:D3:H4:moderate:stateful:3s,4c:9"
    assert main(["--kind", "gru", "--case", lstm_id]) == 2
    assert "one run checks one layer kind" in capsys.readouterr().err
    assert main(["--kind", "lstm", "--api", "cs231n", "--layer", "x"]) == 2
    assert "--api cs231n checks the tanh RNN functions only" in capsys.readouterr().err
    assert main(["--kind", "cnn"]) == 2


def test_assert_layer_matches_takes_the_kind() -> None:
    report = assert_layer_matches(TimeLSTM, kind="lstm", cases=4, backends=["numeric"])
    assert report.kind == "lstm" and report.ok
    with pytest.raises(AssertionError, match="FAIL"):
        assert_layer_matches(TimeRNN, kind="gru", cases=2, backends=["numeric"], explain=False)


def test_grade_kind_lstm_grades_lstm_submissions(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    catalog = ROOT / "tests" / "catalog_gated"
    shutil.copy(catalog / "correct_fused_lstm.py", subs / "ann_fused.py")
    shutil.copy(catalog / "wrong_lstm_no_dc_carry.py", subs / "ben_no_dc_carry.py")
    out = tmp_path / "out"
    args = [str(subs), "--kind", "lstm", "--out", str(out), "--plots", "none", "--cases", "6",
            *NUMERIC]  # fmt: skip
    assert grade.main(args) == 0
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as fh:
        rows = {r["submission"]: r for r in csv.DictReader(fh)}
    assert rows["ann_fused.py"]["verdict"] == "pass"
    assert rows["ben_no_dc_carry.py"]["verdict"] == "fail"
    assert "dc from step t+1" in (out / "gradebook.json").read_text(encoding="utf-8")


def test_a_gated_failure_plots_without_the_rnns_gradient_flow(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    spec = "tests.catalog_gated.wrong_gru_dz_sign:TimeGRU"
    args = ["--kind", "gru", "--layer", spec, "--cases", "6", "--plot", str(out), "--quiet"]
    assert main([*args, *NUMERIC]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["errors_per_step.png", "gradient_norms.png"]


@given(case=strategy_cases(kind="lstm", max_T=3, max_segments=2))
@settings(max_examples=15, deadline=None)
def test_the_hypothesis_strategy_draws_cases_of_the_kind(case: Any) -> None:
    assert case.kind == "lstm" and parse_case(case.id) == case
    observed = drive(TimeLSTM, case)
    assert observed.problems == [] and all(s.c is not None for s in observed.segments)


def test_a_gradescope_bundle_for_lstms_grades_timelstm() -> None:
    args = gradescope.build_parser().parse_args(["out.zip", "--kind", "lstm"])
    passed = gradescope.grade_args(args, ["numeric"])
    assert passed[passed.index("--kind") + 1] == "lstm"
    assert passed[passed.index("--layer-attr") + 1] == "TimeLSTM"
    # ... and crosscheck grade takes what the bundle passes.
    settings = grade._settings(grade.build_parser().parse_args(["subs", "--out", "o", *passed]))
    assert (settings.kind, settings.layer_attr) == ("lstm", "TimeLSTM")


def test_the_noxfile_runs_every_kind() -> None:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    assigned = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert ast.literal_eval(assigned["KINDS"]) == KINDS
