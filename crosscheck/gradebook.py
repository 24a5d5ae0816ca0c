"""The gradebook of `python -m crosscheck grade`: gradebook.csv, gradebook.json, index.html.

    book = Gradebook(settings, rubric, graded, skipped, elapsed)
    book.write(Path("out"))     # [out/gradebook.csv, out/gradebook.json, out/index.html]

gradebook.csv   one row per submission: CSV_COLUMNS (the points of each rubric category
                among them); text cells that a spreadsheet would run as a formula
                (starting with = + - @) get a leading apostrophe.
gradebook.json  {"schema_version": 1, "tool", "settings", "rubric", "complete",
                "elapsed_s", "skipped", "submissions": [...]}; each submission has its
                verdict, score, categories, flags, notes and its full report in the
                form of `python -m crosscheck --json` (crosscheck.render.to_json), or
                null when it could not be loaded.
index.html      one self-contained page (inline CSS and JavaScript, pictures as base64
                PNGs, nothing fetched): a table of every submission, sorted by clicking
                a column header (or on load by `?sort=COLUMN&order=asc|desc`, COLUMN one
                of the headers' data-key: submission, verdict, score, the categories,
                failed, notes, flags, seconds), then one section per submission with its
                verdict, points per category, notes, likely cause, the smallest failing
                case with its numbers, the command that reruns it, the pictures of
                crosscheck.plots, what the layer printed and the full text report. All
                text a submission controls is escaped.
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosscheck.plots import ERRORS_PNG, GRADIENTS_PNG, PlotError, PlotUnavailable, write_plots
from crosscheck.policy import note_text
from crosscheck.render import render_text, to_json, verdict
from crosscheck.report import Report
from crosscheck.rubric import CATEGORIES, CategoryScore, Rubric, Score

SCHEMA_VERSION = 1
CSV_COLUMNS = (
    "submission",
    "verdict",
    "score",
    "max_score",
    *CATEGORIES,
    "failed_quantities",
    "notes",
    "likely_cause",
    "flags",
    "why",
    "reason",
    "status",
    "seconds",
    "spec",
    "code_hash",
)
SHORT = {
    "forward": "Fwd",
    "backward": "Bwd",
    "weight_gradients": "Weights",
    "state": "State",
    "protocol": "Protocol",
}
# What a report's `fatal` says -> a few words.
_FATAL_WORDS = (
    (r"ran past the total time limit", "submission time limit"),
    (r"ran past the time limit of \S+ s (?:in|while) (\S+)", "time limit: {0}"),
    (r"exited the process with exit code (-?\d+) in (\S+)", "exited (code {0}) in {1}"),
    (r"exited the process with exit code (-?\d+)", "exited (code {0})"),
    (r"killed by signal (\S+) in (\S+)", "killed by {0} in {1}"),
    (r"killed by signal (\S+)", "killed by {0}"),
    (r"memory limit", "memory limit"),
    (r"called exit\(\) with exit code (-?\d+)", "exited (code {0}) at import"),
    (r"This process was changed", "tampered with the judge"),
)
WHY_WIDTH = 64  # characters of the table's "Why" column


def _short(text: str, width: int = WHY_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


# Names of frameworks as the worker reports them -> the package flagged.
_FRAMEWORK = {"crosscheck.oracles": "crosscheck"}


@dataclass
class Graded:
    """One submission's result, everything the three files need (no live Report kept)."""

    name: str
    shown: str  # its path as given
    kind: str  # file, notebook, folder
    spec: str  # FILE:ATTR as reproducers use it
    code_hash: str | None = None
    verdict: str = "fail"  # pass, fail, inconclusive
    status: str = "not loaded"  # graded, stopped, not loaded, error
    score: Score | None = None
    reason: str = ""  # the one-line verdict, or why it was not graded
    fatal: str | None = None  # why the layer was stopped (report.fatal)
    first_failure: str = ""  # the first failure's message
    load_error: str | None = None
    internal_error: str | None = None
    traceback: str = ""
    failed_quantities: list[str] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    likely_cause: list[str] = field(default_factory=list)
    smallest_case: str | None = None
    smallest_reproducer: str | None = None
    numbers: list[str] = field(default_factory=list)
    reproducer: str = ""
    output: str = ""
    imported: list[str] = field(default_factory=list)  # at run time, in its worker
    source_imports: list[str] = field(default_factory=list)  # in its source
    flags: list[str] = field(default_factory=list)
    duplicate_of: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    text: str = ""  # the full text report
    report_json: dict[str, Any] | None = None
    plots: list[tuple[str, str]] = field(default_factory=list)  # (title, base64 PNG)
    plots_skipped: str = ""
    seconds: float = 0.0

    def attach(self, report: Report, score: Score, json_failures: int = 0) -> None:
        """Keep what the gradebook shows of `report` (and nothing that holds arrays).
        json_failures: failures kept in the JSON report (0: all the report kept)."""
        self.score = score
        self.verdict = report.verdict_word if report.verdict_word != "interrupted" else "fail"
        self.status = score.status
        self.fatal = report.fatal
        self.reason = f"stopped: {report.fatal}" if report.fatal else verdict(report)
        self.first_failure = report.failures[0].message if report.failures else ""
        self.failed_quantities = list(report.failures_by_quantity())
        self.notes = {
            kind: {
                "message": n.message,
                "case_id": n.case_id,
                "cases": n.cases,
                "meaning": note_text(kind),
            }
            for kind, n in report.notes.items()
        }
        self.likely_cause = list(report.diagnosis)
        self.smallest_case = report.smallest_case
        self.smallest_reproducer = report.smallest_reproducer
        self.numbers = list(report.numbers)
        first = report.failing_case_ids[:1]
        self.reproducer = report.smallest_reproducer or next(
            (f.reproducer for f in report.failures if f.case_id in first and f.reproducer), ""
        )
        self.output = report.output
        self.imported = sorted({_FRAMEWORK.get(m, m) for m in report.imported})
        self.text = render_text(report)
        full = to_json(report)
        kept = full["failures"][:json_failures] if json_failures else full["failures"]
        left_out = len(full["failures"]) - len(kept) + report.failures_left_out
        self.report_json = {
            **full,
            "failures": kept,
            "failures_left_out": left_out,
            "notes": self.notes,
        }

    def finish(self) -> None:
        """The flags that come from this submission alone, and the final verdict words."""
        if self.load_error is not None:
            self.verdict, self.status = "fail", "not loaded"
            self.reason = f"not loaded: {self.load_error}"
        elif self.internal_error is not None:
            self.verdict, self.status = "inconclusive", "error"
            self.reason = self.internal_error
            self.flags.append("review: crosscheck failed on this submission")
        for name in sorted(set(self.imported) | set(self.source_imports)):
            where = [
                w
                for w, got in (("source", self.source_imports), ("worker", self.imported))
                if name in got
            ]
            self.flags.append(f"imports {name} ({' and '.join(where)})")
        if self.verdict == "inconclusive" and self.internal_error is None:
            self.flags.append("review: inconclusive (the references disagreed)")

    def why(self) -> str:
        """The reason in a few words, for the table."""
        if self.load_error is not None:
            m = self.load_error
            if "SyntaxError" in m:
                at = re.search(r"\(line \d+\)", m)
                return "syntax error" + (f" {at.group(0)}" if at else "")
            missing = re.search(r"No module named '([^']+)'", m)
            if missing:
                return f"missing package {missing.group(1)}"
            if "defines no class" in m or "has no attribute" in m or "defines a class" in m:
                return "no such class"
            return _short(m)
        if self.internal_error is not None:
            return "crosscheck failed (review)"
        if self.fatal:
            m = self.fatal
            for pattern, words in _FATAL_WORDS:
                found = re.search(pattern, m)
                if found:
                    return words.format(*found.groups())
            return _short(m)
        if self.verdict == "fail":
            for cause in self.likely_cause:
                wrong = re.search(r"what you get if (.+?)\. Right:", cause)
                return _short(wrong.group(1) if wrong else cause)
            return _short(self.first_failure)
        return ""  # a pass: its notes have a column of their own

    @property
    def total(self) -> float:
        return self.score.total if self.score else 0.0

    @property
    def max_score(self) -> float:
        return self.score.max_score if self.score else 0.0

    def points(self, category: str) -> float | None:
        if self.score is None:
            return None
        return self.score.category(category).points

    def progress_line(self) -> str:
        what = self.reason if len(self.reason) <= 110 else self.reason[:107] + "..."
        return (
            f"{self.name}: {self.verdict.upper()} {self.total:g}/{self.max_score:g} "
            f"({self.seconds:.1f} s) {what}"
        )

    def as_json(self) -> dict[str, Any]:
        s = self.score
        return {
            "submission": self.name,
            "path": self.shown,
            "kind": self.kind,
            "spec": self.spec,
            "verdict": self.verdict,
            "status": self.status,
            "score": self.total,
            "max_score": self.max_score,
            "categories": {
                c.name: {
                    "title": c.title,
                    "points": c.points,
                    "max_points": c.max_points,
                    "lost": list(c.lost),
                }
                for c in (s.categories if s else ())
            },
            "deductions": [{"note": k, "points": p} for k, p in (s.deductions if s else ())],
            "why": self.why(),
            "reason": self.reason,
            "fatal": self.fatal,
            "load_error": self.load_error,
            "internal_error": self.internal_error,
            "failed_quantities": self.failed_quantities,
            "notes": self.notes,
            "likely_cause": self.likely_cause,
            "flags": self.flags,
            "duplicate_of": self.duplicate_of,
            "imports": {"source": self.source_imports, "worker": self.imported},
            "remarks": self.remarks,
            "code_hash": self.code_hash,
            "seconds": round(self.seconds, 3),
            "report": self.report_json,
        }


def plots_of(report: Report) -> tuple[list[tuple[str, str]], str]:
    """The two pictures of crosscheck.plots as (title, base64 PNG), or why there are none."""
    try:
        with tempfile.TemporaryDirectory(prefix="crosscheck-plots-") as tmp:
            plots = write_plots(report, tmp)
            out = []
            for name, title in (
                (ERRORS_PNG, "Error per time step"),
                (GRADIENTS_PNG, "Gradient norms through time"),
            ):
                data = (Path(tmp) / name).read_bytes()
                out.append(
                    (
                        f"{title} ({plots.why} {plots.case.id})",
                        base64.b64encode(data).decode("ascii"),
                    )
                )
            return out, ""
    except PlotUnavailable:
        return [], "no pictures: matplotlib is not installed (pip install matplotlib)"
    except PlotError as exc:
        return [], f"no pictures: {exc}"
    except Exception as exc:  # a picture is a help: never let it stop the grading
        return [], f"no pictures: drawing them failed ({type(exc).__name__}: {exc})"


# --------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would evaluate gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Gradebook:
    settings: dict[str, Any]
    rubric: Rubric
    graded: list[Graded]
    skipped: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    complete: bool = True
    planned: int = 0
    created: str = field(
        default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    )

    def counts(self) -> Counter[str]:
        return Counter(g.verdict for g in self.graded)

    def summary_line(self) -> str:
        c = self.counts()
        n = len(self.graded)
        mean = sum(g.total for g in self.graded) / n if n else 0.0
        left = "" if self.complete else f" (interrupted: {n} of {self.planned} graded)"
        return (
            f"{n} submissions: {c['pass']} pass, {c['fail']} fail, "
            f"{c['inconclusive']} inconclusive; mean score {mean:.1f} of "
            f"{self.rubric.max_score:g}{left}, {self.elapsed:.0f} s"
        )

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for g in self.graded:
            row: dict[str, Any] = {
                "submission": g.name,
                "verdict": g.verdict,
                "score": g.total,
                "max_score": g.max_score,
                "failed_quantities": " ".join(g.failed_quantities),
                "notes": " ".join(g.notes),
                "likely_cause": _one_line(" | ".join(g.likely_cause)),
                "flags": "; ".join(g.flags),
                "why": g.why(),
                "reason": _one_line(g.reason),
                "status": g.status,
                "seconds": round(g.seconds, 2),
                "spec": g.spec,
                "code_hash": g.code_hash or "",
            }
            for c in CATEGORIES:
                row[c] = g.points(c)
            rows.append(row)
        return rows

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        w.writeheader()
        for row in self.rows():
            w.writerow({k: _cell(v) for k, v in row.items()})
        return buf.getvalue()

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "crosscheck grade",
            "created": self.created,
            "settings": self.settings,
            "rubric": self.rubric.as_dict(),
            "complete": self.complete,
            "planned": self.planned,
            "elapsed_s": round(self.elapsed, 3),
            "counts": dict(self.counts()),
            "skipped": self.skipped,
            "submissions": [g.as_json() for g in self.graded],
        }

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "gradebook.csv", out / "gradebook.json", out / "index.html"]
        paths[0].write_text(self.csv_text(), encoding="utf-8")
        paths[1].write_text(json.dumps(self.as_json(), indent=1) + "\n", encoding="utf-8")
        paths[2].write_text(self.html(), encoding="utf-8")
        return paths

    # -- index.html --------------------------------------------------------------------

    def html(self) -> str:
        e = _esc
        s = self.settings
        c = self.counts()
        meta = (
            f"{len(self.graded)} submissions: {c['pass']} pass, {c['fail']} fail, "
            f"{c['inconclusive']} inconclusive. {s.get('cases')} cases (seed {s.get('seed')}) "
            f"against {', '.join(s.get('backends') or [])}; rubric {self.rubric.source} "
            f"(max {self.rubric.max_score:g}); {self.elapsed:.0f} s; {self.created}."
        )
        if not self.complete:
            meta += f" Interrupted: {len(self.graded)} of {self.planned} graded."
        head = [
            ("submission", "Submission", "text"),
            ("verdict", "Verdict", "text"),
            ("score", "Score", "num"),
            *((cat, f"{SHORT[cat]} /{self.rubric.points[cat]:g}", "num") for cat in CATEGORIES),
            ("failed", "Failed", "text"),
            ("why", "Why", "text"),
            ("notes", "Notes", "text"),
            ("flags", "Flags", "text"),
            ("seconds", "Seconds", "num"),
        ]
        ths = "".join(
            f'<th data-key="{k}" data-type="{t}" tabindex="0" aria-sort="none">'
            f"{e(label).replace(' /', '<br><small>/')}{'</small>' if ' /' in label else ''}"
            '<span class="arrow"></span></th>'
            for k, label, t in head
        )
        rows = "\n".join(self._row(i, g) for i, g in enumerate(self.graded, start=1))
        sections = "\n".join(self._section(i, g) for i, g in enumerate(self.graded, start=1))
        skipped = ""
        if self.skipped:
            items = "".join(f"<li>{e(x)}</li>" for x in self.skipped)
            skipped = f'<p class="muted">Skipped entries:</p><ul class="muted">{items}</ul>'
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crosscheck gradebook</title>
<style>{_CSS}</style></head>
<body>
<header><h1>crosscheck gradebook: {e(str(s.get("layer_attr", "TimeRNN")))}</h1>
<p class="meta">{e(meta)}</p>
<p class="muted">Click a column header to sort (again to reverse). Flags are for review,
never deductions.</p></header>
<table id="grades"><thead><tr>{ths}</tr></thead>
<tbody>
{rows}
</tbody></table>
{skipped}
<main>
{sections}
</main>
<script>{_JS}</script>
</body></html>
"""

    def _row(self, i: int, g: Graded) -> str:
        e = _esc
        cells = [
            (g.name.lower(), f'<a href="#s-{i}">{e(g.name)}</a>'),
            (str(_VERDICT_ORDER.get(g.verdict, 3)), _badge(g.verdict)),
            (f"{g.total:g}", f"{g.total:g} / {g.max_score:g}"),
        ]
        for cat in CATEGORIES:
            p = g.points(cat)
            full = p is not None and g.score is not None and p >= g.score.category(cat).max_points
            cls = "full" if full else "lost"
            cells.append(
                (f"{p or 0:g}", f'<span class="{cls}">{"" if p is None else f"{p:g}"}</span>')
            )
        failed = " ".join(g.failed_quantities) or ("not loaded" if g.load_error else "")
        why = g.why()
        cells += [
            (failed, e(failed)),
            (why.lower(), f'<span title="{e(g.reason)}">{e(why)}</span>'),
            (" ".join(g.notes), e(" ".join(g.notes))),
            ("; ".join(g.flags), "<br>".join(f'<span class="flag">{e(f)}</span>' for f in g.flags)),
            (f"{g.seconds:.2f}", f"{g.seconds:.1f}"),
        ]
        tds = "".join(f'<td data-sort="{e(k)}">{v}</td>' for k, v in cells)
        return f'<tr data-name="{e(g.name)}" data-verdict="{e(g.verdict)}">{tds}</tr>'

    def _section(self, i: int, g: Graded) -> str:
        e = _esc
        parts = [
            f'<section class="sub" id="s-{i}"><h2>{e(g.name)} {_badge(g.verdict)} '
            f'<span class="pts">{g.total:g} / {g.max_score:g}</span></h2>',
            f'<p class="reason">{e(g.reason)}</p>',
        ]
        if g.flags:
            parts.append(
                '<p class="flags">' + "<br>".join(f"&#9873; {e(f)}" for f in g.flags) + "</p>"
            )
        for r in g.remarks:
            parts.append(f'<p class="muted">{e(r)}</p>')
        if g.score is not None:
            trs = "".join(_category_row(c) for c in g.score.categories)
            for kind, pts in g.score.deductions:
                trs += (
                    f'<tr><td>Note {e(kind)}</td><td class="num lost">-{pts:g}</td><td></td></tr>'
                )
            parts.append(
                f'<table class="cats"><tr><th>Category</th><th>Points</th><th>Why points '
                f"were lost</th></tr>{trs}</table>"
            )
        if g.notes:
            items = "".join(
                f"<li><b>{e(k)}</b> ({n['cases']} case{'s' if n['cases'] != 1 else ''}): the "
                f"layer {e(n['meaning'])}. First seen: {e(n['message'])}</li>"
                for k, n in g.notes.items()
            )
            parts.append(f"<h3>Notes</h3><ul>{items}</ul>")
        if g.likely_cause:
            items = "".join(f"<li>{e(d)}</li>" for d in g.likely_cause)
            parts.append(f"<h3>Likely cause</h3><ul>{items}</ul>")
        if g.smallest_case:
            parts.append(f"<h3>Smallest failing case</h3><p><code>{e(g.smallest_case)}</code></p>")
            if g.numbers:
                parts.append(f"<pre>{e(chr(10).join(g.numbers))}</pre>")
        if g.reproducer:
            parts.append(f'<h3>Rerun it</h3><pre class="cmd">{e(g.reproducer)}</pre>')
        if g.plots:
            figs = "".join(
                f'<figure><img alt="{e(t)}" src="data:image/png;base64,{b}">'
                f"<figcaption>{e(t)}</figcaption></figure>"
                for t, b in g.plots
            )
            parts.append(f'<div class="plots">{figs}</div>')
        elif g.plots_skipped and g.load_error is None:
            parts.append(f'<p class="muted">{e(g.plots_skipped)}</p>')
        if g.output:
            parts.append(
                f"<details><summary>What the layer printed (shortened)</summary>"
                f"<pre>{e(g.output)}</pre></details>"
            )
        if g.text:
            parts.append(f"<details><summary>Full report</summary><pre>{e(g.text)}</pre></details>")
        if g.traceback:
            parts.append(
                f"<details><summary>Traceback</summary><pre>{e(g.traceback)}</pre></details>"
            )
        parts.append('<p class="top"><a href="#grades">back to the table</a></p></section>')
        return "\n".join(parts)


def _category_row(c: CategoryScore) -> str:
    cls = "full" if c.points >= c.max_points else "lost"
    why = "<br>".join(_esc(x) for x in c.lost)
    return (
        f'<tr><td>{_esc(c.title)}</td><td class="num {cls}">{c.points:g} / {c.max_points:g}'
        f"</td><td>{why}</td></tr>"
    )


_VERDICT_ORDER = {"fail": 0, "inconclusive": 1, "pass": 2}


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _badge(word: str) -> str:
    return f'<span class="badge {_esc(word)}">{_esc(word.upper())}</span>'


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:14px;
line-height:1.45;color:#202124;background:#fff;margin:0 24px 48px 24px}
h1{font-size:22px;margin:18px 0 4px 0}h2{font-size:17px;margin:0 0 6px 0}
h3{font-size:14px;margin:10px 0 4px 0}
.meta{margin:2px 0}.muted{color:#5f6368}
table#grades{border-collapse:collapse;margin:10px 0 24px 0;font-size:13px}
#grades th{position:sticky;top:0;background:#f1f3f4;border-bottom:2px solid #9aa0a6;
padding:5px 7px;text-align:left;cursor:pointer;user-select:none;white-space:nowrap;
vertical-align:bottom}
#grades th:hover{background:#e8eaed}#grades th small{font-weight:400;color:#5f6368}
#grades td{border-bottom:1px solid #e8eaed;padding:4px 7px;vertical-align:top}
#grades td:nth-child(9){max-width:9em}#grades td:nth-child(10){min-width:17em;max-width:24em}
#grades td:nth-child(12){max-width:14em}
#grades tbody tr:hover{background:#f8f9fa}
#grades td:nth-child(n+3):nth-child(-n+8),#grades td:last-child{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}
.arrow{display:inline-block;width:1em;color:#1a73e8}
th[aria-sort=ascending] .arrow::after{content:"\\25B2"}
th[aria-sort=descending] .arrow::after{content:"\\25BC"}
.badge{display:inline-block;border-radius:4px;padding:0 7px;font-size:12px;font-weight:700;
letter-spacing:.03em}
.badge.pass{background:#e6f4ea;color:#0d652d}.badge.fail{background:#fce8e6;color:#a50e0e}
.badge.inconclusive{background:#fef7e0;color:#7a4f01}
.full{color:#0d652d}.lost{color:#a50e0e;font-weight:600}
.flag{display:inline-block;background:#fef7e0;color:#7a4f01;border-radius:3px;padding:0 4px;
font-size:12px;margin:1px 0}
section.sub{border:1px solid #dadce0;border-radius:6px;padding:12px 16px;margin:0 0 18px 0;
max-width:1200px}
.pts{font-weight:400;color:#5f6368;font-size:14px}
.reason{font-weight:600}
.flags{background:#fef7e0;color:#7a4f01;border-radius:4px;padding:6px 10px}
table.cats{border-collapse:collapse;font-size:13px}
.cats td,.cats th{border-bottom:1px solid #e8eaed;padding:3px 10px;text-align:left;
vertical-align:top}.cats td.num{text-align:right;white-space:nowrap}
.cats td:first-child{white-space:nowrap}
pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;
background:#f8f9fa;border:1px solid #e8eaed;border-radius:4px;padding:6px 8px;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:30em;overflow:auto}
pre.cmd{background:#202124;color:#e8eaed}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;max-width:900px}figure img{width:100%;border:1px solid #e8eaed}
figcaption{font-size:12px;color:#5f6368}
.top{font-size:12px}
"""

# Sorting: click a header (again to reverse), or ?sort=KEY&order=asc|desc on load, or
# ?click=KEY,KEY (clicks those headers in turn, as a test in a headless browser needs).
_JS = """
(function () {
  var table = document.getElementById("grades");
  var tbody = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  Array.prototype.forEach.call(tbody.rows, function (r, i) { r.dataset.index = i; });
  function sortBy(key, order) {
    var col = -1;
    heads.forEach(function (h, i) { if (h.dataset.key === key) { col = i; } });
    if (col < 0) { return false; }
    var numeric = heads[col].dataset.type === "num";
    var sign = order === "desc" ? -1 : 1;
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort, d;
      if (numeric) { d = (parseFloat(x) || 0) - (parseFloat(y) || 0); }
      else { d = x < y ? -1 : x > y ? 1 : 0; }
      return d !== 0 ? sign * d : a.dataset.index - b.dataset.index;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    heads.forEach(function (h, i) {
      h.setAttribute("aria-sort", i === col ? (sign > 0 ? "ascending" : "descending") : "none");
    });
    table.dataset.sorted = key + ":" + (sign > 0 ? "asc" : "desc");
    return true;
  }
  heads.forEach(function (h) {
    function click() {
      var now = h.getAttribute("aria-sort");
      var order = now === "ascending" ? "desc" : now === "descending" ? "asc"
        : (h.dataset.type === "num" ? "desc" : "asc");
      sortBy(h.dataset.key, order);
      try {
        var u = new URL(window.location.href);
        u.searchParams.set("sort", h.dataset.key);
        u.searchParams.set("order", order);
        history.replaceState(null, "", u.toString());
      } catch (err) { /* file:// pages may refuse; sorting still works */ }
    }
    h.addEventListener("click", click);
    h.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); click(); }
    });
  });
  var params = new URLSearchParams(window.location.search);
  if (params.get("sort")) { sortBy(params.get("sort"), params.get("order") || "asc"); }
  // ?click=KEY,KEY,...: click those headers in turn (what a test in a browser can ask)
  (params.get("click") || "").split(",").forEach(function (key) {
    heads.forEach(function (h) { if (key && h.dataset.key === key) { h.click(); } });
  });
})();
"""
