"""Check a layer from pytest in one line, and draw cases for property tests.

A student's test file:

    from crosscheck.testing import assert_layer_matches
    from my_layers import TimeRNN

    def test_time_rnn():
        assert_layer_matches(TimeRNN)

On failure the AssertionError's first line is the verdict (what pytest's summary,
`-ra` and JUnit XML show); the rest is the same text the CLI prints. How many cases
and which backends: the arguments below, else the pytest options --crosscheck-cases
and --crosscheck-backend (crosscheck.pytest_plugin), else 20 cases on every
installed backend.

An instructor's property test (needs hypothesis, imported only by `cases()`):

    from hypothesis import given, settings
    from crosscheck.testing import assert_layer_matches, cases

    @settings(max_examples=25, deadline=None)
    @given(cases(max_T=8))
    def test_time_rnn_on_any_case(case):
        assert_layer_matches(TimeRNN, cases=[case], explain=False)

(explain=False: hypothesis reruns a failing test many times while it shrinks the
case; diagnosing every rerun would take seconds each.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crosscheck.cases import DTYPES, NDH_POOL, REGIMES, T_POOL, Case, Segment, Start
from crosscheck.drive import LayerFactory
from crosscheck.isolation import DEFAULT_MEMORY, DEFAULT_TIMEOUT
from crosscheck.render import render_text, verdict
from crosscheck.report import Report
from crosscheck.settings import session as _session
from crosscheck.verification import DEFAULT_CASES as VERIFY_DEFAULT_CASES
from crosscheck.verification import verify

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["DEFAULT_CASES", "assert_layer_matches", "cases", "configure", "failure_message"]

# As many as the CLI, so that a student's test and the CLI agree: a few seconds with every
# backend (the references are cached across the calls of one pytest run).
DEFAULT_CASES = VERIFY_DEFAULT_CASES


def configure(*, cases: int | None = None, backends: Sequence[str] | None = None) -> None:
    """Set the defaults for assert_layer_matches calls that leave these arguments out
    (None: back to DEFAULT_CASES, every installed backend)."""
    _session.cases = cases
    _session.backends = list(backends) if backends else None


def failure_message(report: Report) -> str:
    """The verdict line first (pytest's one-line summaries show only that), then the CLI's text."""
    return f"{verdict(report)}\n\n{render_text(report, with_verdict=False)}"


def assert_layer_matches(
    factory: LayerFactory | str,
    *,
    cases: int | Sequence[Case] | None = None,
    seed: int = 0,
    dtypes: Sequence[str] = DTYPES,
    backends: Sequence[str] | None = None,
    explain: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    memory_limit: int = DEFAULT_MEMORY,
    kind: str | None = None,
) -> Report:
    """Verify `factory` (built as `factory(Wx, Wh, b, stateful=...)`) and return the report.

    kind: "rnn" (default), "lstm" or "gru", as for `crosscheck.verify`.

    Same arguments as `crosscheck.verify`; cases and backends left out (None) take the
    session defaults (see the module doc). explain: on failure, add the likely cause and
    the smallest failing case to the message (a few seconds).

    Raises a plain AssertionError (pytest's summary line reads "AssertionError: FAIL: ...")
    whose message is the verdict, then the CLI's report, unless the layer agrees with
    every oracle on every case. An inconclusive run fails too, and so does a run in which
    no oracle could check any case (e.g. only "numeric", which skips large cases).
    Raises BackendUnavailable if a named backend is missing.
    """
    __tracebackhide__ = True  # pytest: show the test's line, not this helper's
    if cases is None:
        cases = _session.cases or DEFAULT_CASES
    if backends is None:
        backends = _session.backends
    report = verify(factory, cases=cases, seed=seed, dtypes=dtypes, backends=backends,
                    explain=explain, timeout=timeout, memory_limit=memory_limit,
                    kind=kind)  # fmt: skip
    if not report.ok:
        raise AssertionError(failure_message(report))
    if not any(report.checked.values()):
        raise AssertionError(
            f"NOTHING CHECKED: no case of {report.case_count} could be recomputed by "
            f"{', '.join(report.backends)}; add cases or a backend such as jax or torch"
        )
    return report


def cases(
    *,
    dtypes: Sequence[str] = DTYPES,
    regimes: Sequence[str] = REGIMES,
    max_T: int | None = None,
    max_segments: int = 4,
    kind: str = "rnn",
) -> SearchStrategy[Case]:
    """A hypothesis strategy for Cases, over the same shape, length and regime pools
    as `crosscheck.cases.generate_cases`.

    Each field is drawn separately, so a failing case shrinks towards the simplest
    one: N = D = H = 1, T = 1, the first regime, stateless, one segment. Unlike the
    generator, segments of one case may have different lengths.
    max_T: keep only lengths <= max_T from the pool (short cases check faster).
    kind: the layer kind of every case.
    """
    import hypothesis.strategies as st

    lengths = [T for T in T_POOL if max_T is None or max_T >= T]
    if not lengths or not dtypes or not regimes or max_segments < 1:
        raise ValueError("cases(): no case fits (check max_T, dtypes, regimes, max_segments)")

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        N, D, H = draw(st.sampled_from(NDH_POOL))
        regime = draw(st.sampled_from(list(regimes)))
        stateful = draw(st.booleans())
        segments = []
        for k in range(draw(st.integers(1, max_segments))):
            segments.append(
                Segment(
                    T=draw(st.sampled_from(lengths)),
                    start=draw(st.sampled_from(_starts(stateful, k))),
                    backwards=draw(st.integers(1, 2)),
                    scribble=draw(st.booleans()),
                )
            )
        dtype = draw(st.sampled_from(list(dtypes)))
        seed = draw(st.integers(0, 2**31 - 1))
        return Case(dtype, N, D, H, regime, stateful, tuple(segments), seed, kind)

    return build()


def _starts(stateful: bool, k: int) -> tuple[Start, ...]:
    """How segment k may begin: stateless always from zeros; a stateful chain starts
    fresh or from set_state, then carries, sets or resets."""
    if not stateful:
        return ("z",)
    return ("z", "s") if k == 0 else ("c", "s", "r")
