"""Pictures of one case: where in time the layer goes wrong, and how gradients flow back.

`write_plots(report, out_dir)` draws the case whose values the report kept (the first
failing case, else the case with the longest segment) without running anything, and
writes two PNGs:

errors_per_step.png   one panel per time-indexed quantity (hs, dxs): the relative
                      error at each time step (log y) against the threshold of the
                      one tolerance model (crosscheck.compare).
gradient_norms.png    ||dxs[:, t]|| of the layer and of the reference, the
                      reference's ||dL/dh_t|| (L = sum(hs * dhs), so every step
                      feeds gradient in) and ||dL_last/dh_t|| for the loss of the
                      last step alone: the vanishing / exploding gradient picture.

Time runs across the case's segments (dotted lines mark segment starts). Matplotlib
is imported only here, and only its object API is used (no pyplot, no GUI backend).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck import compare
from crosscheck.cases import Case
from crosscheck.quantities import MEANING
from crosscheck.report import Evidence, Report

Array = NDArray[Any]

ERRORS_PNG = "errors_per_step.png"
GRADIENTS_PNG = "gradient_norms.png"
DPI = 100
ERRORS_SIZE = (9.0, 6.5)  # inches: 900 x 650 pixels at DPI
GRADIENTS_SIZE = (9.0, 5.0)  # 900 x 500 pixels
# Exact agreement (error 0) is drawn here, so a log axis can show it.
ERROR_FLOOR = 1e-18
_STARTS = {"z": "zeros", "c": "carried h", "s": "set_state", "r": "reset_state"}


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
    norms: Array = np.sqrt(np.sum(np.square(np.asarray(a, dtype=np.float64)), axis=(0, 2)))
    return norms


@dataclass(frozen=True)
class SegmentTrace:
    """One segment's series, each (T,), plotted at time steps first .. first + T - 1.

    errors: quantity -> one per-step error per call (hs: forward, one entry; dxs: one
    per backward call the layer completed). Gradient norms are for backward call 0;
    layer_dxs is None if the layer did not finish the segment.
    """

    first: int
    T: int
    start: str
    threshold: float
    errors: dict[str, list[Array]]
    layer_dxs: Array | None
    ref_dxs: Array
    ref_dh: Array
    ref_dh_last: Array


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
        errors: dict[str, list[Array]] = {"hs": [], "dxs": []}
        layer_dxs = None
        if k < len(observed):
            obs = observed[k]
            errors["hs"].append(_per_step("hs", obs.hs, r.hs))
            for j, grads in enumerate(obs.backward):
                errors["dxs"].append(_per_step("dxs", grads.dxs, r.backward[j].dxs))
            layer_dxs = step_norms(obs.backward[0].dxs) if obs.backward else None
        last_only = np.zeros_like(sd.dhs[0], dtype=np.float64)
        last_only[:, -1] = sd.dhs[0][:, -1]
        segments.append(
            SegmentTrace(
                first=first,
                T=seg.T,
                start=seg.start,
                threshold=compare.limit(case, (k, None, "hs"), ev.accuracy),
                errors=errors,
                layer_dxs=layer_dxs,
                ref_dxs=step_norms(r.backward[0].dxs),
                ref_dh=step_norms(hidden_state_grads(data.Wh, r.hs, sd.dhs[0])),
                ref_dh_last=step_norms(hidden_state_grads(data.Wh, r.hs, last_only)),
            )
        )
        first += seg.T
    return Trace(case, why, ev.oracle, segments, len(observed))


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
    _draw_errors(tr, report.layer, paths[0])
    _draw_gradients(tr, report.layer, paths[1])
    return Plots(paths, ev.case, why, ev.oracle)


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _steps(s: SegmentTrace) -> Array:
    return np.arange(s.first, s.first + s.T)


def _mark_segments(ax: Any, tr: Trace, stop_note: bool = True) -> None:
    """Dotted lines where a segment begins, labelled with how its state starts; a grey
    band over the segments the layer did not finish; whole time steps on the x axis."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if tr.completed < len(tr.segments):
        s = tr.segments[tr.completed]
        ax.axvspan(s.first - 0.5, tr.case.total_steps - 0.5, color="0.92", zorder=0)
        if stop_note:
            ax.text(s.first, 0.5, " the layer stopped here:\n see the report", va="center",
                    transform=ax.get_xaxis_transform(), color="0.35", fontsize=9)  # fmt: skip
    for k, s in enumerate(tr.segments):
        if k:
            ax.axvline(s.first - 0.5, color="0.6", linestyle=":", linewidth=1)
        if len(tr.segments) > 1:
            ax.annotate(f"seg {k}: {_STARTS[s.start]}", (s.first - 0.4, 1.0), fontsize=7,
                        xycoords=("data", "axes fraction"), va="top", color="0.4")  # fmt: skip


class _Once:
    """A legend label the first time it is asked for, None after (one entry per series)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, label: str) -> str | None:
        if label in self.seen:
            return None
        self.seen.add(label)
        return label


def _title(tr: Trace, layer: str) -> str:
    return f"{layer} vs {tr.oracle}: {tr.why} {tr.case.id}"


def _draw_errors(tr: Trace, layer: str, path: Path) -> None:
    fig = _figure(ERRORS_SIZE)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, q in zip(axes, ("hs", "dxs")):
        once = _Once()
        for s in tr.segments:
            x = _steps(s)
            ax.hlines(s.threshold, x[0] - 0.5, x[-1] + 0.5, colors="tab:red", linestyles="--",
                      label=once("threshold"))  # fmt: skip
            for j, err in enumerate(s.errors[q]):
                label = "layer" if q == "hs" else f"layer, backward call {j}"
                bad = ~np.isfinite(err)
                shown = np.where(bad, np.nan, np.maximum(err, ERROR_FLOOR))
                ax.plot(x, shown, marker="o", markersize=3, linewidth=1.2, color=f"C{j}",
                        linestyle="-" if j == 0 else "--", label=once(label))  # fmt: skip
                if bad.any():
                    top = np.full(int(bad.sum()), max(1.0, 10 * s.threshold))
                    ax.plot(x[bad], top, "x", color="tab:red", markersize=7,
                            label=once("NaN/inf from the layer"))  # fmt: skip
        empty = not any(s.errors[q] for s in tr.segments)
        if empty:
            ax.text(0.5, 0.5, "the layer produced no values for this quantity", ha="center",
                    transform=ax.transAxes, color="tab:red")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylabel("relative error at step t")
        ax.set_title(f"{q}: {MEANING[q]}", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        _mark_segments(ax, tr, stop_note=not empty)
        ax.legend(fontsize=8, loc="lower left")
    axes[-1].set_xlabel(f"time step t (across segments); an error of 0 is drawn at {ERROR_FLOOR:g}")
    fig.suptitle(_title(tr, layer), fontsize=9)
    fig.savefig(path, dpi=DPI)


def _draw_gradients(tr: Trace, layer: str, path: Path) -> None:
    fig = _figure(GRADIENTS_SIZE)
    ax = fig.subplots()
    lines = (
        ("ref_dh", "reference ||dL/dh_t||", dict(color="tab:blue", linewidth=1.5)),
        ("ref_dh_last", "reference ||dL/dh_t||, loss of the last step only",
         dict(color="tab:blue", linestyle=":", linewidth=1.5)),
        ("ref_dxs", "reference ||dxs[:, t]||", dict(color="black", linestyle="--", linewidth=1.2)),
        ("layer_dxs", "layer ||dxs[:, t]||",
         dict(color="tab:orange", marker="o", markersize=3, linewidth=1)),
    )  # fmt: skip
    once = _Once()
    for s in tr.segments:
        for attr, label, style in lines:
            y = getattr(s, attr)
            if y is None:
                continue
            y = np.where(y > 0, y, np.nan)  # a log axis cannot show 0: leave a gap
            ax.plot(_steps(s), y, label=once(label), **style)
    ax.set_yscale("log")
    ax.set_xlabel("time step t (across segments; backward call 0 of each segment)")
    ax.set_ylabel("gradient norm")
    ax.grid(True, which="major", alpha=0.3)
    _mark_segments(ax, tr)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2)
    ax.set_title(f"{_title(tr, layer)}\nregime {tr.case.regime}", fontsize=9)
    fig.savefig(path, dpi=DPI)
