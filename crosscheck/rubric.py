"""Points from a report: the rubric of `python -m crosscheck grade`.

    rubric = load_rubric("my_rubric.toml")      # or load_rubric(None): the default
    score = score_report(report, rubric)        # Score(total, max_score, categories, ...)

The default rubric is crosscheck/default_rubric.toml (the same numbers as DEFAULT below;
a test keeps the two equal). A rubric file is TOML with the sections [points],
[scoring], [notes], [fatal] and [load_error]; every key is optional.

How a report is scored
----------------------
There are five categories (CATEGORIES), each worth `[points] NAME` points:

    forward            hs, h
    backward           dxs, dh
    weight_gradients   dWx, dWh, db
    state              stateful chains, set_state, reset_state, repeated calls
    protocol           params/grads identity, inputs left alone, no exceptions, shapes

1. Every failure of the report is charged to one category:
   - kinds "protocol", "exception", "shape", "dtype", "crash" and "tampered" to
     `protocol` (a SystemExit or KeyboardInterrupt raised inside a call is caught by
     the worker and is an exception like any other);
   - a wrong value (kind "mismatch", or a note that --strict turned into a failure) to
     its quantity's category (hs, h: forward; dxs, dh: backward; dWx, dWh, db:
     weight_gradients) -- unless the quantity is wrong only at positions where the
     layer's state matters and right at every *fresh* position, when it is charged to
     `state`. A position is fresh when it is the first segment of its case, that
     segment starts from zeros ("z", not set_state "s"), and it is the first backward
     call of the segment; every other position depends on what the layer kept from
     before (a carried or set state, a reset, an earlier backward).
   - The diagnosis of the failing case (crosscheck.diagnose) charges `state` too when
     it names a state mistake (STATE_CAUSES: set_state ignored, reset_state that does
     not reset, a stateless layer that carries, grads that accumulate over backward
     calls, ...).
2. A category earns its points when nothing is charged to it and it was shown right:
   its quantities were compared with a reference in at least one case (for `state`:
   at least one case with two or more segments was compared; for `protocol`: the
   layer completed at least one segment). A layer that raises in every forward earns
   nothing for `forward`, rather than everything. With `[scoring] mode = "per_case"` a
   category that has failures scores points x (1 - failing cases / compared cases)
   instead of 0.
3. Notes cost `[notes] KIND` points each (default 0: nothing), taken off the total,
   which never goes below 0.
4. A layer that was stopped (report.fatal: it exited the process, was killed by a
   signal, hung past a time limit, went over its memory limit, or changed the judge's
   process) scores `[fatal] score` (default 0), whatever it got right before; one that
   could not be loaded (a syntax error, no such class, a package that is missing, an
   import that raised) scores `[load_error] score` (default 0).

An inconclusive report (the oracles disagreed on some cases) is scored on the cases
that were judged; the verdict says it, and the grader flags it for review.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosscheck.cases import Case, parse_case
from crosscheck.kinds import get_kind
from crosscheck.policy import NOTE_KINDS
from crosscheck.quantities import quantities_for
from crosscheck.report import Failure, Report

DEFAULT_RUBRIC_FILE = Path(__file__).with_name("default_rubric.toml")

# name -> (title, what it covers)
CATEGORIES: dict[str, tuple[str, str]] = {
    "forward": ("Forward pass", "hs and h"),
    "backward": ("Backward pass", "dxs and dh, the gradient carried back through time"),
    "weight_gradients": ("Weight gradients", "dWx, dWh and db, summed over every step"),
    "state": ("State handling", "stateful chains, set_state, reset_state, repeated calls"),
    "protocol": ("Protocol", "params/grads identity, inputs left alone, no exceptions, shapes"),
}
QUANTITY_CATEGORY = {
    "hs": "forward",
    "h": "forward",
    "c": "forward",
    "dxs": "backward",
    "dh": "backward",
    "dc": "backward",
    "dWx": "weight_gradients",
    "dWh": "weight_gradients",
    "db": "weight_gradients",
}
CATEGORY_QUANTITIES = {
    c: tuple(q for q, cat in QUANTITY_CATEGORY.items() if cat == c) for c in CATEGORIES
}
PROTOCOL_KINDS = frozenset({"protocol", "exception", "shape", "dtype", "crash", "tampered"})
# Diagnosis causes (crosscheck.mistakes) that are mistakes of state handling.
STATE_CAUSES = frozenset(
    {
        "set_state_ignored",
        "reset_ignored",
        "stateful_ignored",
        "stateless_carries",
        "grads_accumulate",
        "backward_overwrites_cache",
    }
)
MODES = ("all_or_nothing", "per_case")

DEFAULT: dict[str, Any] = {
    "points": {
        "forward": 30.0,
        "backward": 25.0,
        "weight_gradients": 25.0,
        "state": 10.0,
        "protocol": 10.0,
    },
    "scoring": {"mode": "all_or_nothing"},
    "notes": dict.fromkeys(sorted(NOTE_KINDS), 0.0),
    "fatal": {"score": 0.0},
    "load_error": {"score": 0.0},
}


class RubricError(ValueError):
    """A rubric file that cannot be read or has a wrong key or value: one line."""


@dataclass(frozen=True)
class Rubric:
    points: dict[str, float]  # category -> points
    notes: dict[str, float]  # note kind -> points taken off
    mode: str = "all_or_nothing"
    fatal_score: float = 0.0
    load_error_score: float = 0.0
    source: str = "default"  # where it came from

    @property
    def max_score(self) -> float:
        return sum(self.points.values())

    def as_dict(self) -> dict[str, Any]:
        """The rubric in the file's layout (for the gradebook's settings)."""
        return {
            "source": self.source,
            "points": dict(self.points),
            "scoring": {"mode": self.mode},
            "notes": dict(self.notes),
            "fatal": {"score": self.fatal_score},
            "load_error": {"score": self.load_error_score},
        }


def _toml(text: str, where: str) -> dict[str, Any]:
    for name in ("tomllib", "tomli"):  # tomllib from Python 3.11; tomli before
        try:
            toml = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        try:
            data: dict[str, Any] = toml.loads(text)
        except toml.TOMLDecodeError as exc:
            raise RubricError(f"{where} is not valid TOML: {exc}") from None
        return data
    raise RubricError(
        f"reading {where} needs Python 3.11 or later (tomllib), or: pip install tomli"
    )


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise RubricError(f"{where} must be a number, 0 or more; got {value!r}")
    if value == float("inf"):
        raise RubricError(f"{where} must be finite; got {value!r}")
    return float(value)


def rubric_from_dict(data: dict[str, Any], source: str = "default") -> Rubric:
    """A Rubric from the file's layout; keys left out keep DEFAULT's values."""
    known = {"points", "scoring", "notes", "fatal", "load_error"}
    for section in data:
        if section not in known:
            raise RubricError(
                f"{source}: unknown section [{section}] (known: {', '.join(sorted(known))})"
            )
    sections: dict[str, dict[str, Any]] = {}
    for section in known:
        got = data.get(section, {})
        if not isinstance(got, dict):
            raise RubricError(f"{source}: [{section}] must be a table")
        allowed = set(DEFAULT[section])
        for key in got:
            if key not in allowed:
                raise RubricError(
                    f"{source}: unknown key {key!r} in [{section}] "
                    f"(known: {', '.join(sorted(allowed))})"
                )
        sections[section] = {**DEFAULT[section], **got}
    points = {c: _number(sections["points"][c], f"{source}: [points] {c}") for c in CATEGORIES}
    notes = {k: _number(v, f"{source}: [notes] {k}") for k, v in sections["notes"].items()}
    mode = sections["scoring"]["mode"]
    if mode not in MODES:
        raise RubricError(
            f"{source}: [scoring] mode must be one of {', '.join(MODES)}; got {mode!r}"
        )
    return Rubric(
        points,
        notes,
        str(mode),
        _number(sections["fatal"]["score"], f"{source}: [fatal] score"),
        _number(sections["load_error"]["score"], f"{source}: [load_error] score"),
        source,
    )


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The rubric in `path` (TOML), or the default one. Raises RubricError."""
    if path is None:
        return rubric_from_dict({}, "default")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"cannot read the rubric {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RubricError(f"the rubric {path} is not UTF-8 text") from None
    return rubric_from_dict(_toml(text, str(path)), str(path))


# --------------------------------------------------------------------------------------
# Scoring.


@dataclass(frozen=True)
class CategoryScore:
    name: str
    title: str
    points: float
    max_points: float
    lost: tuple[str, ...] = ()  # why points were lost (empty when full marks)


@dataclass(frozen=True)
class Score:
    total: float
    max_score: float
    categories: tuple[CategoryScore, ...]
    deductions: tuple[tuple[str, float], ...] = ()  # (note kind, points)
    status: str = "graded"  # "graded", "stopped" (report.fatal) or "not loaded"
    charged: dict[str, tuple[str, ...]] = field(default_factory=dict)  # category -> case ids

    def category(self, name: str) -> CategoryScore:
        return next(c for c in self.categories if c.name == name)


def _round(x: float) -> float:
    return round(x + 0.0, 2)


def _case(case_id: str, report: Report) -> Case | None:
    case = report.failing_cases.get(case_id)
    if case is not None:
        return case
    try:
        return parse_case(case_id)
    except ValueError:
        return None


def is_fresh(f: Failure, case: Case | None) -> bool:
    """Whether `f` is at a position that depends on nothing the layer kept from before:
    segment 0, starting from zeros, first backward call."""
    if case is None or f.segment != 0 or not case.segments:
        return f.segment == 0
    return case.segments[0].start == "z" and (f.call or 0) == 0


@dataclass(frozen=True)
class Charge:
    """One thing charged to a category: in which case, of which kind, and why."""

    case_id: str
    group: str  # what is summed up together: "mismatch", "protocol", "diagnosis", ...
    quantity: str
    message: str


def charge(report: Report, causes: Iterable[str] = ()) -> dict[str, list[Charge]]:
    """category -> what is charged to it, for every failure of `report` (rule 1 above)."""
    valued = [f for f in report.failures if f.kind not in PROTOCOL_KINDS]
    fresh_wrong = {f.quantity for f in valued if is_fresh(f, _case(f.case_id, report))}
    charged: dict[str, list[Charge]] = {c: [] for c in CATEGORIES}
    for f in report.failures:
        message = f.message + (f" in case {f.case_id}" if f.case_id else "")
        if f.kind in PROTOCOL_KINDS or f.quantity not in QUANTITY_CATEGORY:
            charged["protocol"].append(Charge(f.case_id, f.kind, f.quantity, message))
        elif f.quantity in fresh_wrong or is_fresh(f, _case(f.case_id, report)):
            category = QUANTITY_CATEGORY[f.quantity]
            charged[category].append(Charge(f.case_id, f.kind, f.quantity, message))
        else:
            group = f"{f.kind} only where the state matters"
            charged["state"].append(Charge(f.case_id, group, f.quantity, message))
    wrong = {m.name: m.wrong for m in get_kind(report.kind).mistakes}
    for cause in dict.fromkeys(causes):
        if cause in STATE_CAUSES:
            case_id = report.evidence.case.id if report.evidence is not None else ""
            what = wrong.get(cause, cause)
            line = next((d for d in report.diagnosis if what in d), what)
            charged["state"].append(Charge(case_id, "diagnosis", "", line))
    return charged


def _compared(report: Report, quantity: str) -> int:
    """In how many positions `quantity` was compared with some oracle (the most of any)."""
    return max((c.checked for (_, q), c in report.cells.items() if q == quantity), default=0)


def _evidence(report: Report, category: str) -> str | None:
    """None when `category` was shown right somewhere; else why not."""
    if category == "state":
        chained = any(
            report.cells[(b, "hs")].checked > report.checked.get(b, 0)
            for b in report.backends
            if (b, "hs") in report.cells
        )
        return None if chained else "no case with two or more segments was compared"
    if category == "protocol":
        if any(c.checked for c in report.cells.values()):
            return None
        return "the layer completed no segment that could be compared"
    # The kind's quantities only; an LSTM's dc only where the layer exposes one.
    expected = [q for q in CATEGORY_QUANTITIES[category] if q in quantities_for(report.kind)]
    missing = [q for q in expected if q != "dc" and not _compared(report, q)]
    if missing:
        return f"{', '.join(missing)} never compared with a reference (never computed)"
    return None


def _summary(items: Sequence[Charge], limit: int = 4) -> list[str]:
    """One line per group of problems, first seen first: the quantities, in how many
    cases, and the first message."""
    groups: dict[str, list[Charge]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    order = {q: i for i, q in enumerate(QUANTITY_CATEGORY)}
    lines = []
    for group, members in list(groups.items())[:limit]:
        qs = sorted({m.quantity for m in members if m.quantity}, key=lambda q: order.get(q, 99))
        n = len({m.case_id for m in members if m.case_id})
        cases = f" in {n} case{'s' if n != 1 else ''}" if n else ""
        head = f"{', '.join(qs)}: {group}" if qs else group
        lines.append(f"{head}{cases}; first: {members[0].message[:400]}")
    if len(groups) > limit:
        lines.append(f"... and {len(groups) - limit} more kinds of problem")
    return lines


def score_report(report: Report, rubric: Rubric, causes: Iterable[str] = ()) -> Score:
    """The points `report` earns under `rubric` (see the module docstring).
    causes: the diagnosis causes of the report's failing case (crosscheck.diagnose)."""
    charged = charge(report, causes)
    judged = max(report.checked.values(), default=0)
    categories = []
    for name, (title, _) in CATEGORIES.items():
        full = rubric.points[name]
        items = charged[name]
        lost: list[str] = []
        points = full
        if items:
            lost = _summary(items)
            if rubric.mode == "per_case" and judged:
                bad = len({i.case_id for i in items})
                points = full * max(0.0, 1.0 - bad / judged)
            else:
                points = 0.0
        else:
            missing = _evidence(report, name)
            if missing:
                lost, points = [missing], 0.0
        if report.fatal:
            lost, points = [f"the layer was stopped: {report.fatal}"], 0.0
        categories.append(CategoryScore(name, title, _round(points), full, tuple(lost)))
    deductions = tuple(
        (kind, rubric.notes.get(kind, 0.0)) for kind in report.notes if rubric.notes.get(kind)
    )
    total = sum(c.points for c in categories) - sum(d for _, d in deductions)
    status = "graded"
    if report.fatal:
        total, status = min(rubric.fatal_score, rubric.max_score), "stopped"
    return Score(
        _round(max(0.0, total)),
        rubric.max_score,
        tuple(categories),
        deductions,
        status,
        {c: tuple(dict.fromkeys(i.case_id for i in v)) for c, v in charged.items() if v},
    )


def score_load_error(message: str, rubric: Rubric) -> Score:
    """The points of a layer that could not be loaded."""
    categories = tuple(
        CategoryScore(name, title, 0.0, rubric.points[name], (f"not loaded: {message}",))
        for name, (title, _) in CATEGORIES.items()
    )
    total = min(rubric.load_error_score, rubric.max_score)
    return Score(_round(total), rubric.max_score, categories, (), "not loaded")
