"""A Report as HTML, for a notebook: `report_html(report) -> str`.

One self-contained fragment: inline styles only (no <style> block, no script, nothing
fetched), every text escaped, the pictures inline as base64 PNGs. In order: the verdict
(green PASS, red FAIL, amber INCONCLUSIVE, grey INTERRUPTED), where and how the layer
ran, notes, the summary table (quantity x oracle: worst error and threshold), the
failures grouped by quantity, the likely cause, the smallest failing case with its
numbers, the layer's output (shortened) and, with matplotlib, the two pictures of
crosscheck.plots. The words are the text report's (crosscheck.render).

A layer defined in a notebook cell runs in the notebook's process (the report says so),
and a shell command cannot rerun it: the reruns are then shown as verify(...) calls.
"""

from __future__ import annotations

import base64
import html
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from crosscheck import compare
from crosscheck.kinds import get_kind
from crosscheck.plots import PlotError, PlotUnavailable, write_plots
from crosscheck.policy import note_text
from crosscheck.quantities import FORWARD_QUANTITIES, QUANTITIES
from crosscheck.render import OUTPUT_LINES, fmt_error, verdict
from crosscheck.report import Failure, Report

# verdict word -> (text, background, accent)
COLOURS = {
    "pass": ("#0d652d", "#e6f4ea", "#188038"),
    "fail": ("#a50e0e", "#fce8e6", "#d93025"),
    "inconclusive": ("#7a4f01", "#fef7e0", "#f9ab00"),
    "interrupted": ("#3c4043", "#f1f3f4", "#9aa0a6"),
}
BAD = "background:#fce8e6;color:#a50e0e;font-weight:600"
GREY = "color:#5f6368"
# A white card with dark text, legible in a dark notebook theme too.
CARD = (
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;"
    "line-height:1.45;color:#202124;background:#ffffff;border:1px solid #dadce0;"
    "border-radius:6px;padding:10px 14px;max-width:64em"
)
HEADING = "font-weight:600;margin:12px 0 4px 0"
PRE = (
    "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;"
    "background:#f8f9fa;color:#202124;border:1px solid #e8eaed;border-radius:4px;"
    "padding:6px 8px;margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere;"
    "max-height:24em;overflow:auto;text-align:left"
)
TABLE = "border-collapse:collapse;margin:4px 0;font-size:12px"
TH = "border-bottom:1px solid #9aa0a6;padding:3px 10px;text-align:left;background:#ffffff"
TD = "border-bottom:1px solid #e8eaed;padding:3px 10px;text-align:left;vertical-align:top"
NUM = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"
CODE = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px"
MAX_LISTED = 12  # notes, skipped lines: at most this many shown
OUTPUT_WIDTH = 100  # columns of one line of the layer's output


def report_html(report: Report, *, pictures: bool = True) -> str:
    """The report as one self-contained HTML fragment. pictures: draw the two plots of
    crosscheck.plots (when matplotlib is installed); without them it is instant."""
    parts = [
        _verdict(report),
        _context(report),
        _notes(report),
        _summary(report),
        _stopped(report),
        _failures(report),
        _diagnosis(report),
        _smallest(report),
        _disagreements(report),
        _output(report),
        _pictures(report) if pictures else "",
    ]
    body = "".join(p for p in parts if p)
    return f'<div class="crosscheck-report" style="{CARD}">{body}</div>'


# ---------------------------------------------------------------------------------------
# Pieces


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _p(content: str, style: str = "margin:4px 0") -> str:
    return f'<div style="{style}">{content}</div>'


def _heading(text: str) -> str:
    return _p(_e(text), HEADING)


def _pre(text: str) -> str:
    return f'<pre style="{PRE}">{_e(text)}</pre>'


def _code(text: str) -> str:
    return f'<code style="{CODE}">{_e(text)}</code>'


def _list(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """Escaped items as a bulleted list, at most `limit` of them."""
    shown = [f'<li style="margin:2px 0">{_e(i)}</li>' for i in items[:limit]]
    if len(items) > limit:
        shown.append(f'<li style="margin:2px 0;{GREY}">... and {len(items) - limit} more</li>')
    return f'<ul style="margin:2px 0;padding-left:20px">{"".join(shown)}</ul>'


def _table(header: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]) -> str:
    """header: escaped by this; rows: (html, extra style) per cell, already escaped."""
    head = "".join(f'<th style="{TH}">{_e(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{TD};{style}">{cell}</td>' for cell, style in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _sci(x: float) -> str:
    """'2.3e-07'; 'NaN/inf' for what is not finite."""
    return f"{x:.1e}" if x == x and abs(x) != float("inf") else "NaN/inf"


def _in_process(report: Report) -> bool:
    return report.isolation.startswith("in this process")


def _attr(report: Report) -> str:
    """The layer's name in the notebook: 'TimeRNN' of '__main__:TimeRNN'."""
    return report.layer.rpartition(":")[2] or "TimeRNN"


def _rerun(report: Report, command: str) -> str:
    """A reproducer to show: the shell command, or for a layer that ran in this process
    (defined in a notebook cell: no command can load it) the same case as a verify call."""
    if not _in_process(report):
        return command
    try:
        args = shlex.split(command)
    except ValueError:
        return command
    case = args[args.index("--case") + 1] if "--case" in args[:-1] else None
    if case is None:
        return command
    backend = args[args.index("--backend") + 1] if "--backend" in args[:-1] else None
    which = f", backends=[{backend!r}]" if backend else ""
    return (
        "from crosscheck import parse_case, verify\n"
        f"verify({_attr(report)}, cases=[parse_case({case!r})]{which})"
    )


# ---------------------------------------------------------------------------------------
# Sections


def _verdict(report: Report) -> str:
    fg, bg, accent = COLOURS.get(report.verdict_word, COLOURS["inconclusive"])
    line, word = verdict(report), report.verdict_word.upper()
    rest = line[len(word) :].lstrip(": ") if line.startswith(word) else line
    badge = (
        f'<span style="background:{accent};color:#ffffff;border-radius:3px;'
        f'padding:1px 7px;margin-right:4px;letter-spacing:0.04em">{_e(word)}</span>'
    )
    style = (
        f"background:{bg};color:{fg};border-left:6px solid {accent};border-radius:4px;"
        "padding:7px 10px;font-size:14px;font-weight:600"
    )
    return f'<div class="crosscheck-verdict" style="{style}">{badge}{_e(rest)}</div>'


def _context(report: Report) -> str:
    dtypes = ", ".join(f"{n} {dt}" for dt, n in sorted(report.dtype_counts.items()))
    counted = f"{report.case_count} cases" + (f" ({dtypes})" if dtypes else "")
    line = f"{report.layer}: {counted}, seed {report.seed}, {report.elapsed:.1f} s"
    parts = [_p(_e(line), f"margin:6px 0 2px 0;{GREY}")]
    if _in_process(report):
        spec = f"NOTEBOOK.ipynb:{_attr(report)}"
        command, call = f"python -m crosscheck --layer {spec}", f'verify("{spec}")'
        text = (
            f"The layer ran {_e(report.isolation)}: no time or memory limit protected this "
            f"check. For an isolated one, save the notebook and run {_code(command)} "
            f"(or {_code(call)})."
        )
        parts.append(_p(text, "margin:4px 0;color:#7a4f01"))
    elif report.isolation:
        parts.append(_p(_e(f"Where it ran: {report.isolation}."), f"margin:2px 0;{GREY}"))
    # The lines of a notebook that were not run (crosscheck.notebook), once the judge
    # keeps them in the report.
    skipped = list(report.left_out)
    if skipped:
        parts.append(_heading("Not run from the notebook (IPython magics and shell lines):"))
        parts.append(_list(skipped))
    if report.imported:
        parts.append(_p(_e(f"The layer imported {', '.join(report.imported)}."), GREY))
    return "".join(parts)


def _notes(report: Report) -> str:
    if not report.notes:
        return ""
    items = []
    for kind, note in report.notes.items():
        cases = f"{note.cases} case{'s' if note.cases != 1 else ''}"
        items.append(f"{kind} ({cases}): the layer {note_text(kind)}. First seen: {note.message}.")
    tail = "" if report.strict else _p(
        _e("Notes do not fail the check; verify(..., strict=True) (--strict) makes them fail."),
        f"margin:2px 0;{GREY}",
    )  # fmt: skip
    return _heading("Notes") + _list(items) + tail


def _summary(report: Report) -> str:
    quantities = [q for q in QUANTITIES if any((b, q) in report.cells for b in report.backends)]
    if not quantities:
        return ""
    kind = get_kind(report.kind)
    rows = []
    for q in quantities:
        row = [(f'<span title="{_e(kind.meaning(q))}">{_code(q)}</span>', "")]
        for b in report.backends:
            cell = report.cells.get((b, q))
            if cell is None or not cell.checked:
                row.append(("-", f"{NUM};{GREY}"))
                continue
            ok = cell.ratio <= 1
            mark = "&le;" if ok else "&gt;"
            text = (
                f"{_e(fmt_error(cell.error))}"
                f'<span style="{GREY};font-size:11px"> {mark} {_e(_sci(cell.threshold))}</span>'
            )
            row.append((text, NUM if ok else f"{NUM};{BAD}"))
        if report.failures:
            n = report.failing_by_quantity.get(q, 0)
            row.append((f"{n}" if n else "-", NUM if not n else f"{NUM};{BAD}"))
        rows.append(row)
    counts = [("cases", f"{GREY}")]
    for b in report.backends:
        skipped = report.skipped.get(b, 0)
        extra = f" (+{skipped} too large)" if skipped else ""
        counts.append((_e(f"{report.checked.get(b, 0)}{extra}"), f"{NUM};{GREY}"))
    if report.failures:
        counts.append((_e(f"{report.failing_count} of {report.case_count}"), f"{NUM};{GREY}"))
    rows.append(counts)
    header = ["", *(f"vs {b}" for b in report.backends)]
    if report.failures:
        header.append("cases wrong")
    note = (
        "Each cell: the error of the case where it was largest against its threshold, and "
        "that threshold. "
        f"error = max |layer - reference| / max(max |reference|, {compare.FLOOR:g}); "
        f"threshold = {compare.RTOL['float32']:g} (float32) or {compare.RTOL['float64']:g} "
        "(float64) x sqrt(steps)."
    )
    return (
        _heading("Worst case per quantity")
        + _table(header, rows)
        + _p(_e(note), f"margin:2px 0;font-size:11px;{GREY}")
    )


def _stopped(report: Report) -> str:
    if not report.fatal:
        return ""
    text = f"Stopped: {report.fatal}"
    if report.not_run:
        text += f" {report.not_run} cases were not run after that."
    return _p(_e(text), f"margin:8px 0;{BAD};padding:5px 8px;border-radius:4px")


def _steps(f: Failure) -> str:
    first, last = f.first_bad_step, f.last_bad_step
    if first is None:
        return ""
    if last is None or last == first:
        return f"; step t={first}"
    if f.quantity in FORWARD_QUANTITIES:
        return f"; wrong from t={first} on"
    return f"; wrong from t={last} back to t={first}"


def _severity(f: Failure) -> float:
    """A failure's error, NaN and missing errors counting as infinitely wrong."""
    return f.error if f.error is not None and f.error == f.error else float("inf")


def _failures(report: Report) -> str:
    if not report.failures:
        return ""
    order = {cid: i for i, cid in enumerate(report.failing_case_ids)}
    rows = []
    for q, group in report.failures_by_quantity().items():
        first = min(group, key=lambda f: order.get(f.case_id, -1))
        n = report.failing_by_quantity.get(q, 0) or len({f.case_id for f in group})
        if first.kind == "mismatch":
            worst = max(group, key=_severity)
            threshold = _sci(worst.threshold) if worst.threshold is not None else "?"
            what = (
                f"{_e(fmt_error(_severity(worst)))} "
                f'<span style="{GREY}">(threshold {_e(threshold)}, vs {_e(first.backend)})</span>'
            )
        else:
            what = f"<b>{_e(first.kind)}</b>: {_e(first.message)}"
        where = f"segment {first.segment}" + (
            "" if first.call is None else f", backward call {first.call}"
        )
        seen = (
            f"{_code(first.case_id)}<br>{_e(where + _steps(first))}"
            if first.case_id
            else '<span style="color:#5f6368">before any case</span>'
        )
        rows.append([(_code(q), ""), (what, ""), (str(n), NUM), (seen, "")])
    header = ["", "largest error", "cases", "first seen in"]
    count = report.failing_count
    parts = [
        _heading(f"Wrong in {count} of {max(report.planned, report.case_count)} cases"),
        _table(header, rows),
    ]
    if report.failures_left_out:
        parts.append(_p(_e(f"({report.failures_left_out} more problems not kept.)"), GREY))
    first_case = report.failing_case_ids[:1]
    rerun = next((f.reproducer for f in report.failures if f.case_id in first_case), None)
    if rerun:
        parts += [_p(_e("Rerun the first failing case alone:")), _pre(_rerun(report, rerun))]
    return "".join(parts)


def _diagnosis(report: Report) -> str:
    if not report.diagnosis:
        return ""
    return _heading("Likely cause") + _list(report.diagnosis, limit=len(report.diagnosis))


def _smallest(report: Report) -> str:
    if not report.smallest_case:
        return ""
    parts = [_heading("Smallest failing case"), _p(_code(report.smallest_case))]
    if report.smallest_reproducer:
        parts.append(_pre(_rerun(report, report.smallest_reproducer)))
    if report.numbers:
        parts += [_p(_e("Its first wrong numbers, beside the reference:")),
                  _pre("\n".join(report.numbers))]  # fmt: skip
    return "".join(parts)


def _disagreements(report: Report) -> str:
    if not report.disagreements:
        return ""
    d = report.disagreements[0]
    n = len({x.case_id for x in report.disagreements})
    text = (
        f"Oracles {d.oracles[0]} and {d.oracles[1]} disagree on {d.quantity} (error "
        f"{_sci(d.error)} > {_sci(d.threshold)}) in case {d.case_id}, segment {d.segment}: "
        f"{n} case{'s' if n != 1 else ''} not judged. The layer is not blamed."
    )
    return _heading("Oracles disagree") + _p(_e(text))


def shorten_output(text: str, lines: int = OUTPUT_LINES, width: int = OUTPUT_WIDTH) -> str:
    """At most `lines` lines (the first and last halves) of at most `width` columns."""
    rows = text.splitlines()
    if len(rows) > lines:
        half = lines // 2
        rows = [*rows[:half], f"[... {len(rows) - 2 * half} lines ...]", *rows[-half:]]
    return "\n".join(r if len(r) <= width else r[: width - 3] + "..." for r in rows)


def _output(report: Report) -> str:
    if not report.output:
        return ""
    short = shorten_output(report.output)
    said = "The layer printed" + (" (shortened):" if short != report.output else ":")
    return _heading(said) + _pre(short)


def _pictures(report: Report) -> str:
    """The two PNGs of crosscheck.plots, inline; or one line saying why there are none."""
    try:
        with tempfile.TemporaryDirectory(prefix="crosscheck-plots-") as tmp:
            plots = write_plots(report, tmp)
            images = [(p.name, base64.b64encode(Path(p).read_bytes()).decode("ascii"))
                      for p in plots.paths]  # fmt: skip
    except PlotUnavailable:
        why = "matplotlib is not installed (pip install 'handrnn[plot]')"
        return _p(_e(f"No pictures: {why}."), f"margin:8px 0 2px 0;{GREY}")
    except PlotError as exc:
        return _p(_e(f"No pictures: {exc}."), f"margin:8px 0 2px 0;{GREY}")
    caption = f"Pictures of the {plots.why}"
    imgs = "".join(
        f'<img src="data:image/png;base64,{data}" alt="{_e(name)}" '
        'style="max-width:100%;height:auto;display:block;margin:4px 0">'
        for name, data in images
    )
    return _heading(caption) + imgs
