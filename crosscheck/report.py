"""The verdicts of a verification, aggregated: what `verify` returns and renderers read."""

from __future__ import annotations

from dataclasses import dataclass, field

from crosscheck.cases import Case
from crosscheck.quantities import QUANTITIES

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


@dataclass(frozen=True)
class Failure:
    """One thing the layer got wrong.

    kind: "mismatch" (a value outside tolerance against `backend`), "exception",
    "shape", "dtype" or "protocol". quantity: one of QUANTITIES, or for protocol
    problems the object concerned ("xs", "params", "grads", ...). call: which
    backward call of the segment (None for forward-side problems).
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
class Report:
    layer: str
    seed: int
    cases: list[Case]
    backends: list[str]  # oracle names, in table order
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # oracle -> cases judged against it
    unchecked: list[str] = field(default_factory=list)  # ids of cases no chosen oracle supports
    elapsed: float = 0.0
    # For one failing case, when verify(explain=True): what the failure most likely means
    # (crosscheck.diagnose), the smallest case that still fails, the command that reruns it
    # and its first wrong numbers beside the reference (crosscheck.shrink).
    diagnosis: list[str] = field(default_factory=list)
    smallest_case: str | None = None
    smallest_reproducer: str | None = None
    numbers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the layer agreed on every case and no case was left undecided."""
        return not self.failures and not self.disagreements and not self.unchecked

    @property
    def exit_code(self) -> int:
        if self.failures:
            return EXIT_MISMATCH
        return EXIT_INCONCLUSIVE if self.disagreements or self.unchecked else EXIT_OK

    def cell(self, backend: str, quantity: str) -> Cell:
        return self.cells.setdefault((backend, quantity), Cell())

    @property
    def failing_case_ids(self) -> list[str]:
        """Failing cases in the order they were generated."""
        bad = {f.case_id for f in self.failures}
        return [c.id for c in self.cases if c.id in bad]

    def failures_by_quantity(self) -> dict[str, list[Failure]]:
        """Failures grouped by quantity, value quantities first in QUANTITIES order."""
        groups: dict[str, list[Failure]] = {}
        for f in self.failures:
            groups.setdefault(f.quantity, []).append(f)
        order = {q: i for i, q in enumerate(QUANTITIES)}
        return dict(sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order))))
