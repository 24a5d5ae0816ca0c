"""verify(layer_factory, ...) -> Report: the road a verification takes.

    cases --drive(layer)--> Observed --+
      |                                 +-- compare(tolerance) --> Report
      +--oracle reference-----> Reference

References are cached in memory by (oracle, case id), so checking many layers on
the same cases (a course's submissions, the mistake catalog) pays for them once.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from typing import Any

from crosscheck import compare
from crosscheck.cases import DTYPES, Case, generate_cases
from crosscheck.diagnose import explain_failures
from crosscheck.drive import LayerFactory, Observed, drive
from crosscheck.oracles import Oracle, available_backends, load_backend, reference
from crosscheck.quantities import BACKWARD_QUANTITIES, FORWARD_QUANTITIES, SegmentValues
from crosscheck.report import Disagreement, Failure, Report

Progress = Callable[[str, int, int], None]
DEFAULT_CASES = 100

CHUNK = 500  # cases whose references are held in memory at once

_REFERENCE_CACHE: dict[tuple[str, str], list[SegmentValues] | None] = {}
_CACHE_LIMIT = 4_000  # (oracle, case) entries: a few hundred cases of every oracle


def layer_spec(layer: Any) -> str:
    """'module:QualName' for a class or function, as the CLI's --layer takes it."""
    module = getattr(layer, "__module__", None) or "?"
    name = getattr(layer, "__qualname__", None) or type(layer).__name__
    return f"{module}:{name}"


def reproducer(spec: str, case_id: str, backend: str | None = None) -> str:
    """One shell line that reruns exactly one case."""
    cmd = f"python -m crosscheck --layer {shlex.quote(spec)} --case {shlex.quote(case_id)}"
    return cmd + (f" --backend {backend}" if backend else "")


def references(oracle: Oracle, cases: Sequence[Case]) -> list[list[SegmentValues] | None]:
    """`reference` with the in-memory cache in front of it."""
    missing = [c for c in cases if (oracle.name, c.id) not in _REFERENCE_CACHE]
    if missing:
        if len(_REFERENCE_CACHE) + len(missing) > _CACHE_LIMIT:
            _REFERENCE_CACHE.clear()
        for c, ref in zip(missing, reference(oracle, missing)):
            _REFERENCE_CACHE[(oracle.name, c.id)] = ref
    return [_REFERENCE_CACHE[(oracle.name, c.id)] for c in cases]


def verify(
    layer: LayerFactory,
    *,
    cases: int | Sequence[Case] = DEFAULT_CASES,
    seed: int = 0,
    dtypes: Sequence[str] = DTYPES,
    backends: Sequence[str] | None = None,
    spec: str | None = None,
    progress: Progress | None = None,
    explain: bool = True,
) -> Report:
    """Check `layer` (called as `layer(Wx, Wh, b, stateful=...)`) on random cases.

    cases: how many to draw from the seeded generator, or the cases themselves.
    backends: names from crosscheck.oracles.BACKENDS; default every installed one.
    explain: on a failure, diagnose it and shrink it to the smallest failing case
    (report.diagnosis, smallest_case, smallest_reproducer, numbers; a few seconds at most).
    Raises BackendUnavailable if a named backend's framework is missing.
    """
    start = time.perf_counter()
    names = list(backends) if backends else available_backends()
    oracles: list[tuple[str, Oracle]] = [(b, o) for b in names for o in load_backend(b)]
    if isinstance(cases, int):
        # Draw only cases some chosen oracle can check (finite differences alone take
        # small cases only), so that every drawn case is judged.
        case_list = generate_cases(
            cases, seed, dtypes, accept=lambda c: any(o.supports(c) for _, o in oracles)
        )
    else:
        case_list = list(cases)
    spec = spec or layer_spec(layer)
    report = Report(spec, seed, case_list, [o.name for _, o in oracles])

    for first in range(0, len(case_list), CHUNK):
        chunk = case_list[first : first + CHUNK]
        refs = []
        for _, oracle in oracles:
            if progress:
                progress(f"reference {oracle.name}", first, len(case_list))
            refs.append(references(oracle, chunk))
        for i, case in enumerate(chunk):
            if progress and i % 10 == 0:
                progress("checking the layer", first + i, len(case_list))
            _check_case(report, layer, case, oracles, [r[i] for r in refs])
    if progress:
        progress("done", len(case_list), len(case_list))
    if explain and report.failures:
        explain_failures(report, layer, oracles)
    report.elapsed = time.perf_counter() - start
    return report


def _check_case(
    report: Report,
    layer: LayerFactory,
    case: Case,
    oracles: Sequence[tuple[str, Oracle]],
    refs: Sequence[list[SegmentValues] | None],
) -> None:
    """Drive the layer through one case and judge it against every oracle that supports it."""
    spec = report.layer
    observed = drive(layer, case)
    for p in observed.problems:
        report.failures.append(
            Failure(
                p.kind,
                p.quantity,
                case.id,
                p.segment,
                p.call,
                p.message,
                reproducer(spec, case.id),
            )
        )
    judged = [(b, o, r) for (b, o), r in zip(oracles, refs) if r is not None]
    if not judged:
        report.unchecked.append(case.id)
    if _oracles_disagree(report, case, judged):
        return
    for backend, oracle, ref in judged:
        assert ref is not None
        report.checked[oracle.name] = report.checked.get(oracle.name, 0) + 1
        _judge(report, case, observed, backend, oracle, ref)


def _pairs(case: Case, values: Sequence[SegmentValues]) -> list[tuple[int, int | None, str]]:
    """(segment, call, quantity) for every quantity of every segment in `values`."""
    out: list[tuple[int, int | None, str]] = []
    for k, seg_values in enumerate(values):
        out += [(k, None, q) for q in FORWARD_QUANTITIES]
        for j in range(len(seg_values.backward)):
            out += [(k, j, q) for q in BACKWARD_QUANTITIES]
    return out


def _oracles_disagree(
    report: Report, case: Case, judged: Sequence[tuple[str, Oracle, list[SegmentValues] | None]]
) -> bool:
    """Compare every oracle with the first; record and return True on any disagreement."""
    if len(judged) < 2:
        return False
    _, first, first_ref = judged[0]
    assert first_ref is not None
    found = False
    for _, other, ref in judged[1:]:
        assert ref is not None
        limit = compare.agreement_threshold(first.accuracy, other.accuracy)
        for k, j, q in _pairs(case, first_ref):
            a, b = first_ref[k].get(q, j or 0), ref[k].get(q, j or 0)
            err = compare.relative_error(q, b, a).error
            if not err <= limit:
                report.disagreements.append(
                    Disagreement(case.id, (first.name, other.name), q, k, j, err, limit)
                )
                found = True
    return found


def _judge(
    report: Report,
    case: Case,
    observed: Observed,
    backend: str,
    oracle: Oracle,
    ref: list[SegmentValues],
) -> None:
    """Compare every completed segment of `observed` with `ref`; fill cells and failures."""
    for k, j, q in _pairs(case, observed.segments):
        limit = compare.threshold(case.dtype, case.chain_steps(k), oracle.accuracy)
        err = compare.relative_error(q, observed.segments[k].get(q, j or 0), ref[k].get(q, j or 0))
        report.cell(oracle.name, q).add(err.error, limit, case.id)
        if err.error <= limit:
            continue
        step = err.first_bad_step(limit)
        where = f"segment {k}" + ("" if j is None else f", backward call {j}")
        when = "" if step is None else f", first bad time step t={step}"
        report.failures.append(
            Failure(
                "mismatch",
                q,
                case.id,
                k,
                j,
                f"{q} differs from {oracle.name}: error {err.error:.3g} > threshold {limit:.3g} "
                f"({where}{when})",
                reproducer(report.layer, case.id, backend),
                backend=oracle.name,
                error=err.error,
                threshold=limit,
                first_bad_step=step,
            )
        )
