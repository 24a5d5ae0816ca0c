"""Turn a Report into what people and machines read: a text verdict and JSON."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from crosscheck import compare
from crosscheck.cases import parse_case
from crosscheck.kinds import get_kind
from crosscheck.policy import note_text
from crosscheck.quantities import FORWARD_QUANTITIES, QUANTITIES
from crosscheck.report import Failure, Report

JSON_SCHEMA_VERSION = 1


def fmt_error(error: float) -> str:
    """A relative error as a student reads it: 'off by 42%' when large, '2.3e-07' when small."""
    if error != error or error == float("inf"):
        return "NaN/inf"
    if error >= 100:
        return f"off by {error:.1e}x"
    if error >= 1e-3:
        pct = 100 * error
        return f"off by {pct:.2g}%" if pct < 10 else f"off by {pct:.0f}%"
    return f"{error:.1e}"


def _worst(report: Report, quantity: str) -> tuple[str, float, float, int] | None:
    """(oracle, error, threshold, cases compared) of the cell with the worst ratio."""
    cells = [(b, report.cells[(b, quantity)]) for b in report.backends
             if (b, quantity) in report.cells and report.cells[(b, quantity)].checked]  # fmt: skip
    if not cells:
        return None
    b, cell = max(cells, key=lambda bc: bc[1].ratio)
    return b, cell.error, cell.threshold, max(c.checked for _, c in cells)


def summary_table(report: Report) -> str:
    """Per quantity: the worst relative error over every case and oracle, its threshold,
    and in how many cases it was wrong."""
    w = max([5, *(len(report.name(q)) for q in QUANTITIES)])
    lines = [f"{'':<{w}} {'worst error':>13} {'threshold':>10}  {'wrong in':<18} {'against':<14}"]
    for q in QUANTITIES:
        worst = _worst(report, q)
        if worst is None:
            continue
        b, error, limit, _ = worst
        bad = report.failing_by_quantity.get(q, 0)
        judged = max(report.checked.values(), default=0)
        mark = "  <- wrong" if error > limit else ""
        wrong = f"{bad} of {judged} cases"
        name = report.name(q)
        lines.append(
            f"{name:<{w}} {fmt_error(error):>13} {limit:>10.1e}  {wrong:<18} {b:<14}{mark}"
        )
    lines.append(
        f"error: largest |layer - reference| / max(|reference|, {compare.FLOOR:g}), over all cases;"
    )
    lines.append(
        f"threshold (of that case): {compare.RTOL['float32']:g} for float32, "
        f"{compare.RTOL['float64']:g} for float64, times sqrt(steps)"
    )
    return "\n".join(line.rstrip() for line in lines)


def _dtype_counts(report: Report) -> str:
    return ", ".join(f"{n} {dt}" for dt, n in sorted(report.dtype_counts.items()))


def verdict(report: Report) -> str:
    """The one-line verdict, as --quiet prints it."""
    n = max(report.planned, report.case_count)
    if report.fatal and not report.failing_count:
        return f"FAIL: {report.layer}: {report.fatal}"
    if report.failed:
        bad = report.failing_count
        names = ", ".join(report.name(q) for q in report.failures_by_quantity())
        line = f"FAIL: {report.layer} is wrong on {bad} of {n} cases ({names})"
        return line + (f"; {report.not_run} cases not run" if report.not_run else "")
    if report.interrupted:
        return f"INTERRUPTED after {report.case_count} cases: no verdict (none failed so far)"
    if report.disagreements:
        cases = len({d.case_id for d in report.disagreements})
        return (
            f"INCONCLUSIVE: the oracles disagree with each other on {cases} of {n} cases; "
            "the layer is not blamed (please report this as a crosscheck bug)"
        )
    if report.unchecked:
        return (
            f"INCONCLUSIVE: no chosen backend can check {len(report.unchecked)} of {n} cases "
            f"(e.g. {report.unchecked[0]}; numeric takes small cases only: add --backend jax "
            "or torch)"
        )
    if report.unjudged:
        return (
            f"PASS: {report.layer} agrees with {', '.join(report.backends)} on all "
            f"{n - report.unjudged} cases they can check ({report.unjudged} of {n} are too "
            "large for numeric: add --backend jax or torch)"
        )
    return f"PASS: {report.layer} agrees with {', '.join(report.backends)} on all {n} cases"


def _when(f: Failure) -> str:
    """Where in time, in the direction the computation runs."""
    if f.first_bad_step is None or f.last_bad_step is None:
        return ""
    first, last = f.first_bad_step, f.last_bad_step
    if f.quantity in FORWARD_QUANTITIES:
        return f": wrong from step t={first} on"
    # Backward runs from the last step to the first.
    span = f"t={last}" if first == last else f"t={last} back to t={first}"
    end = _last_step(f)
    right = "" if last >= end else f", right at t={end}" if last + 1 == end else (
        f", right at t={end} down to t={last + 1}")  # fmt: skip
    return f": wrong from {span}{right}"


def _last_step(f: Failure) -> int:
    """The segment's last time step, from the case id."""
    return parse_case(f.case_id).segments[f.segment].T - 1


def _where(f: Failure) -> str:
    return f"segment {f.segment}" + ("" if f.call is None else f", backward call {f.call}")


def failure_details(report: Report) -> str:
    """Per failing quantity: how wrong, in how many cases, and where it first went wrong;
    then one reproducer. Lines stay within 100 columns, but for the reproducer."""
    lines = [f"Wrong in {report.failing_count} of {max(report.planned, report.case_count)} cases:"]
    order = {cid: i for i, cid in enumerate(["", *report.failing_case_ids])}
    for q, group in report.failures_by_quantity().items():
        first = min(group, key=lambda f: order.get(f.case_id, len(order)))
        n = report.failing_by_quantity.get(q, 0)
        in_cases = f"in {n} case{'s' if n != 1 else ''}" if n else ""
        if first.kind == "mismatch":
            worst = _worst(report, q)
            error, limit = (worst[1], worst[2]) if worst else (first.error or 0.0, 0.0)
            lines.append(f"  {report.name(q):<5} {fmt_error(error)} (threshold {limit:.1e}), "
                         f"{in_cases}; first against {first.backend}:")  # fmt: skip
            lines.append(f"        case {first.case_id}")
            lines.append(f"        {_where(first)}{_when(first)}")
        else:
            lines.append(
                f"  {report.name(q):<5} {first.kind}{', ' + in_cases if in_cases else ''}:"
            )
            lines += ["        " + ln for ln in _wrap(first.message, 90)]
            if first.case_id:
                lines.append(f"        case {first.case_id}, {_where(first)}")
            other = next((f for f in group if _gist(f.message) != _gist(first.message)), None)
            if other is not None:  # a second, different problem of the same call
                lines += ["        " + ln for ln in _wrap(f"and also: {other.message}", 90)]
                if other.case_id:
                    lines.append(f"        case {other.case_id}, {_where(other)}")
    first_failure = next(
        (f for f in report.failures if f.case_id in report.failing_case_ids[:1]), None
    )
    if first_failure is not None:
        lines.append("Rerun the first failing case alone:")
        lines.append("  " + first_failure.reproducer)
    return "\n".join(lines)


def _gist(message: str) -> str:
    """'forward raised IndexError: ... (at f.py:3)' -> 'forward raised IndexError'."""
    return message.split(":", 1)[0]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def notes_text(report: Report) -> str:
    """The notes, one paragraph each ('' when there are none)."""
    lines = []
    for kind, note in report.notes.items():
        head = f"Note ({kind}, {note.cases} case{'s' if note.cases != 1 else ''}): the layer "
        lines += _wrap(head + note_text(kind) + f". First seen: {note.message}.", 98)
    if lines and not report.strict:
        lines.append("Notes do not fail the check; --strict makes them fail.")
    return "\n".join(lines)


def explanation(report: Report) -> str:
    """The "Likely cause" and "Smallest failing case" sections ('' when there are none)."""
    lines = []
    if report.diagnosis:
        lines.append("Likely cause:")
        for d in report.diagnosis:
            wrapped = _wrap(d, 94)
            lines += [f"  - {wrapped[0]}", *(f"    {w}" for w in wrapped[1:])]
    if report.smallest_case:
        lines.append(f"Smallest failing case: {report.smallest_case}")
        if report.smallest_reproducer:
            lines.append(f"  {report.smallest_reproducer}")
        lines += [f"  {n}" for n in report.numbers]
    return "\n".join(lines)


OUTPUT_LINES = 12  # lines of the layer's captured output shown in the text report


def captured_output(report: Report) -> str:
    """The layer's prints, at most OUTPUT_LINES lines of at most 100 columns."""
    lines = report.output.splitlines()
    if len(lines) > OUTPUT_LINES:
        half = OUTPUT_LINES // 2
        lines = [*lines[:half], f"[... {len(lines) - 2 * half} lines ...]", *lines[-half:]]
    return "\n".join("  | " + (ln if len(ln) <= 96 else ln[:93] + "...") for ln in lines)


def render_text(report: Report, *, with_verdict: bool = True) -> str:
    """The report a student reads: the verdict first, then what is wrong, where and why.
    with_verdict: also the verdict line, right after the heading and again at the end."""
    kind = "" if report.kind == "rnn" else f" ({get_kind(report.kind).title}, --kind {report.kind})"
    head = (
        f"crosscheck {report.layer}{kind}: {report.case_count} cases ({_dtype_counts(report)}), "
        f"seed {report.seed}, {report.elapsed:.1f} s"
    )
    parts = [*_wrap(head, 98), *(_wrap(verdict(report), 98) if with_verdict else [])]
    if report.legend:
        parts += _wrap(report.legend, 98)
    if report.isolation.startswith("in this process"):
        parts += _wrap(f"The layer ran {report.isolation}: save it in a module for an isolated "
                       "check.", 98)  # fmt: skip
    if report.left_out:
        parts += ["", f"Not run from the notebook ({len(report.left_out)}; IPython only):"]
        parts += ["  " + (s if len(s) <= 96 else s[:93] + "...") for s in report.left_out[:8]]
    if report.notes:
        parts += ["", notes_text(report)]
    if report.cells:  # nothing was compared when the layer was stopped at once
        parts += ["", summary_table(report)]
    if report.fatal:
        parts += ["", *_wrap(f"Stopped: {report.fatal}", 98)]
        if report.not_run:
            parts.append(f"{report.not_run} cases were not run after that.")
    if report.failures:
        parts += ["", failure_details(report)]
        if report.diagnosis or report.smallest_case:
            parts += ["", explanation(report)]
    if report.disagreements:
        d = report.disagreements[0]
        n = len({x.case_id for x in report.disagreements})
        parts += ["", *_wrap(
            f"Oracles {d.oracles[0]} and {d.oracles[1]} disagree on {d.quantity} (error "
            f"{d.error:.3g} > {d.threshold:.3g}) in case {d.case_id}, segment {d.segment}: "
            f"{n} cases were not judged.", 98)]  # fmt: skip
    if report.output:
        parts += ["", "The layer printed (shortened):", captured_output(report)]
    if report.imported:
        parts += ["", f"The layer imported {', '.join(report.imported)}."]
    if with_verdict:  # first and last: the last line is what a terminal shows
        parts += ["", verdict(report)]
    return "\n".join(parts)


def to_json(report: Report) -> dict[str, Any]:
    """The documented, stable JSON form (see README, 'JSON output')."""

    def num(x: float | None) -> float | str | None:
        if x is None or (x == x and abs(x) != float("inf")):
            return x
        return str(x)

    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "api": report.api,
        "names": report.names,
        "verdict": report.verdict_word,
        "ok": report.ok,
        "exit_code": report.exit_code,
        "layer": report.layer,
        "kind": report.kind,
        "isolation": report.isolation,
        "seed": report.seed,
        "cases": report.case_count,
        "case_ids": report.case_ids,
        "failing_cases": report.failing_count,
        "not_run": report.not_run,
        "unjudged": report.unjudged,
        "fatal": report.fatal,
        "output": report.output,
        "imported": report.imported,
        "notes": [
            {"kind": n.kind, "message": n.message, "case_id": n.case_id, "cases": n.cases}
            for n in report.notes.values()
        ],
        "strict": report.strict,
        "left_out": report.left_out,
        "interrupted": report.interrupted,
        "elapsed_s": round(report.elapsed, 3),
        "backends": [
            {
                "name": b,
                "cases_checked": report.checked.get(b, 0),
                "cases_skipped": report.skipped.get(b, 0),
            }
            for b in report.backends
        ],
        "summary": [
            {
                "backend": b,
                "quantity": q,
                "name": report.name(q),
                "worst_error": num(c.error),
                "threshold": c.threshold,
                "ratio": num(c.ratio),
                "ok": c.ratio <= 1,
                "case": c.case_id,
                "compared": c.checked,
            }
            for (b, q), c in report.cells.items()
        ],
        "failures": [
            {**f.__dict__, "name": report.name(f.quantity), "error": num(f.error)}
            for f in report.failures
        ],
        "disagreements": [{**d.__dict__, "error": num(d.error)} for d in report.disagreements],
        "unchecked": report.unchecked,
        "diagnosis": report.diagnosis,
        "smallest_case": report.smallest_case,
        "smallest_reproducer": report.smallest_reproducer,
        "numbers": report.numbers,
    }


def dump_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2)
