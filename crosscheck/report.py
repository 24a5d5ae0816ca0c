"""The verdicts of a verification, aggregated: what `verify` returns and renderers read.

A Report holds counts and aggregates, not every case: a run of millions of cases keeps
a bounded amount (the first MAX_FAILURES failures, the first MAX_CASE_IDS case ids).
It also keeps the evidence of one failing case (and of the longest case), the layer's
values beside a reference, so that diagnosis and plots never drive the layer again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from crosscheck import compare
from crosscheck.cases import Case
from crosscheck.drive import Observed
from crosscheck.quantities import QUANTITIES, Position, SegmentValues

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
MAX_FAILURES = 2_000
MAX_CASE_IDS = 200_000


@dataclass(frozen=True)
class Failure:
    """One thing the layer got wrong.

    kind: "mismatch" (a value outside tolerance against `backend`), "exception",
    "shape", "dtype", "protocol" or "crash" (the worker exited, was killed, or ran past
    a limit). quantity: one of QUANTITIES, or the object or call concerned ("xs",
    "params", "forward", ...). call: which backward call of the segment (None for
    forward-side problems).
    """

    kind: str
    quantity: str
    case_id: str
    segment: int
    call: int | None
    message: str
    reproducer: str
    backend: str | None = None
    error: float | None = None
    threshold: float | None = None
    first_bad_step: int | None = None
    last_bad_step: int | None = None


@dataclass(frozen=True)
class Disagreement:
    """Two oracles disagreed on a case: the layer is not judged on that case."""

    case_id: str
    oracles: tuple[str, str]
    quantity: str
    segment: int
    call: int | None
    error: float
    threshold: float


@dataclass
class Cell:
    """The worst error seen for one (backend, quantity) pair, over all cases checked."""

    error: float = 0.0
    threshold: float = 1.0
    case_id: str = ""
    checked: int = 0

    @property
    def ratio(self) -> float:
        return self.error / self.threshold

    def add(self, error: float, threshold: float, case_id: str) -> None:
        self.checked += 1
        if self.checked == 1 or error / threshold > self.ratio:
            self.error, self.threshold, self.case_id = error, threshold, case_id


@dataclass
class Note:
    """Something worth knowing that is not a wrong computation (crosscheck.policy)."""

    kind: str
    message: str  # what was seen first
    case_id: str  # where
    cases: int = 1  # in how many cases
    _last: str = field(default="", repr=False)


@dataclass(frozen=True)
class Evidence:
    """One case as the layer computed it, beside one oracle's reference, with the
    threshold each position was judged against."""

    case: Case
    observed: Observed
    oracle: str
    accuracy: float
    reference: list[SegmentValues]
    limits: dict[Position, float] = field(default_factory=dict)

    def limit(self, p: Position) -> float:
        """The threshold `p` was judged against (the case dtype's, if it was not judged)."""
        return self.limits.get(p) or compare.limit(self.case, p, self.accuracy)


@dataclass(repr=False)
class Report:
    layer: str
    seed: int
    backends: list[str]  # oracle names, in table order
    isolation: str = ""  # where the layer ran, in words
    kind: str = "rnn"  # the layer kind (crosscheck.kinds): rnn, lstm or gru
    case_count: int = 0  # cases generated and judged (or not run) so far
    planned: int = 0  # cases asked for
    dtype_counts: Counter[str] = field(default_factory=Counter)
    case_ids: list[str] = field(default_factory=list)  # the first MAX_CASE_IDS
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)  # the first MAX_FAILURES
    failures_left_out: int = 0
    failing_cases: dict[str, Case] = field(default_factory=dict)  # in the order seen
    failing_count: int = 0
    failing_by_quantity: Counter[str] = field(default_factory=Counter)  # cases per quantity
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: dict[str, Note] = field(default_factory=dict)  # by kind, in the order first seen
    strict: bool = False  # notes fail too
    checked: dict[str, int] = field(default_factory=dict)  # oracle -> cases judged against it
    skipped: dict[str, int] = field(default_factory=dict)  # oracle -> drawn cases it cannot check
    unjudged: int = 0  # drawn cases no chosen oracle can check (counted, not a verdict)
    unchecked: list[str] = field(default_factory=list)  # given cases no chosen oracle supports
    not_run: int = 0  # cases left out after the layer was given up on
    fatal: str | None = None  # why the layer was given up on: exit, signal, time, memory
    output: str = ""  # what the layer printed, shortened
    imported: list[str] = field(default_factory=list)  # frameworks the layer imported
    left_out: list[str] = field(default_factory=list)  # what loading the layer left out
    interrupted: bool = False
    elapsed: float = 0.0
    # The first failing case (the first with a mismatch if any) and the longest case.
    evidence: Evidence | None = None
    longest: Evidence | None = None
    # For one failing case, when verify(explain=True): what the failure most likely means
    # (crosscheck.diagnose), the smallest case that still fails, the command that reruns it
    # and its first wrong numbers beside the reference (crosscheck.shrink).
    diagnosis: list[str] = field(default_factory=list)
    smallest_case: str | None = None
    smallest_reproducer: str | None = None
    numbers: list[str] = field(default_factory=list)
    # What the layer's API calls each quantity (crosscheck.cs231n.NAMES; empty: the book's
    # names), a sentence saying so, and the --api that reruns a case.
    api: str = "book"
    names: dict[str, str] = field(default_factory=dict)
    legend: str = ""
    # How a notebook shows the report (set by crosscheck.verification: crosscheck.html).
    html_renderer: Callable[[Report], str] | None = field(default=None, compare=False)
    _last_failing: str = field(default="", repr=False)
    _last_by_quantity: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return (
            f"<Report {self.verdict_word}: {self.layer}, {self.case_count} cases, "
            f"{self.failing_count} failing, {len(self.notes)} notes>"
        )

    def _repr_html_(self) -> str | None:
        """Jupyter shows the report as HTML: verdict, table, notes, diagnosis, plots."""
        return None if self.html_renderer is None else self.html_renderer(self)

    def name(self, quantity: str) -> str:
        """`quantity` (or the object a problem concerns) in the layer's own words."""
        return self.names.get(quantity, quantity)

    @property
    def ok(self) -> bool:
        """True when the layer agreed on every case and no case was left undecided."""
        return self.exit_code == EXIT_OK

    @property
    def failed(self) -> bool:
        return bool(self.failures) or self.fatal is not None or (self.strict and bool(self.notes))

    def add_note(self, kind: str, message: str, case_id: str) -> None:
        """Count `kind` once per case; keep the first message."""
        note = self.notes.get(kind)
        if note is None:
            self.notes[kind] = Note(kind, message, case_id)
        elif note.case_id != case_id and note._last != case_id:
            note.cases += 1
            note._last = case_id

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_MISMATCH
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_INCONCLUSIVE if self.disagreements or self.unchecked else EXIT_OK

    @property
    def verdict_word(self) -> str:
        return {EXIT_OK: "pass", EXIT_MISMATCH: "fail", EXIT_INTERRUPTED: "interrupted"}.get(
            self.exit_code, "inconclusive"
        )

    def add_case(self, case: Case) -> None:
        self.case_count += 1
        self.dtype_counts[case.dtype] += 1
        if len(self.case_ids) < MAX_CASE_IDS:
            self.case_ids.append(case.id)

    def add_failure(self, failure: Failure, case: Case | None) -> None:
        # A case's failures arrive together, so the last id is enough to count cases.
        if case is not None and case.id != self._last_failing:
            self._last_failing = case.id
            self.failing_count += 1
            if len(self.failing_cases) < MAX_FAILURES:
                self.failing_cases[case.id] = case
        if case is not None and self._last_by_quantity.get(failure.quantity) != case.id:
            self._last_by_quantity[failure.quantity] = case.id
            self.failing_by_quantity[failure.quantity] += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(failure)
        else:
            self.failures_left_out += 1

    def cell(self, backend: str, quantity: str) -> Cell:
        return self.cells.setdefault((backend, quantity), Cell())

    @property
    def failing_case_ids(self) -> list[str]:
        """Failing cases in the order they were checked (generation order)."""
        return list(self.failing_cases)

    def failures_by_quantity(self) -> dict[str, list[Failure]]:
        """Failures grouped by quantity, value quantities first in QUANTITIES order."""
        groups: dict[str, list[Failure]] = {}
        for f in self.failures:
            groups.setdefault(f.quantity, []).append(f)
        order = {q: i for i, q in enumerate(QUANTITIES)}
        return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order))))
