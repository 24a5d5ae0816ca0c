"""Pictures of one case: where in time the layer goes wrong, and how gradients flow back.

`write_plots(report, out_dir)` draws the case whose values the report kept (the first
failing case, else the case with the longest segment) without running anything, and
writes two PNGs:

errors_per_step.png   what is wrong, and when. Top two panels: the error of hs and of
                      dxs at each time step (log y) against the threshold of the one
                      tolerance model (crosscheck.compare), the region above it shaded
                      "wrong". Bottom strip: the quantities without a time axis (h,
                      dWx, dWh, db, dh), one cell per segment, green within the
                      tolerance, red with "n x the limit" when not.
gradient_norms.png    how gradients flow back through time. Top (log y): the
                      reference's ||dL/dh_t|| (L = sum(hs * dhs), so every step feeds
                      gradient in), ||dL_last/dh_t|| for the loss of the last step
                      alone (the vanishing / exploding gradient of the book's RNN
                      chapter), and ||dxs[:, t]|| of the layer and of the reference.
                      Bottom (linear y): the layer's ||dxs[:, t]|| divided by the
                      reference's, 1.0 = right, with the band the tolerance allows, so
                      a gradient 10% off reads as 1.1 at a glance.

Time runs across the case's segments (dotted lines mark segment starts, labelled above
the top panel with how the state starts). Legends sit to the right of the axes, never
over data. Matplotlib is imported only here, and only its object API is used (no
pyplot, no GUI backend).
"""

from __future__ import annotations

import importlib
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck import compare
from crosscheck.cases import Case
from crosscheck.report import Evidence, Report

Array = NDArray[Any]

ERRORS_PNG = "errors_per_step.png"
GRADIENTS_PNG = "gradient_norms.png"
DPI = 100
ERRORS_SIZE = (9.0, 6.5)  # inches: 900 x 650 pixels at DPI
GRADIENTS_SIZE = (9.0, 5.0)  # 900 x 500 pixels
# The lowest error a log axis goes down to; an error of exactly 0 is drawn on the
# bottom edge of the axis.
ERROR_FLOOR = 1e-18
# The ratio panel always shows at least 1 +- RATIO_SPAN (so a 10% error moves a point a
# fifth of the way to the edge, and a right layer is a flat line at 1.0), and stops at
# RATIO_CAP: larger ratios are drawn on the top edge (the log panel shows how large).
RATIO_SPAN = 0.25
RATIO_CAP = 3.0
# The quantities without a time axis, in the strip of errors_per_step.png.
WHOLE = ("h", "dWx", "dWh", "db", "dh")
YOUR = "your layer"
REFERENCE = "reference (float64)"
_STARTS = {
    "z": "starts from zeros",
    "c": "carries h on",
    "s": "starts from set_state(h)",
    "r": "after reset_state()",
}
_SHORT_STARTS = {"z": "zeros", "c": "carried", "s": "set_state", "r": "reset"}
_FONT = 8  # legends, segment labels, cells
_GREEN, _RED, _GREY = "#c7e9c0", "#f4a6a6", "0.9"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed; the message says how to get it."""


class PlotError(ValueError):
    """The report has no case that an oracle can recompute, so there is nothing to draw."""


def require_matplotlib() -> None:
    """Raise PlotUnavailable with a one-line fix if matplotlib cannot be imported."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib, which is not installed: pip install 'handrnn[plot]'"
        ) from None


# ---------------------------------------------------------------------------
# The numbers behind the pictures (no matplotlib needed)


def hidden_state_grads(Wh: Array, hs: Array, dhs: Array) -> Array:
    """dL/dh_t for L = sum(hs * dhs) within one segment, float64.

    Wh: (H, H); hs: (N, T, H) the reference hidden states; dhs: (N, T, H).
    Returns g: (N, T, H) with g_{T-1} = dhs_{T-1} and
    g_{t-1} = dhs_{t-1} + (g_t * (1 - h_t^2)) Wh^T   (h_t = tanh(a_t)).
    The layer's dxs_t is then (g_t * (1 - h_t^2)) Wx^T.
    """
    Wh, hs, dhs = (np.asarray(a, dtype=np.float64) for a in (Wh, hs, dhs))
    g = np.empty_like(hs)
    g[:, -1] = dhs[:, -1]
    for t in range(hs.shape[1] - 1, 0, -1):
        g[:, t - 1] = dhs[:, t - 1] + (g[:, t] * (1.0 - hs[:, t] ** 2)) @ Wh.T
    return g


def step_norms(a: Array) -> Array:
    """(N, T, X) -> (T,): the Frobenius norm over samples and features at each step."""
    with np.errstate(over="ignore", invalid="ignore"):  # a layer's 1e300 is inf, not a warning
        norms: Array = np.sqrt(np.sum(np.square(np.asarray(a, dtype=np.float64)), axis=(0, 2)))
    return norms


def norm_ratio(observed: Array, reference: Array) -> Array:
    """(N, T, X) each -> (T,): ||observed[:, t]|| / ||reference[:, t]||, 1.0 = right.

    1 where both are 0, inf where only the reference is, NaN where the layer gave NaN.
    """
    num, den = step_norms(observed), step_norms(reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: Array = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    ratio[(den == 0) & (num == 0)] = 1.0
    ratio[np.isnan(num)] = np.nan
    return ratio


def ratio_tolerance(reference: Array, threshold: float) -> Array:
    """(N, T, X) -> (T,): how far norm_ratio may stray from 1 at step t while the step
    still passes, i.e. the half-width of the band drawn around 1.0 (inf where the
    reference's step is 0).

    A step passes when max |observed_t - reference_t| <= threshold * scale(reference)
    (crosscheck.compare), so | ||observed_t|| - ||reference_t|| | <= ||observed_t -
    reference_t|| <= sqrt(N X) * threshold * scale: a point outside the band is wrong
    for certain (inside it, the direction can still be wrong: those steps are marked).
    """
    ref = np.asarray(reference, dtype=np.float64)
    allowed = math.sqrt(ref.shape[0] * ref.shape[2]) * threshold * compare.scale(ref)
    den = step_norms(ref)
    with np.errstate(divide="ignore"):
        band: Array = np.where(den > 0, allowed / np.where(den > 0, den, 1.0), np.inf)
    return band


@dataclass(frozen=True)
class SegmentTrace:
    """One segment's series, each (T,), plotted at time steps first .. first + T - 1.

    errors: quantity -> one per-step error per call (hs: forward, one entry; dxs: one
    per backward call the layer completed). whole: the error of each of WHOLE (the
    worst over backward calls), only for those the layer computed. Gradient norms and
    the ratio are for backward call 0; layer_dxs and dxs_ratio are None if the layer did
    not finish the segment.
    """

    first: int
    T: int
    start: str
    threshold: float
    errors: dict[str, list[Array]]
    layer_dxs: Array | None
    ref_dxs: Array
    ref_dh: Array | None  # the tanh RNN's dL/dh_t (None for gated kinds)
    ref_dh_last: Array | None
    dxs_ratio: Array | None = None
    ratio_band: Array | None = None
    whole: dict[str, float] | None = None


@dataclass(frozen=True)
class Trace:
    case: Case
    why: str  # "first failing case" or "longest case"
    oracle: str
    segments: list[SegmentTrace]
    completed: int  # segments the layer finished before it raised or returned something unusable


def choose_evidence(report: Report) -> tuple[Evidence, str]:
    """The kept values of the first failing case, else of the longest case, and which it is.
    Raises PlotError if the report kept none (no case could be recomputed)."""
    if report.evidence is not None:
        return report.evidence, "first failing case"
    if report.longest is not None:
        return report.longest, "longest case"
    raise PlotError("the report kept no case that an oracle could recompute")


def trace(ev: Evidence, why: str = "") -> Trace:
    """Line the layer's kept values up with the reference, step by step."""
    case, observed, ref = ev.case, ev.observed.segments, ev.reference
    data = case.data()
    segments, first = [], 0
    for k, (seg, sd, r) in enumerate(zip(case.segments, data.segments, ref)):
        threshold = ev.limit((k, None, "hs"))  # as the judge had it
        errors: dict[str, list[Array]] = {"hs": [], "dxs": []}
        layer_dxs = ratio = None
        whole: dict[str, float] = {}
        if k < len(observed):
            obs = observed[k]
            errors["hs"].append(_per_step("hs", obs.hs, r.hs))
            whole["h"] = compare.relative_error("h", obs.h, r.h).error
            for j, grads in enumerate(obs.backward):
                errors["dxs"].append(_per_step("dxs", grads.dxs, r.backward[j].dxs))
                for q in WHOLE[1:]:
                    err = compare.relative_error(q, obs.get(q, j), r.get(q, j)).error
                    whole[q] = max(whole.get(q, 0.0), err)  # NaN is already inf
            if obs.backward:
                layer_dxs = step_norms(obs.backward[0].dxs)
                ratio = norm_ratio(obs.backward[0].dxs, r.backward[0].dxs)

        last_only = np.zeros_like(sd.dhs[0], dtype=np.float64)
        last_only[:, -1] = sd.dhs[0][:, -1]
        segments.append(
            SegmentTrace(
                first=first,
                T=seg.T,
                start=seg.start,
                threshold=threshold,
                errors=errors,
                layer_dxs=layer_dxs,
                ref_dxs=step_norms(r.backward[0].dxs),
                ref_dh=_flow(case, data.Wh, r.hs, sd.dhs[0]),
                ref_dh_last=_flow(case, data.Wh, r.hs, last_only),
                dxs_ratio=ratio,
                ratio_band=ratio_tolerance(r.backward[0].dxs, threshold),
                whole=whole,
            )
        )
        first += seg.T
    return Trace(case, why, ev.oracle, segments, len(observed))


def _flow(case: Case, Wh: Array, hs: Array, dhs: Array) -> Array | None:
    """||dL/dh_t|| per step by the tanh RNN's recurrence; None (not drawn) for a gated kind."""
    return step_norms(hidden_state_grads(Wh, hs, dhs)) if case.kind == "rnn" else None


def _per_step(quantity: str, observed: Array, reference: Array) -> Array:
    per_step = compare.relative_error(quantity, observed, reference).per_step
    assert per_step is not None  # hs and dxs are time-indexed
    return per_step


# ---------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class Plots:
    """What write_plots produced: the files, and which case they show and why."""

    paths: list[Path]
    case: Case
    why: str
    oracle: str


def write_plots(report: Report, out_dir: str | Path) -> Plots:
    """Write ERRORS_PNG and GRADIENTS_PNG for the case `report` kept into `out_dir`.

    Raises PlotUnavailable without matplotlib, PlotError if the report kept no case.
    """
    require_matplotlib()
    ev, why = choose_evidence(report)
    tr = trace(ev, why)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / ERRORS_PNG, out / GRADIENTS_PNG]
    errors_figure(tr, report.layer).savefig(paths[0], dpi=DPI)
    gradients_figure(tr, report.layer).savefig(paths[1], dpi=DPI)
    return Plots(paths, ev.case, why, ev.oracle)


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # fig.canvas.draw() renders off screen
    return fig


def _steps(s: SegmentTrace) -> Array:
    return np.arange(s.first, s.first + s.T)


def _legend(ax: Any) -> None:
    """The axes' legend to the right of it, outside the data area."""
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _mark_segments(ax: Any, tr: Trace) -> None:
    """Dotted lines where a segment begins; a grey band over the segments the layer did
    not finish (the figure's title says so); whole time steps on the x axis."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    steps = tr.case.total_steps
    few = FixedLocator(list(range(steps))) if steps <= 12 else MaxNLocator(integer=True)
    ax.xaxis.set_major_locator(few)
    ax.set_xlim(-0.5, tr.case.total_steps - 0.5)
    if tr.completed < len(tr.segments):
        s = tr.segments[tr.completed]
        ax.axvspan(s.first - 0.5, tr.case.total_steps - 0.5, color="0.9", zorder=0)
    for k, s in enumerate(tr.segments):
        if k:
            ax.axvline(s.first - 0.5, color="0.45", linestyle=":", linewidth=1.2)


def _text_width(fig: Any, text: str, size: float) -> float:
    """The width of `text` in pixels at font size `size`."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    width, _, _ = renderer.get_text_width_height_descent(text, FontProperties(size=size), False)
    return float(width)


def _fit(fig: Any, options: Sequence[str], width: float, size: float = _FONT) -> str:
    """The first (longest) of `options` that fits in `width` pixels, else ""."""
    for text in options:
        if _text_width(fig, text, size) <= width:
            return text
    return ""


def _step_width(fig: Any, ax: Any, tr: Trace) -> float:
    """Pixels per time step of `ax`, once the layout is settled."""
    fig.draw_without_rendering()
    return float(ax.get_window_extent().width) / max(tr.case.total_steps, 1)


def _label_segments(fig: Any, ax: Any, tr: Trace, per_step: float) -> None:
    """Above `ax`: each segment's number and how its state starts, as long as fits in
    its `per_step` pixels a step."""
    if len(tr.segments) < 2 and tr.segments[0].start == "z":
        return
    top = ax.secondary_xaxis("top")
    top.tick_params(length=0, labelsize=_FONT, pad=2)
    centers, labels = [], []
    for k, s in enumerate(tr.segments):
        options = [
            f"segment {k}: {_STARTS[s.start]}",
            f"{k}: {_STARTS[s.start]}",
            f"{k}: {_SHORT_STARTS[s.start]}",
            f"{k}",
        ]
        centers.append(s.first + (s.T - 1) / 2)
        labels.append(_fit(fig, options, s.T * per_step - 6))
    top.set_xticks(centers, labels)


def _wrapped(text: str, width: int = 112) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _suptitle(fig: Any, tr: Trace, layer: str) -> None:
    wrong = wrong_quantities(tr)
    verdicts = [f"wrong in this case: {', '.join(wrong)}"] if wrong else []
    if tr.completed < len(tr.segments):
        verdicts.append(f"{YOUR} stopped in segment {tr.completed} (grey): see the report")
    verdict = _wrapped("; ".join(verdicts) or "every value of this case is within the tolerance")
    lines = [
        _wrapped(f"{YOUR}: {layer}, against the {tr.oracle} {REFERENCE}"),
        _wrapped(f"{tr.why} {tr.case.id}   (weights: {tr.case.regime}, {tr.case.dtype})"),
        verdict,
    ]
    fig.suptitle("\n".join(lines), fontsize=9)


def _time_label(ax: Any, tr: Trace, note: str = "") -> None:
    across = "; segments one after another" if len(tr.segments) > 1 else ""
    ax.set_xlabel(f"time step t{across}{note}")


class _Once:
    """A legend label the first time it is asked for, None after (one entry per series)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, label: str) -> str | None:
        if label in self.seen:
            return None
        self.seen.add(label)
        return label


_CALLS = ("", ", 2nd backward call", ", 3rd backward call")


def _error_limits(tr: Trace, q: str) -> tuple[float, float]:
    """A log range that shows every error of `q` and every threshold."""
    values = [s.threshold for s in tr.segments]
    values += [float(e) for s in tr.segments for err in s.errors[q] for e in err]
    finite = [v for v in values if math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    low = max(ERROR_FLOOR, min(positive) / 10)
    high = max(2.0, 3 * max(finite))
    return low, high


def errors_figure(tr: Trace, layer: str) -> Any:
    """The figure of ERRORS_PNG: hs and dxs error per step, and the strip of WHOLE."""
    fig = _figure(ERRORS_SIZE)
    axes = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 2])
    zero = False
    titles = {
        "hs": f"Forward: how far {YOUR}'s hs[:, t] is from the reference at each step",
        "dxs": f"Backward: how far {YOUR}'s dxs[:, t] is from the reference at each step",
    }
    for ax, q in zip(axes, ("hs", "dxs")):
        once = _Once()
        low, high = _error_limits(tr, q)
        for k, s in enumerate(tr.segments):
            x = _steps(s)
            edges = [x[0] - 0.5, x[-1] + 0.5]
            if k < tr.completed:
                ax.fill_between(edges, s.threshold, high, color=_RED, alpha=0.35, linewidth=0,
                                label=once("above the threshold: wrong"))  # fmt: skip
            ax.hlines(s.threshold, *edges, colors="tab:red", linestyles="--",
                      label=once("threshold (the tolerance)"))  # fmt: skip
            for j, err in enumerate(s.errors[q]):
                bad = ~np.isfinite(err)
                zero |= bool((err == 0).any())
                shown = np.where(bad, np.nan, np.maximum(err, low))  # 0 is drawn at `low`
                ax.plot(x, shown, marker="o", markersize=3.5, linewidth=1.3, color=f"C{j}",
                        linestyle="-" if j == 0 else "--",
                        label=once(YOUR + _CALLS[min(j, 2)]))  # fmt: skip
                if bad.any():
                    ax.plot(x[bad], np.full(int(bad.sum()), high), "x", color="tab:red",
                            markersize=8, mew=2, clip_on=False,
                            label=once(f"NaN or inf from {YOUR}"))  # fmt: skip
        empty = not any(s.errors[q] for s in tr.segments)
        if empty:
            ax.text(0.5, 0.5, f"{YOUR} produced no values for {q}", ha="center",
                    transform=ax.transAxes, color="tab:red")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(low / 3, high)
        ax.set_ylabel("error at step t\n(fraction of the\nreference's size)", fontsize=9)
        ax.set_title(titles[q], fontsize=9, loc="left")
        ax.grid(True, which="major", alpha=0.3)
        _mark_segments(ax, tr)
        _legend(ax)
    _draw_whole(fig, axes[2], tr)
    _time_label(axes[2], tr, "; an error of exactly 0 is drawn at the bottom" if zero else "")
    _suptitle(fig, tr, layer)
    per_step = _step_width(fig, axes[2], tr)  # the panels are stacked: one width for all
    _label_segments(fig, axes[0], tr, per_step)
    _fill_cells(fig, axes[2], tr, per_step)
    return fig


def _cell(s: SegmentTrace, q: str) -> tuple[str, list[str]]:
    """The colour of the strip's cell for quantity q in segment s, and its text, longest first."""
    err = (s.whole or {}).get(q)
    if err is None:
        return _GREY, ["not computed", "none", "-", ""]
    if err <= s.threshold:
        return _GREEN, ["within the tolerance", "ok", ""]
    if not math.isfinite(err):
        return _RED, ["NaN or inf", "NaN", "wrong", "!"]
    e, limit = _plain(err), _plain(s.threshold)
    return _RED, [f"error {e} > limit {limit}", f"{e} > {limit}", e, "wrong", "!"]


def _plain(x: float) -> str:
    """Two significant digits for people: 4.0e-12, 0.0012, 0.34, 7.5, 1,200, 3,500,000."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    rounded = float(f"{x:.2g}")
    if rounded >= 100:
        return f"{rounded:,.0f}"
    return f"{rounded:.2g}" if rounded >= 1e-4 else f"{rounded:.1e}"


def _times(n: float) -> str:
    """A factor: 1.2×, 35×, 1,200×."""
    return f"{_plain(n)}×"


def wrong_quantities(tr: Trace) -> list[str]:
    """The quantities of the drawn case outside the tolerance somewhere, in report order."""
    bad: set[str] = set()
    for s in tr.segments:
        for q in ("hs", "dxs"):
            if any(not (err <= s.threshold).all() for err in s.errors[q]):
                bad.add(q)
        bad |= {q for q, err in (s.whole or {}).items() if not err <= s.threshold}
    return [q for q in ("hs", "h", "dxs", "dWx", "dWh", "db", "dh") if q in bad]


def _draw_whole(fig: Any, ax: Any, tr: Trace) -> None:
    for s in tr.segments:
        for i, q in enumerate(WHOLE):
            color, _ = _cell(s, q)
            ax.barh(i, s.T, left=s.first - 0.5, height=0.86, color=color, edgecolor="white")
    ax.set_yticks(range(len(WHOLE)), WHOLE)
    ax.set_ylim(len(WHOLE) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.set_title("Quantities without a time axis, per segment: green = within the tolerance, "
                 "red = wrong", fontsize=9, loc="left")  # fmt: skip
    _mark_segments(ax, tr)


def _fill_cells(fig: Any, ax: Any, tr: Trace, per_step: float) -> None:
    for s in tr.segments:
        for i, q in enumerate(WHOLE):
            _, options = _cell(s, q)
            text = _fit(fig, options, s.T * per_step - 6)
            if text:
                ax.text(s.first + (s.T - 1) / 2, i, text, ha="center", va="center",
                        fontsize=_FONT, color="0.1")  # fmt: skip


def gradients_figure(tr: Trace, layer: str) -> Any:
    """The figure of GRADIENTS_PNG: gradient norms through time (log), and the layer's
    ||dxs_t|| over the reference's (linear)."""
    fig = _figure(GRADIENTS_SIZE)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1])
    _draw_flow(top, tr)
    _draw_ratio(bottom, tr)
    _time_label(bottom, tr, "   (backward call 0 of each segment)")
    _suptitle(fig, tr, layer)
    _label_segments(fig, top, tr, _step_width(fig, top, tr))
    return fig


def _draw_flow(ax: Any, tr: Trace) -> None:
    lines = (
        ("ref_dh", "reference ||dL/dh_t||,\nloss of every step",
         dict(color="tab:blue", linewidth=1.6)),
        ("ref_dh_last", "reference ||dL/dh_t||,\nloss of the last step only",
         dict(color="tab:blue", linestyle=":", linewidth=1.6)),
        ("ref_dxs", "reference ||dxs[:, t]||", dict(color="black", linestyle="--", linewidth=1.2)),
        ("layer_dxs", f"{YOUR} ||dxs[:, t]||",
         dict(color="tab:orange", marker="o", markersize=3, linewidth=1)),
    )  # fmt: skip
    once = _Once()
    for s in tr.segments:
        for attr, label, style in lines:
            y = getattr(s, attr)
            if y is None:
                continue
            y = np.where((y > 0) & np.isfinite(y), y, np.nan)  # a log axis cannot show 0
            short = {} if s.T > 2 or "marker" in style else dict(marker="o", markersize=2.5)
            ax.plot(_steps(s), y, label=once(label), **style, **short)
    ax.set_yscale("log")
    ax.set_ylabel("gradient size\n(log scale)", fontsize=9)
    ax.set_title("How the gradient flows back through time: it vanishes or explodes "
                 "as it goes back", fontsize=9, loc="left")  # fmt: skip
    ax.grid(True, which="major", alpha=0.3)
    _mark_segments(ax, tr)
    _legend(ax)


def ratio_limits(tr: Trace) -> tuple[float, float]:
    """The y range of the ratio panel: at least 1 +- RATIO_SPAN, at most 0 .. RATIO_CAP."""
    values = [r for s in tr.segments if s.dxs_ratio is not None for r in s.dxs_ratio]
    finite = [v for v in values if math.isfinite(v)]
    low = max(0.0, min([1 - RATIO_SPAN, *finite]))
    high = min(RATIO_CAP, max([1 + RATIO_SPAN, *finite]))
    return low, high


def _draw_ratio(ax: Any, tr: Trace) -> None:
    once = _Once()
    low, edge = ratio_limits(tr)  # ratios above `edge` are drawn on it
    largest: tuple[float, int] | None = None
    for s in tr.segments:
        x = _steps(s)
        if s.ratio_band is not None:
            band = np.minimum(s.ratio_band, 10 * RATIO_CAP)
            ax.fill_between(x, 1 - band, 1 + band, color="tab:green", alpha=0.25, linewidth=0,
                            step="mid", label=once("allowed by the tolerance"))  # fmt: skip
        ax.hlines(1.0, x[0] - 0.5, x[-1] + 0.5, colors="black", linewidth=0.8,
                  label=once("1.0: the same size as the reference"))  # fmt: skip
        r = s.dxs_ratio
        if r is None:
            continue
        over = np.isinf(r) | (r > edge)
        nan = np.isnan(r)
        ax.plot(x, np.where(over | nan, np.nan, r), color="tab:orange", marker="o",
                markersize=3.5, linewidth=1.3, label=once(f"{YOUR} ÷ reference"))  # fmt: skip
        wrong = ~(s.errors["dxs"][0] <= s.threshold) & ~over & ~nan
        if wrong.any():
            ax.plot(x[wrong], r[wrong], "o", color="tab:red", markersize=5, zorder=3,
                    label=once("a step where dxs is wrong"))  # fmt: skip
        if over.any():
            ax.plot(x[over], np.full(int(over.sum()), edge), "^", color="tab:red",
                    markersize=6, label=once(f"above {edge:.3g}: off the scale"))  # fmt: skip
            finite = np.where(np.isfinite(r), r, -1.0)
            t = int(np.argmax(finite))
            if finite[t] > 0 and (largest is None or finite[t] > largest[0]):
                largest = (float(finite[t]), s.first + t)
        if nan.any():
            ax.plot(x[nan], np.full(int(nan.sum()), edge), "x", color="tab:red", markersize=8,
                    mew=2, label=once(f"NaN or inf from {YOUR}"))  # fmt: skip
    pad = 0.05 * (edge - low)
    ax.set_ylim(low - pad, edge + pad)
    ax.set_ylabel(f"{YOUR}\n÷ reference", fontsize=9)
    title = f"Is {YOUR}'s ||dxs[:, t]|| the right size? Yours ÷ the reference's: 1.0 = right"
    if largest is not None:
        title += f" (largest {_times(largest[0])}, at t = {largest[1]})"
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(True, which="major", alpha=0.3)
    _mark_segments(ax, tr)
    _legend(ax)
