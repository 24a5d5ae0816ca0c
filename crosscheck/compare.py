"""The one tolerance model, and the error of an observed quantity against its reference.

Error is measured relative to the reference quantity's scale:

    error = max |observed - reference| / max(max |reference|, FLOOR)

and a quantity passes when error <= threshold, where

    threshold = max(RTOL[dtype] * sqrt(steps), TWIN_FACTOR * twin error, 4 * oracle accuracy)

`steps` is how many recurrent steps the hidden state has gone through since it last
started fresh (a stateful chain keeps counting across segments): rounding errors
grow with it. The twin error (float32 only) is the error that the same recurrence makes
when computed with NumPy's own float32 operations, as a careful float32 layer would
(crosscheck.twin): it follows the case's conditioning (exploding and saturating
regimes amplify rounding) and NumPy's float32 tanh, which steps alone cannot see.
FLOOR keeps a vanishing reference (a gradient that has decayed to 1e-30 through many
tanh steps) from turning harmless rounding into a huge relative error. The constants
come from soaks of several differently written layers (README, "Tolerance model").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import Case
from crosscheck.quantities import TIME_INDEXED, Position

Array = NDArray[Any]

RTOL = {"float32": 3e-5, "float64": 1e-12}
FLOOR = 0.05
# A correct float32 layer's error was at most 3.53 times the twin's where it mattered
# (40,000 cases, seven layers; benchmarks/tolerance_study.py): twice that, rounded up.
TWIN_FACTOR = 8.0
TWIN_DTYPES = frozenset({"float32"})  # float64 rounding stays far inside RTOL alone
# As defined, for crosscheck.integrity: a module that rebinds FLOOR or RTOL is noticed.
AS_DEFINED = (FLOOR, TWIN_FACTOR, tuple(sorted(RTOL.items())))


def threshold(
    dtype: str,
    steps: int,
    oracle_accuracy: float = 0.0,
    twin_error: float | None = None,
    twin_factor: float = TWIN_FACTOR,
) -> float:
    """The largest relative error accepted for a layer computing in `dtype` over `steps`
    steps. twin_error: the float32 twin's (a non-finite or missing one loosens nothing)."""
    base = max(RTOL[dtype] * math.sqrt(max(steps, 1)), 4.0 * oracle_accuracy)
    if dtype not in TWIN_DTYPES or twin_error is None or not math.isfinite(twin_error):
        return base
    return max(base, twin_factor * twin_error)


def limit(
    case: Case,
    position: Position,
    oracle_accuracy: float,
    dtype: str | None = None,
    twin_error: float | None = None,
) -> float:
    """The threshold of `position` of `case` against an oracle of that accuracy: the one
    accessor the judge goes through (diagnosis, plots and numbers then read the limits
    it kept). dtype: the precision the layer computed in, if not the case's (float32
    results of a float64 case are judged as float32); twin_error: the float32 twin's
    error at this position against the same reference (crosscheck.twin)."""
    steps = case.chain_steps(position[0])
    return threshold(dtype or case.dtype, steps, oracle_accuracy, twin_error)


def agreement_threshold(accuracy_a: float, accuracy_b: float) -> float:
    """How far two float64 oracles may differ before the report blames them, not the layer."""
    return 4.0 * max(accuracy_a, accuracy_b, RTOL["float64"])


@dataclass(frozen=True)
class Error:
    """One quantity's error against its reference.

    error: the relative error above (inf where the layer gave NaN or inf);
    per_step: the same per time step for hs and dxs, else None;
    worst: the index of the worst entry.
    """

    error: float
    per_step: Array | None
    worst: tuple[int, ...]

    def bad_steps(self, limit: float) -> tuple[int, int] | None:
        """(first, last) time step over `limit`, for hs and dxs; None if none is."""
        if self.per_step is None:
            return None
        bad = np.flatnonzero(~(self.per_step <= limit))
        return (int(bad[0]), int(bad[-1])) if bad.size else None

    def first_bad_step(self, limit: float) -> int | None:
        steps = self.bad_steps(limit)
        return None if steps is None else steps[0]


def scale(reference: Array) -> float:
    return max(float(np.max(np.abs(reference), initial=0.0)), FLOOR)


def relative_error(quantity: str, observed: Array, reference: Array) -> Error:
    """observed and reference of the same shape; observed in any float dtype, reference float64."""
    diff = np.abs(observed.astype(np.float64) - reference)
    diff[np.isnan(diff)] = np.inf  # NaN never passes
    rel = diff / scale(reference)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else ()
    per_step = None
    if quantity in TIME_INDEXED:
        per_step = rel.max(axis=(0, 2))
    return Error(float(rel.max(initial=0.0)), per_step, tuple(int(i) for i in worst))
