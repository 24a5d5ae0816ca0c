"""Turn a Report into what people and machines read: a text verdict and JSON."""

from __future__ import annotations

import json
from typing import Any

from crosscheck import compare
from crosscheck.quantities import QUANTITIES
from crosscheck.report import Failure, Report

JSON_SCHEMA_VERSION = 1


def _fmt_ratio(ratio: float) -> str:
    if ratio != ratio or ratio == float("inf"):
        return "inf"
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:.1e}"


def summary_table(report: Report) -> str:
    """backend x quantity: worst error / threshold ('-' where nothing was compared)."""
    width = max([len(b) for b in report.backends] + [12])
    lines = [" " * width + "  " + "".join(f"{q:>10}" for q in QUANTITIES) + "     cases"]
    for b in report.backends:
        row = f"{b:<{width}}  "
        for q in QUANTITIES:
            cell = report.cells.get((b, q))
            if cell is None or not cell.checked:
                row += f"{'-':>10}"
            else:
                mark = "" if cell.ratio <= 1 else " X"
                row += f"{_fmt_ratio(cell.ratio) + mark:>10}"
        lines.append(row + f"{report.checked.get(b, 0):>10}")
    lines.append(
        "cells: worst error / threshold over all cases (pass <= 1, X = fail); "
        f"threshold = max({compare.RTOL['float32']:g} (float32) or {compare.RTOL['float64']:g} "
        "(float64) x sqrt(steps), 4 x oracle accuracy)"
    )
    return "\n".join(lines)


def _dtype_counts(report: Report) -> str:
    return ", ".join(f"{n} {dt}" for dt, n in sorted(report.dtype_counts.items()))


def verdict(report: Report) -> str:
    """The one-line verdict, as --quiet prints it."""
    n = max(report.planned, report.case_count)
    if report.fatal and not report.failing_count:
        return f"FAIL: {report.layer}: {report.fatal}"
    if report.failed:
        bad = report.failing_count
        names = ", ".join(report.failures_by_quantity())
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
            f"{n - report.unjudged} cases they can check ({report.unjudged} of {n} are too large "
            "for numeric: add --backend jax or torch to check them)"
        )
    return f"PASS: {report.layer} agrees with {', '.join(report.backends)} on all {n} cases"


def _failure_line(f: Failure, worst_ratio: float | None = None) -> str:
    """One failure, in the case where it was first seen; worst_ratio: the worst over all cases."""
    where = f"segment {f.segment}" + ("" if f.call is None else f", backward call {f.call}")
    if f.kind == "mismatch":
        assert f.error is not None and f.threshold is not None
        step = "" if f.first_bad_step is None else f", first bad time step t={f.first_bad_step}"
        worst = "" if worst_ratio is None else f"; worst over all cases x{_fmt_ratio(worst_ratio)}"
        return (
            f"{f.quantity:>4}: error {f.error:.3g} vs threshold {f.threshold:.3g} "
            f"(x{_fmt_ratio(f.error / f.threshold)}) against {f.backend} in case {f.case_id}, "
            f"{where}{step}{worst}"
        )
    return f"{f.quantity:>4}: {f.kind}: {f.message} (case {f.case_id}, {where})"


def failure_details(report: Report) -> str:
    """Per failing quantity: where it first went wrong and the worst ratio; then one reproducer."""
    lines = []
    order = {cid: i for i, cid in enumerate(["", *report.failing_case_ids])}
    for group in report.failures_by_quantity().values():
        first = min(group, key=lambda f: order[f.case_id])
        ratios = [f.error / f.threshold for f in group if f.error is not None and f.threshold]
        lines.append("  " + _failure_line(first, max(ratios) if len(ratios) > 1 else None))
    first_failure = next(
        (f for f in report.failures if f.case_id in report.failing_case_ids[:1]), None
    )
    if first_failure is not None:
        lines.append("Rerun the first failing case alone:")
        lines.append("  " + first_failure.reproducer)
    return "\n".join(lines)


def explanation(report: Report) -> str:
    """The "Likely cause" and "Smallest failing case" sections ('' when there are none)."""
    lines = []
    if report.diagnosis:
        lines.append("Likely cause:")
        lines += [f"  - {d}" for d in report.diagnosis]
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


def render_text(report: Report) -> str:
    head = (
        f"crosscheck {report.layer}: {report.case_count} cases ({_dtype_counts(report)}), "
        f"seed {report.seed}, {report.elapsed:.1f} s"
    )
    parts = [head]
    if report.isolation.startswith("in this process"):
        parts.append(f"The layer ran {report.isolation}: save it in a module for an isolated "
                     "check.")  # fmt: skip
    parts += ["", summary_table(report), ""]
    if report.fatal:
        parts += [f"The layer was stopped: {report.fatal}", ""]
        if report.not_run:
            parts[-1:] = [f"{report.not_run} cases were not run after that.", ""]
    if report.failures:
        parts.append(f"{len(report.failures)} problems in {report.failing_count} cases:")
        parts.append(failure_details(report))
        parts.append("")
        if report.diagnosis or report.smallest_case:
            parts += [explanation(report), ""]
    if report.disagreements:
        d = report.disagreements[0]
        parts.append(
            f"Oracles {d.oracles[0]} and {d.oracles[1]} disagree on {d.quantity} "
            f"(error {d.error:.3g} > {d.threshold:.3g}) in case {d.case_id}, segment {d.segment}: "
            f"{len({x.case_id for x in report.disagreements})} cases were not judged."
        )
        parts.append("")
    if report.output:
        parts += ["The layer printed (shortened):", captured_output(report), ""]
    if report.imported:
        parts += [f"The layer imported {', '.join(report.imported)}.", ""]
    parts.append(verdict(report))
    return "\n".join(parts)


def to_json(report: Report) -> dict[str, Any]:
    """The documented, stable JSON form (see README, 'JSON output')."""

    def num(x: float | None) -> float | str | None:
        if x is None or (x == x and abs(x) != float("inf")):
            return x
        return str(x)

    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "verdict": report.verdict_word,
        "ok": report.ok,
        "exit_code": report.exit_code,
        "layer": report.layer,
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
                "worst_error": num(c.error),
                "threshold": c.threshold,
                "ratio": num(c.ratio),
                "ok": c.ratio <= 1,
                "case": c.case_id,
                "compared": c.checked,
            }
            for (b, q), c in report.cells.items()
        ],
        "failures": [{**f.__dict__, "error": num(f.error)} for f in report.failures],
        "disagreements": [{**d.__dict__, "error": num(d.error)} for d in report.disagreements],
        "unchecked": report.unchecked,
        "diagnosis": report.diagnosis,
        "smallest_case": report.smallest_case,
        "smallest_reproducer": report.smallest_reproducer,
        "numbers": report.numbers,
    }


def dump_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2)
