"""crosscheck.plots and `--plot DIR`: which case is drawn, the numbers behind the lines,
and that the files are real PNGs of the documented size."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crosscheck_helpers import SMALL_CASES
from matplotlib.image import imread

from crosscheck import compare, plots
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


class DxsTenPercentOffBeforeTheLastStep(TimeRNN):
    """dxs 10% too large at every step but each segment's last: the shape of a forgotten
    branch sum, with an error the log axis of the norms cannot show."""

    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        dxs[:, :-1] *= 1.1
        return dxs


class Dxs1000TimesOff(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        return super().backward(dhs) * 1000.0


class DWhTenPercentOff(TimeRNN):
    """Only dWh is wrong: nothing with a time axis shows it."""

    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.grads[1][...] *= 1.1
        return dxs


class ForwardRaises(TimeRNN):
    def forward(self, xs: Any) -> Any:
        raise NotImplementedError("forward is not written yet")


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


@pytest.mark.parametrize("layer", [DxsOnePercentOff, DxsTenPercentOffBeforeTheLastStep])
def test_a_failing_report_draws_its_first_failing_case(tmp_path: Path, layer: Any) -> None:
    report = verify(layer, cases=list(SMALL_CASES), backends=["numeric"], explain=False)
    out = plots.write_plots(report, tmp_path / "new" / "dir")
    assert_valid_pngs(out.paths)
    assert out.why == "first failing case" and out.case.id == report.failing_case_ids[0]


def test_plots_never_run_the_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = verify(DxsTenPercentOffBeforeTheLastStep, cases=[SMALL_CASES[0]],
                    oracles=numeric(), explain=False, isolate=False)  # fmt: skip

    def no(*args: Any) -> Any:
        raise AssertionError("the layer was run")

    for name in ("__init__", "forward", "backward"):
        monkeypatch.setattr(DxsTenPercentOffBeforeTheLastStep, name, no)
    assert_valid_pngs(plots.write_plots(report, tmp_path).paths)


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


# ---------------------------------------------------------------------------
# What the pictures show


def judge(layer: Any, case: Any) -> Any:
    """verify in this process against the numeric oracle: fast, for the layers here."""
    return verify(layer, cases=[case], oracles=numeric(), explain=False, isolate=False)


def first_failing(layer: Any, case: Any) -> plots.Trace:
    report = judge(layer, case)
    assert report.evidence is not None
    return plots.trace(report.evidence, "first failing case")


def test_a_10_percent_dxs_error_reads_as_1_1_in_the_ratio_panel() -> None:
    tr = first_failing(DxsTenPercentOffBeforeTheLastStep, SMALL_CASES[0])
    assert tr.completed == len(tr.segments) == 4
    for s in tr.segments:
        assert s.dxs_ratio is not None and s.ratio_band is not None
        np.testing.assert_allclose(s.dxs_ratio[:-1], 1.1, atol=1e-5)
        np.testing.assert_allclose(s.dxs_ratio[-1], 1.0, atol=1e-5)
        assert (s.ratio_band < 0.01).all()  # the band is far narrower than the error
        assert (s.errors["dxs"][0][:-1] > 100 * s.threshold).all()
        assert s.errors["dxs"][0][-1] <= s.threshold
    assert plots.wrong_quantities(tr) == ["dxs"]

    fig = plots.gradients_figure(tr, "DxsTenPercentOff")
    flow, ratio = fig.axes[:2]
    assert (flow.get_yscale(), ratio.get_yscale()) == ("log", "linear")
    (line,) = [ln for ln in ratio.get_lines() if ln.get_label() == "your layer ÷ reference"]
    drawn = np.asarray(line.get_ydata(), dtype=float)
    assert np.nanmax(np.abs(drawn - 1.0)) == pytest.approx(0.1, abs=1e-4)
    # What is drawn is the trace, segment after segment (the first series carries the label).
    np.testing.assert_allclose(drawn, tr.segments[0].dxs_ratio)
    low, high = ratio.get_ylim()
    assert low < 1.0 < 1.1 < high
    assert 0.1 / (high - low) > 0.15  # a 10% error moves a point by 15% of the panel or more
    wrong = [ln for ln in ratio.get_lines() if ln.get_label() == "a step where dxs is wrong"]
    assert len(wrong) == 1


def test_a_right_layer_is_a_flat_line_at_1() -> None:
    report = judge(TimeRNN, SMALL_CASES[0])
    assert report.longest is not None
    tr = plots.trace(report.longest)
    for s in tr.segments:
        assert s.dxs_ratio is not None
        np.testing.assert_allclose(s.dxs_ratio, 1.0, atol=1e-5)
    assert plots.wrong_quantities(tr) == []
    assert plots.ratio_limits(tr) == (1 - plots.RATIO_SPAN, 1 + plots.RATIO_SPAN)


def test_huge_ratios_stop_at_the_cap_and_the_title_says_how_large() -> None:
    tr = first_failing(Dxs1000TimesOff, SMALL_CASES[2])
    assert plots.ratio_limits(tr) == (1 - plots.RATIO_SPAN, plots.RATIO_CAP)
    ratio = plots.gradients_figure(tr, "x").axes[1]
    assert "largest 1,000×" in ratio.get_title("left")
    (over,) = [ln for ln in ratio.get_lines() if "off the scale" in str(ln.get_label())]
    assert set(over.get_ydata()) == {plots.RATIO_CAP}


def test_a_wrong_quantity_without_a_time_axis_is_a_red_cell_of_the_strip() -> None:
    tr = first_failing(DWhTenPercentOff, SMALL_CASES[1])
    assert plots.wrong_quantities(tr) == ["dWh"]
    for s in tr.segments:
        assert s.whole is not None and set(s.whole) == set(plots.WHOLE)
        assert s.whole["dWh"] > 100 * s.threshold
        assert all(s.whole[q] <= s.threshold for q in plots.WHOLE if q != "dWh")
    fig = plots.errors_figure(tr, "DWhTenPercentOff")
    fig.canvas.draw()
    rows: dict[str, list[str]] = {q: [] for q in plots.WHOLE}
    for t in fig.axes[2].texts:  # one per cell, at y = the row of its quantity
        rows[plots.WHOLE[round(t.get_position()[1])]].append(t.get_text())
    assert all(len(texts) == len(tr.segments) for texts in rows.values())
    assert rows["dWh"][0] == f"error 0.1 > limit {tr.segments[0].threshold:.1e}"
    assert all(t in ("within the tolerance", "ok") for q in rows if q != "dWh" for t in rows[q])
    assert "wrong in this case: dWh" in fig.get_suptitle()


def test_norm_ratio_and_its_band() -> None:
    ref = np.zeros((2, 4, 3))
    ref[:, 1:] = np.arange(1.0, 19.0).reshape(2, 3, 3)
    obs = ref.copy()
    obs[:, 0] = 1.0  # the reference's step is 0, the layer's is not
    obs[0, 3, 0] = np.nan
    ratio = plots.norm_ratio(obs, ref)
    assert np.isinf(ratio[0]) and np.isnan(ratio[3])
    np.testing.assert_array_equal(ratio[1:3], 1.0)
    assert plots.norm_ratio(np.zeros((1, 2, 1)), np.zeros((1, 2, 1))).tolist() == [1.0, 1.0]
    # A layer off by the threshold everywhere still passes each step: it stays in the band.
    threshold = 1e-3
    signs = np.sign(np.random.default_rng(0).normal(size=ref.shape))
    off = ref + threshold * compare.scale(ref) * signs
    err = compare.relative_error("dxs", off, ref).per_step
    assert err is not None and (err <= threshold * (1 + 1e-12)).all()
    band = plots.ratio_tolerance(ref, threshold)
    assert np.isinf(band[0])
    assert (np.abs(plots.norm_ratio(off, ref)[1:] - 1) <= band[1:]).all()


def _texts(fig: Any) -> list[Any]:
    """Every text a drawn figure shows: titles, axis and tick labels (of ticks in view),
    legend entries, texts placed in the axes, the figure's title."""
    from matplotlib.text import Text

    texts = list(fig.texts)  # the figure's title among them
    for ax in fig.axes + [child for parent in fig.axes for child in parent.child_axes]:
        texts += [c for c in ax.get_children() if isinstance(c, Text)]  # titles, ax.texts
        for axis in (ax.xaxis, ax.yaxis):
            texts.append(axis.label)
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low):
                    texts += [tick.label1, tick.label2]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    unique = {id(t): t for t in texts}.values()
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


@functools.cache
def traced(layer: Any) -> plots.Trace:
    return plots.trace(*plots.choose_evidence(judge(layer, SMALL_CASES[0])))


LONG_NAME = "course_2024.week_05.submissions.a_student_with_a_long_name.rnn_layers:TimeRNN"


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        (DxsTenPercentOffBeforeTheLastStep, "tests.catalog.some_students_layer:TimeRNN"),
        (NaNThenRaises, LONG_NAME * 2),
        (ForwardRaises, "my_layer:TimeRNN"),
        (TimeRNN, "handrnn:TimeRNN"),
    ],
)
@pytest.mark.parametrize("draw", ["errors_figure", "gradients_figure"])
def test_legends_sit_outside_the_axes_and_no_text_is_cut_off_or_overlapping(
    layer: Any, name: str, draw: str
) -> None:
    fig = getattr(plots, draw)(traced(layer), name)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    plot_axes = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(plot_axes) == 2
    for ax in plot_axes:
        legend = ax.get_legend().get_window_extent(renderer)
        data = ax.get_window_extent(renderer)
        assert legend.x0 > data.x1, f"the legend of {ax.get_title()!r} is over the axes"
        assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1)
    assert not fig.legends
    boxes = [(t, t.get_window_extent(renderer)) for t in _texts(fig)]
    assert len(boxes) > 25  # titles, labels, ticks, legend entries, cells
    for t, box in boxes:
        inside = fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
        assert inside, f"{t.get_text()!r} is cut off"
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            if box_a.overlaps(box_b):
                pytest.fail(f"{a.get_text()!r} overlaps {b.get_text()!r}")


def test_segment_labels_say_how_the_state_starts_and_fit_their_segment() -> None:
    case = parse_case("f64:N2:D3:H4:moderate:stateful:10z,1c,2s2,1r:3")
    ev, why = plots.choose_evidence(judge(DxsTenPercentOffBeforeTheLastStep, case))
    tr = plots.trace(ev, why)
    fig = plots.gradients_figure(tr, "x")
    fig.canvas.draw()
    top = fig.axes[0]
    (labels_axis,) = [a for a in top.child_axes]
    labels = [t for t in labels_axis.xaxis.get_ticklabels() if t.get_text()]
    assert labels[0].get_text() == "segment 0: starts from zeros"
    renderer = fig.canvas.get_renderer()
    per_step = top.get_window_extent(renderer).width / case.total_steps
    for t, s in zip(labels, tr.segments):
        assert t.get_window_extent(renderer).width <= s.T * per_step
    assert [t.get_text()[:1] for t in labels] == ["s", "1", "2", "3"]
