"""verify(layer, ...) -> Report: the one orchestrator, and the road a verification takes.

    cases ──ids──▶ workers (crosscheck.isolation): the layer, driven ──▶ Observed ──┐
      │                                                                     compare ─▶ Report
      └──ids──▶ oracle processes (crosscheck.references) ──▶ float64 reference ──┘
                                   then, on a failure: diagnose + shrink (a predicate)

This process never imports the layer's module (unless it cannot be loaded by name,
which the report then states): nothing the layer does can change a reference, a
tolerance or the verdict. Cases are generated, run and judged in chunks, so memory
stays flat however many cases are asked for.
"""

from __future__ import annotations

import itertools
import os
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from crosscheck import compare, cs231n
from crosscheck.cases import DTYPES, Case, iter_cases
from crosscheck.diagnose import diagnose
from crosscheck.drive import LayerFactory, Observed
from crosscheck.html import report_html
from crosscheck.integrity import tampering
from crosscheck.isolation import (
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    IN_WORKER,
    InProcess,
    Limits,
    Target,
    WorkerPool,
    target_for,
    target_for_adapter,
    target_from_spec,
)
from crosscheck.kinds import get_kind
from crosscheck.oracles import Oracle, available_backends
from crosscheck.policy import Policy
from crosscheck.quantities import Position, SegmentValues, positions, value_at
from crosscheck.references import (
    DEFAULT_CACHE,
    Cache,
    LocalSource,
    OracleInfo,
    References,
    Values,
    backend_sources,
)
from crosscheck.report import Disagreement, Evidence, Failure, Report
from crosscheck.shrink import Signature, numbers, shrink
from crosscheck.twin import errors as twin_errors_of
from crosscheck.twin import run_twin

Progress = Callable[[str, int, int], None]
DEFAULT_CASES = 100
CHUNK = 250  # cases generated, run and judged at a time
# Shrinking prefers the fastest backends for tiny cases.
FAST_BACKENDS = ("torch", "numeric")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a verification; `report` holds what was judged until then."""

    def __init__(self, report: Report) -> None:
        super().__init__("interrupted")
        self.report = report


def reproducer(spec: str, case_id: str, backend: str | None = None, api: str = "book") -> str:
    """One shell line that reruns exactly one case."""
    cmd = f"python -m crosscheck --layer {shlex.quote(spec)} --case {shlex.quote(case_id)}"
    cmd += "" if api == "book" else f" --api {api}"
    return cmd + (f" --backend {backend}" if backend else "")


Runner = WorkerPool | InProcess


def _runner(
    layer: LayerFactory | str, jobs: int, limits: Limits, isolate: bool, api: str = "book"
) -> tuple[str, Runner]:
    """(spec, runner): a worker pool for anything a fresh process can load by name."""
    target: Target | None
    adapted = cs231n.adapted(layer)
    if api != "book" and not isinstance(layer, str):
        raise ValueError(f"api={api!r} takes a spec 'module:PART'; or pass cs231n.adapter(module)")
    if isinstance(layer, str):
        target = target_from_spec(layer, api)
    elif adapted is not None:  # a cs231n.adapter class: its module's functions, by name
        target = target_for_adapter(layer) if isolate else None
        if target is None:
            why = "isolate=False" if not isolate else f"{adapted[0]} cannot be loaded by name"
            return f"{adapted[0]}:{adapted[1]}", InProcess(layer, why)
    else:
        target = target_for(layer) if isolate else None
    if target is None:
        assert not isinstance(layer, str)
        name = getattr(layer, "__qualname__", None) or type(layer).__name__
        module = getattr(layer, "__module__", None) or "?"
        if not isolate:
            why = "isolate=False"
        elif "<locals>" in name:
            why = f"{name} is defined inside a function"
        else:
            why = f"{name} is defined in {module}, which a fresh process cannot import"
        return f"{module}:{name}", InProcess(layer, why)
    return target.spec, WorkerPool(target, jobs, limits)


def verify(
    layer: LayerFactory | str,
    *,
    cases: int | Sequence[Case] = DEFAULT_CASES,
    seed: int = 0,
    dtypes: Sequence[str] = DTYPES,
    backends: Sequence[str] | None = None,
    oracles: Sequence[Oracle] | None = None,
    spec: str | None = None,
    progress: Progress | None = None,
    explain: bool = True,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    memory_limit: int = DEFAULT_MEMORY,
    total_timeout: float | None = None,
    isolate: bool = True,
    strict: bool = False,
    explicit_dtype: bool = False,
    cache: Cache = DEFAULT_CACHE,
    api: str = "book",
    kind: str | None = None,
) -> Report:
    """Check `layer` (built as `layer(Wx, Wh, b, stateful=...)`) on random cases.

    kind: the layer kind, "rnn" (the default), "lstm" or "gru" (crosscheck.kinds): the
    shapes of Wx, Wh and b, the state and the quantities; given cases carry their own.

    layer: a class or factory, or a spec 'module:Attr' / 'file.py:Attr'. It runs in
    worker processes (`jobs`, default the machine's cores), each call limited to
    `timeout` seconds, each worker to `memory_limit` bytes, and all the layer does to
    `total_timeout` seconds (None: no total limit); a class a fresh process
    cannot import by name runs in this process instead (report.isolation says so), as
    does every layer with isolate=False (fast, for trusted code: no limits, no protection).
    cases: how many to draw from the seeded generator, or the cases themselves.
    backends: names from crosscheck.oracles.BACKENDS, each run in a process of its own
    (default every installed one); or oracles: Oracle objects to run here instead.
    explain: on a failure, diagnose it and shrink it to the smallest failing case.
    strict: notes (crosscheck.policy) fail too; explicit_dtype: the caller chose `dtypes`,
    so float32 results in float64 cases fail rather than being noted.
    api: "cs231n" takes a spec 'module:PART' / 'file.py:PART' naming one part of a module
    of CS231n-style functions (PART: rnn_forward or rnn_step_forward, crosscheck.cs231n),
    reported in the module's names; a class from crosscheck.cs231n.adapter needs no api.
    Raises BackendUnavailable if a named backend is missing, LayerLoadError if the layer
    cannot be loaded, Interrupted (a KeyboardInterrupt carrying the partial report) on
    Ctrl-C.
    """
    start = time.perf_counter()
    if os.environ.get(IN_WORKER):
        raise RuntimeError(
            "verify() was called while crosscheck's worker loaded the layer's module (or "
            "notebook): put the call under `if __name__ == '__main__':`"
        )
    if isinstance(cases, int) and (cases < 0 or seed < 0):
        raise ValueError(f"cases and seed must be >= 0, got {cases} and {seed}")
    kind = _kind_of(cases, kind)
    sources = (
        [LocalSource("custom", oracles)]
        if oracles is not None
        else backend_sources(list(backends) if backends else available_backends())
    )
    refs = References(sources, cache, kind)
    count = cases if isinstance(cases, int) else len(cases)
    jobs = max(1, min(jobs or os.cpu_count() or 1, count or 1))
    limits = Limits(timeout, memory_limit, total_timeout)
    layer_spec, runner = _runner(layer, jobs, limits, isolate, api)
    report = Report(spec or layer_spec, seed, [i.name for i in refs.infos], runner.how,
                    html_renderer=report_html, kind=kind)  # fmt: skip
    adapted = cs231n.adapted(layer)
    part = adapted[1] if adapted else layer_spec.rpartition(":")[2] if api == "cs231n" else None
    if part in cs231n.NAMES:
        report.api, report.names, report.legend = "cs231n", cs231n.NAMES[part], cs231n.legend(part)
    report.planned, report.strict = count, strict
    policy = Policy(strict, explicit_dtype)
    drawn = isinstance(cases, int)
    stream: Iterable[Case] = (
        iter_cases(cases, seed, dtypes, kind) if isinstance(cases, int) else cases
    )
    try:
        tampered = tampering()
        if tampered is None:
            runner.start()
        for chunk in _chunks(stream, CHUNK):
            if runner.fatal or tampered:
                break
            if progress:
                progress("checking the layer", report.case_count, count)
            refs.prefetch(chunk)
            observed = runner.run(chunk)
            for case, obs, ref in zip(chunk, observed, refs.get(chunk)):
                report.add_case(case)
                if obs is None:
                    report.not_run += 1
                else:
                    _check_case(report, case, obs, ref, refs.infos, drawn, policy)
        report.fatal = runner.fatal
        report.not_run = count - report.case_count + report.not_run
        tampered = tampered or tampering()
        if tampered:
            report.fatal = runner.fatal = (
                f"This process was changed: {tampered}, probably by a module imported into it "
                "(the layer's?). Its arithmetic cannot be trusted, so nothing passes here: run "
                f"python -m crosscheck --layer {shlex.quote(report.layer)} instead."
            )
            report.add_failure(Failure("tampered", "process", "", 0, None, report.fatal, ""), None)
        elif report.fatal and not report.failures:
            report.add_failure(
                Failure("crash", "import", "", 0, None, report.fatal,
                        f"python -m crosscheck --layer {shlex.quote(report.layer)}"), None
            )  # fmt: skip
        if any(f.kind == "mismatch" for f in report.failures):
            # A wrong layer's small errors are not float32 rounding: no such note then.
            report.notes.pop("float32_precision", None)
        if progress:
            progress("done", report.case_count, count)
        if explain and report.failures and not runner.fatal:
            _explain(report, runner, refs, policy)
    except KeyboardInterrupt:
        report.interrupted = True
        raise Interrupted(_finish(report, runner, start)) from None
    _finish(report, runner, start)
    return report


def _kind_of(cases: int | Sequence[Case], kind: str | None) -> str:
    """The kind of the verification: `kind`, or that of the given cases (all one kind)."""
    if kind is not None:
        get_kind(kind)  # a clear error for an unknown name
    if isinstance(cases, int):
        return kind or "rnn"
    kinds = {c.kind for c in cases}
    if len(kinds) > 1 or (kind is not None and kinds and kinds != {kind}):
        raise ValueError(
            f"the cases are of kinds {sorted(kinds)}, but one verification checks one layer "
            f"kind{f' ({kind!r})' if kind else ''}"
        )
    return kinds.pop() if kinds else kind or "rnn"


def _finish(report: Report, runner: Runner, start: float) -> Report:
    runner.close()  # first: the capture of its output is complete once it is gone
    report.fatal = runner.fatal
    report.output = runner.output()
    report.imported = sorted(runner.imported)
    report.left_out = list(runner.skipped)
    report.elapsed = time.perf_counter() - start
    return report


def _chunks(items: Iterable[Case], size: int) -> Iterator[list[Case]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _check_case(
    report: Report,
    case: Case,
    observed: Observed,
    refs: dict[str, Values],
    infos: Sequence[OracleInfo],
    drawn: bool,
    policy: Policy,
) -> None:
    """Judge one case's observed values against every oracle that can check it."""
    for p in observed.problems:
        if not policy.fails(p.kind):
            report.add_note(p.kind, p.message, case.id)
            continue
        report.add_failure(
            Failure(p.kind, p.quantity, case.id, p.segment, p.call, p.message,
                    reproducer(report.layer, case.id, api=report.api)), case
        )  # fmt: skip
    judged: list[tuple[OracleInfo, list[SegmentValues]]] = []
    for info in infos:
        ref = refs[info.name]
        if ref is None:
            report.skipped[info.name] = report.skipped.get(info.name, 0) + 1
        else:
            judged.append((info, ref))
    if not judged:
        if drawn:
            report.unjudged += 1
        else:
            report.unchecked.append(case.id)
        return
    if _oracles_disagree(report, case, judged):
        return
    mismatched = False
    limits: list[dict[Position, float]] = []
    twin = _Twin(case)
    for info, ref in judged:
        report.checked[info.name] = report.checked.get(info.name, 0) + 1
        limits.append({})
        mismatched |= _judge(report, case, observed, info, ref, policy, limits[-1], twin)
    info, ref = judged[0]
    evidence = Evidence(case, observed, info.name, info.accuracy, ref, limits[0])
    if case.id in report.failing_cases and (
        report.evidence is None or (mismatched and not _has_mismatch(report, report.evidence))
    ):
        report.evidence = evidence
    if report.longest is None or _length(case) > _length(report.longest.case):
        report.longest = evidence


class _Twin:
    """The float32 twin of a case (crosscheck.twin), run once when first needed, and its
    error against each oracle's reference."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.values: list[SegmentValues] | None = None
        self.errors: dict[str, dict[Position, float]] = {}

    def error(self, oracle: str, reference: list[SegmentValues], p: Position) -> float | None:
        if oracle not in self.errors:
            if self.values is None:
                self.values = run_twin(self.case, dtype="float32")
            self.errors[oracle] = twin_errors_of(self.values, reference)
        return self.errors[oracle].get(p)


def _length(case: Case) -> tuple[int, int]:
    return max(s.T for s in case.segments), case.total_steps


def _has_mismatch(report: Report, ev: Evidence) -> bool:
    return any(f.kind == "mismatch" and f.case_id == ev.case.id for f in report.failures)


def _oracles_disagree(
    report: Report, case: Case, judged: Sequence[tuple[OracleInfo, list[SegmentValues]]]
) -> bool:
    """Compare every oracle with the first; record and return True on any disagreement."""
    first, first_ref = judged[0]
    found = False
    for other, ref in judged[1:]:
        limit = compare.agreement_threshold(first.accuracy, other.accuracy)
        for p in positions(first_ref):
            err = compare.relative_error(p[2], value_at(ref, p), value_at(first_ref, p)).error
            if not err <= limit:
                report.disagreements.append(
                    Disagreement(case.id, (first.name, other.name), p[2], p[0], p[1], err, limit)
                )
                found = True
    return found


def _judge(
    report: Report,
    case: Case,
    observed: Observed,
    info: OracleInfo,
    ref: list[SegmentValues],
    policy: Policy,
    limits: dict[Position, float],
    twin: _Twin,
) -> bool:
    """Compare every completed segment of `observed` with `ref`; True on any mismatch.
    limits: filled with the threshold each position was judged against."""
    mismatched = False
    for p in positions(observed.segments):
        k, j, q = p
        value = value_at(observed.segments, p)
        in_float32 = value.dtype == np.float32 and not policy.fails("float32_outputs")
        judged_as = "float32" if in_float32 else case.dtype
        twin_error = twin.error(info.name, ref, p) if judged_as == "float32" else None
        limit = compare.limit(case, p, info.accuracy, judged_as, twin_error)
        err = compare.relative_error(q, value, value_at(ref, p))
        if not err.error <= limit and case.dtype == "float64" and not in_float32:
            as_float32 = compare.limit(case, p, info.accuracy, "float32",
                                       twin.error(info.name, ref, p))  # fmt: skip
            if err.error <= as_float32 and not policy.fails("float32_precision"):
                report.add_note("float32_precision",
                                f"{q}: relative error {err.error:.2g} in a float64 case",
                                case.id)  # fmt: skip
                limit = as_float32
        report.cell(info.name, q).add(err.error, limit, case.id)
        limits[p] = limit
        if err.error <= limit:
            continue
        mismatched = True
        steps = err.bad_steps(limit)
        where = f"segment {k}" + ("" if j is None else f", backward call {j}")
        when = "" if steps is None else f", first bad time step t={steps[0]}"
        report.add_failure(
            Failure(
                "mismatch",
                q,
                case.id,
                k,
                j,
                f"{q} differs from {info.name}: error {err.error:.3g} > threshold {limit:.3g} "
                f"({where}{when})",
                reproducer(report.layer, case.id, info.backend, report.api),
                backend=info.name,
                error=err.error,
                threshold=limit,
                first_bad_step=None if steps is None else steps[0],
                last_bad_step=None if steps is None else steps[1],
            ),
            case,
        )
    return mismatched


# --------------------------------------------------------------------------------------
# Explaining one failure: diagnosis from the kept values, then shrinking through a worker.


def _explain(report: Report, runner: Runner, refs: References, policy: Policy) -> None:
    ev = report.evidence
    if ev is not None:
        failing = [
            (f.segment, f.call, f.quantity)
            for f in report.failures
            if f.kind == "mismatch" and f.case_id == ev.case.id and f.backend == ev.oracle
        ]
        if failing:
            found = diagnose(ev.case, ev.observed.segments, ev.reference, failing, ev.accuracy,
                             ev.limits)  # fmt: skip
            report.diagnosis = list(found.lines)
            part = report.names.get("forward", "")  # a cs231n part is named by its forward
            if part in cs231n.PARTS:
                report.diagnosis += cs231n.hints(found.causes, part)
    case = ev.case if ev is not None else report.failing_cases[report.failing_case_ids[0]]
    fast = _fast_references(refs)
    results: dict[str, tuple[Observed, OracleInfo | None, Values, dict[Position, float]]] = {}

    def fails(c: Case) -> Signature:
        if runner.fatal:
            return frozenset()
        obs = runner.run([c])[0]
        if obs is None:
            return frozenset()
        info, ref = _first_reference(fast, c)
        scratch = Report(report.layer, report.seed, [])
        _check_case(scratch, c, obs, {} if info is None else {info.name: ref},
                    [] if info is None else [info], False, policy)  # fmt: skip
        kept = scratch.longest.limits if scratch.longest is not None else {}
        results[c.id] = (obs, info, ref, kept)
        return frozenset((f.kind, f.quantity) for f in scratch.failures)

    small = shrink(case, fails)
    if small.id not in results:
        return
    obs, info, ref, limits = results[small.id]
    report.smallest_case = small.id
    report.smallest_reproducer = reproducer(
        report.layer, small.id, info.backend if info else None, report.api
    )
    report.numbers = numbers(small, obs, ref, info.accuracy if info else 0.0, limits=limits)


def _fast_references(refs: References) -> References:
    """The chosen sources, fastest first for tiny cases."""

    def rank(src: Any) -> int:
        backend = src.infos[0].backend if src.infos else ""
        return FAST_BACKENDS.index(backend) if backend in FAST_BACKENDS else len(FAST_BACKENDS)

    return References(sorted(refs.sources, key=rank), refs.cache, refs.kind)


def _first_reference(refs: References, case: Case) -> tuple[OracleInfo | None, Values]:
    """The first oracle (in `refs` order) that can check `case`, with its reference."""
    for src in refs.sources:
        one = References([src], refs.cache, refs.kind)
        got = one.get([case])[0]
        for info in one.infos:
            if got[info.name] is not None:
                return info, got[info.name]
    return None, None
