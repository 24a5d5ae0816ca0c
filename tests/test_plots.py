"""crosscheck.plots and `--plot DIR`: which case is drawn, the numbers behind the lines,
and that the files are real PNGs of the documented size."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crosscheck_helpers import SMALL_CASES
from matplotlib.image import imread

from crosscheck import plots
from crosscheck.cases import parse_case
from crosscheck.cli import main
from crosscheck.oracles import load_backend, reference
from crosscheck.verification import verify
from handrnn import TimeRNN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = {
    plots.ERRORS_PNG: plots.ERRORS_SIZE,
    plots.GRADIENTS_PNG: plots.GRADIENTS_SIZE,
}


class DxsOnePercentOff(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        return super().backward(dhs) * 1.01


class NaNThenRaises(TimeRNN):
    """The first backward returns NaN; the next one raises (so the case stops early)."""

    calls = 0

    def backward(self, dhs: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise ValueError("not written yet")
        return np.full_like(super().backward(dhs), np.nan)


def assert_valid_pngs(paths: list[Path]) -> None:
    assert sorted(p.name for p in paths) == sorted(SIZES)
    for p in paths:
        assert p.read_bytes()[:8] == PNG_SIGNATURE
        w, h = SIZES[p.name]
        assert imread(p).shape == (round(h * plots.DPI), round(w * plots.DPI), 4)


def numeric() -> list[Any]:
    return load_backend("numeric")


def test_a_failing_report_draws_its_first_failing_case(tmp_path: Path) -> None:
    report = verify(DxsOnePercentOff, cases=list(SMALL_CASES), backends=["numeric"], explain=False)
    out = plots.write_plots(report, tmp_path / "new" / "dir")
    assert_valid_pngs(out.paths)
    assert out.why == "first failing case" and out.case.id == report.failing_case_ids[0]


def test_a_passing_report_draws_the_case_with_the_longest_segment() -> None:
    long = parse_case("f64:N1:D1:H1:small:stateless:3z,3z:5")
    longest = parse_case("f64:N1:D1:H1:small:stateless:8z:5")
    report = verify(TimeRNN, cases=[SMALL_CASES[0], long, longest], backends=["numeric"])
    ev, why = plots.choose_evidence(report)
    assert (ev.case, ev.oracle, why) == (longest, "numeric", "longest case")


def test_no_case_an_oracle_supports_is_a_plot_error() -> None:
    big = parse_case("f64:N6:D10:H10:small:stateless:64z:5")
    report = verify(TimeRNN, cases=[big], backends=["numeric"])
    with pytest.raises(plots.PlotError, match="no case"):
        plots.choose_evidence(report)


def test_a_layer_without_usable_gradients_still_gets_pictures(tmp_path: Path) -> None:
    # pytest turns warnings into errors here: log axes, NaN and missing series raise none.
    report = verify(NaNThenRaises, cases=[SMALL_CASES[0]], backends=["numeric"], explain=False)
    out = plots.write_plots(report, tmp_path)
    assert_valid_pngs(out.paths)
    assert report.evidence is not None
    tr = plots.trace(report.evidence)
    assert [len(s.errors["dxs"]) for s in tr.segments] == [1, 0, 0, 0]
    assert np.isinf(tr.segments[0].errors["dxs"][0]).all()


def test_hidden_state_gradients_give_back_the_oracles_dxs_and_dh() -> None:
    """||dL/dh_t|| is computed in plots.py itself: it must agree with an oracle's dxs and dh,
    which follow from it in one step each."""
    case = SMALL_CASES[1]  # float64, stateful, set / carried / reset starts, two backwards
    ref = reference(numeric()[0], [case])[0]
    assert ref is not None
    data = case.data()
    for sd, r in zip(data.segments, ref):
        for dhs, grads in zip(sd.dhs, r.backward):
            g = plots.hidden_state_grads(data.Wh, r.hs, dhs)
            da = g * (1 - r.hs**2)
            np.testing.assert_allclose(da @ data.Wx.T, grads.dxs, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(da[:, 0] @ data.Wh.T, grads.dh, rtol=1e-7, atol=1e-9)


def test_step_norms_are_per_time_step() -> None:
    a = np.zeros((2, 3, 4))
    a[:, 1] = 1.0
    np.testing.assert_array_equal(plots.step_norms(a), [0.0, np.sqrt(8.0), 0.0])


def test_cli_plot_writes_the_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--backend", "numeric", "--case", SMALL_CASES[0].id, "--plot", str(tmp_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.rstrip().splitlines()[-1].startswith("PASS")
    assert f"plots of the longest case {SMALL_CASES[0].id} in {tmp_path}" in captured.err
    assert_valid_pngs(sorted(tmp_path.iterdir()))


def test_cli_plot_without_matplotlib_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["--backend", "numeric", "--cases", "1", "--plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "matplotlib" in err and "pip install 'handrnn[plot]'" in err
    assert not any(tmp_path.iterdir())


def test_cli_plot_with_nothing_to_draw_says_so_and_keeps_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = "f64:N6:D10:H10:small:stateless:64z:5"
    assert main(["--backend", "numeric", "--case", big, "--plot", str(tmp_path), "--quiet"]) == 3
    assert "cannot plot" in capsys.readouterr().err
