"""The float32 twin: how far a careful float32 layer lands from the float64 reference.

A float32 layer's error on a case is not set by the number of steps alone. Where a
case is ill-conditioned (exploding gradients, saturated tanh) the rounding of every
step is amplified, and NumPy's float32 tanh is itself only good to about 1.4 ULP. So
beside the fixed allowance RTOL * sqrt(steps), a quantity is allowed a multiple of the
error that the *twin* makes there: the same recurrence, computed with NumPy's own
float32 operations the way a careful hand-written float32 layer computes it, and
judged against the same float64 reference with the same error measure
(`crosscheck.compare.relative_error`):

    threshold = max(RTOL * sqrt(steps), K * twin_error, 4 * oracle accuracy)

per case and per (segment, backward call, quantity). For each layer kind the twin
is its kind's `twin` (crosscheck.kinds): for the RNN crosscheck.models.rnn, the book's
math in row vectors one step at a time, weight gradients one product each over the N·T
rows; for the LSTM and GRU their mistakes models without a mistake, run in float32. It
walks the case's chain of segments as a layer does (a carried state is the twin's *own*,
in float32, as a layer carries it) and shares no code with the layers it judges.

How K was chosen, and what the rule still catches (`benchmarks/tolerance_study.py`,
40,000 float32 cases of seeds 4242 and 2026, reference mistakes.simulate): of six
correct float32 layers written differently (the book's, handrnn, hoisted products,
per-step accumulation, time-major, float64 inside) all but the last failed
RTOL * sqrt(steps) in the same 7 cases, by up to 8.2x, all in the exploding regime.
Their rounding is largely NumPy's own and so the twin's: where their error passed half
of RTOL * sqrt(steps) it was at most 1.22 times the twin's. A correct layer whose tanh
is not NumPy's float32 one (float64's, rounded) went up to 3.53 times. K = 8, twice
that rounded up, leaves all of them at or below 0.46 of the new threshold (the NumPy
ones at 0.33), raises the threshold at 0.06% of the positions (none in the small
regime, 18 of 206,405 in the moderate one) and loses dWh x 1.001 in 1 case of the
37,826 that caught it (K = 4 loses the same case). float64 needs no twin: the same
layers stay below 0.13 of 1e-12 * sqrt(steps) even in the exploding regime against the
torch and JAX oracles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

from crosscheck import compare
from crosscheck.cases import Case, CaseData
from crosscheck.kinds import kind_of
from crosscheck.quantities import Position, SegmentValues, positions

Array = NDArray[Any]

K = compare.TWIN_FACTOR  # the rule itself lives in crosscheck.compare
TWIN_DTYPES = compare.TWIN_DTYPES


def run_twin(
    case: Case, data: CaseData | None = None, dtype: str | None = None
) -> list[SegmentValues]:
    """The twin's values on `case`, per segment, computed in `dtype` (default: the case's).

    data: the case's arrays if already drawn (`case.data()` otherwise): the very arrays a
    layer is given. dtype: the precision to compute in, if not the case's: the one a
    layer is judged in (a float32-only layer in a float64 case, as compare.limit's
    dtype), for which the inputs are rounded to it first; or float64 for a study.
    """
    d = case.data() if data is None else data
    return kind_of(case).twin(case, d, case.dtype if dtype is None else dtype)


def errors(
    twin: Sequence[SegmentValues], reference: Sequence[SegmentValues]
) -> dict[Position, float]:
    """The relative error of `twin` (run_twin's values) against `reference` (float64, e.g.
    an oracle's) at every (segment, call, quantity) of the reference that the twin has,
    measured as compare.relative_error does.

    An entry is inf where the twin gave NaN or inf (not expected: the twin's values are
    bounded like a layer's); `twin_threshold` then ignores it.
    """
    out: dict[Position, float] = {}
    for k, j, q in positions(reference):
        if k >= len(twin) or (j is not None and j >= len(twin[k].backward)):
            continue
        observed, ref = twin[k].get(q, j or 0), reference[k].get(q, j or 0)
        out[(k, j, q)] = compare.relative_error(q, observed, ref).error
    return out


def twin_errors(
    case: Case,
    reference: Sequence[SegmentValues],
    data: CaseData | None = None,
    dtype: str | None = None,
) -> dict[Position, float]:
    """The twin's relative error against `reference` at every (segment, call, quantity):
    `errors(run_twin(case, data, dtype), reference)`. To judge against several oracles'
    references, run the twin once and call `errors` for each."""
    return errors(run_twin(case, data, dtype), reference)


def twin_threshold(
    dtype: str, steps: int, twin_error: float | None, oracle_accuracy: float = 0.0, k: float = K
) -> float:
    """max(RTOL[dtype] * sqrt(steps), k * twin_error, 4 * oracle_accuracy).

    The twin term applies only to TWIN_DTYPES and only when twin_error is finite (a
    non-finite twin never loosens anything); otherwise this is compare.threshold.
    """
    return compare.threshold(dtype, steps, oracle_accuracy, twin_error, k)


def thresholds(
    case: Case,
    reference: Sequence[SegmentValues],
    oracle_accuracy: float = 0.0,
    data: CaseData | None = None,
    k: float = K,
    twin: Sequence[SegmentValues] | None = None,
    dtype: str | None = None,
) -> dict[Position, float]:
    """The threshold of every (segment, call, quantity) of `reference` for `case`.

    dtype: the precision the layer is judged in, if not the case's (as compare.limit's).
    For TWIN_DTYPES this runs the twin in that precision (unless its values are given as
    `twin`); for other dtypes it is compare.threshold at each position and no twin is run.
    """
    judged = case.dtype if dtype is None else dtype
    errs: dict[Position, float] = {}
    if judged in TWIN_DTYPES:
        errs = errors(run_twin(case, data, judged) if twin is None else twin, reference)
    return {
        (s, j, q): twin_threshold(
            judged, case.chain_steps(s), errs.get((s, j, q)), oracle_accuracy, k
        )
        for s, j, q in positions(reference)
    }
