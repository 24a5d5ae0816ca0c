"""Diagnosis: what a failing quantity most likely means, in plain words.

A failing quantity is compared with the values that known backprop mistakes would
produce on the same case. Those values come from the case's layer kind
(crosscheck.kinds): a float64 NumPy model of the layer (crosscheck.mistakes for the RNN,
crosscheck.models for the LSTM and GRU) that can make exactly one mistake at a time.
Quantities that no variant explains are tried against simple transforms of the reference
(scaled by a constant, transposed, reversed in time, all zeros), then against "right
only to float32 precision". What is still unexplained is localised: which quantities are
right and wrong, in which segment or backward call the error first shows, and where in
time it starts.

`verify(explain=True)` calls `diagnose` on the values the report kept of one failing
case: nothing here runs the layer.

The lines of math a diagnosis quotes are the kind's (`Kind.math`); for the RNN, in the
book's row vectors, for t = 0 .. T-1 and h_{-1} the initial state:

    a_t  = h_{t-1} Wh + x_t Wx + b,   h_t = tanh(a_t)
    dt_t = (dhs_t + dh_next) ⊙ (1 − h_t²),   dh_next = dt_{t+1} Wh^T   (zero at t = T-1)
    dWx = Σ_t x_t^T dt_t,  dWh = Σ_t h_{t-1}^T dt_t,  db = Σ_t Σ_n dt_t[n],
    dx_t = dt_t Wx^T,  dh = dt_0 Wh^T
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck import compare
from crosscheck.cases import Case, CaseData
from crosscheck.kinds import Kind, kind_of
from crosscheck.mistakes import Mistake
from crosscheck.quantities import (
    BACKWARD_QUANTITIES,
    FORWARD_QUANTITIES,
    QUANTITIES,
    Position,
    SegmentValues,
)

Array = NDArray[Any]

# A layer's values "match" a variant when they are within SLACK tolerances of it: the
# variant is float64 while the layer may round to float32 on a different path.
SLACK = 10.0
# ...and at least this many times closer to the variant than to the reference, so that a
# variant which barely differs from the reference cannot claim a small error.
CLOSER = 4.0

START_WORDS = {
    "z": "from zeros",
    "c": "from the state carried over from the previous segment",
    "s": "with {set_state}",
    "r": "with reset_state()",
}


# --------------------------------------------------------------------------------------
# Comparing the layer with candidates.


@dataclass(frozen=True)
class Diagnosis:
    """causes: short names of what matched ("no_carry", "scaled", ...); lines: plain words."""

    causes: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class _View:
    """The case, the layer's values and the reference, with the failing positions."""

    case: Case
    data: CaseData
    observed: Sequence[SegmentValues]
    reference: Sequence[SegmentValues]
    failing: frozenset[Position]
    accuracy: float
    limits: Mapping[Position, float]  # the judge's thresholds, where it kept them

    @property
    def kind(self) -> Kind:
        return kind_of(self.case)

    def math(self, quantity: str) -> str:
        return self.kind.math.get(quantity, quantity)

    def positions(self, quantity: str) -> list[Position]:
        """Every compared position of `quantity`, in segment and call order (none where the
        layer has no such quantity: an LSTM's dc that the layer does not expose)."""
        if quantity in FORWARD_QUANTITIES:
            return [
                (k, None, quantity)
                for k, s in enumerate(self.observed)
                if getattr(s, quantity) is not None
            ]
        return [
            (k, j, quantity)
            for k, s in enumerate(self.observed)
            for j, g in enumerate(s.backward)
            if getattr(g, quantity) is not None
        ]

    def obs(self, p: Position) -> Array:
        return self.observed[p[0]].get(p[2], p[1] or 0)

    def ref(self, p: Position) -> Array:
        return self.reference[p[0]].get(p[2], p[1] or 0)

    def limit(self, p: Position) -> float:
        return self.limits.get(p) or compare.limit(self.case, p, self.accuracy)

    def error(self, p: Position, against: Array) -> float:
        return compare.relative_error(p[2], self.obs(p), against).error

    def failing_quantities(self) -> list[str]:
        qs = {p[2] for p in self.failing}
        return [q for q in QUANTITIES if q in qs]


Candidate = Callable[[Position], "Array | None"]


def _explains(view: _View, quantity: str, candidate: Candidate) -> bool:
    """The layer's `quantity` is within SLACK tolerances of `candidate` everywhere, and, where
    it fails, CLOSER times closer to the candidate than to the reference."""
    for p in view.positions(quantity):
        cand = candidate(p)
        if cand is None or cand.shape != view.obs(p).shape or not np.all(np.isfinite(cand)):
            return False
        err = view.error(p, cand)
        if not err <= SLACK * view.limit(p):
            return False
        if p in view.failing and not err * CLOSER <= view.error(p, view.ref(p)):
            return False
    return True


def _variant(values: Sequence[SegmentValues]) -> Candidate:
    def at(p: Position) -> Array | None:
        return values[p[0]].get(p[2], p[1] or 0) if p[0] < len(values) else None

    return at


def _words(quantities: Sequence[str]) -> str:
    """['dxs', 'dWh', 'db'] -> 'dxs, dWh and db'."""
    return (
        quantities[0]
        if len(quantities) == 1
        else ", ".join(quantities[:-1]) + " and " + quantities[-1]
    )


def _verb(quantities: Sequence[str], singular: str, plural: str) -> str:
    return singular if len(quantities) == 1 else plural


def _mistake_line(
    kind: Kind, m: Mistake, quantities: Sequence[str], alternatives: Sequence[Mistake]
) -> str:
    math = "; ".join(kind.math[q] for q in quantities if q in kind.math)
    line = (
        f"{_words(quantities)} {_verb(quantities, 'matches', 'match')} what you get if {m.wrong}. "
        f"Right: {m.right.replace('{math}', math)}."
    )
    for alt in alternatives:
        line += f" (It also matches: {alt.wrong}.)"
    return line


def _match_mistakes(view: _View, todo: list[str]) -> tuple[list[str], list[str]]:
    """Greedy cover of the failing quantities by known mistakes: (causes, lines)."""
    explained: list[tuple[Mistake, set[str]]] = []
    kind = view.kind
    for m in kind.mistakes:
        if not m.applies(view.case):
            continue
        at = _variant(kind.simulate(view.case, view.data, m.name))
        qs = {q for q in todo if _explains(view, q, at)}
        if qs:
            explained.append((m, qs))
    causes, lines = [], []
    left = set(todo)
    while left:
        best, qs = max(explained, key=lambda e: len(e[1] & left), default=(None, set()))
        if best is None or not qs & left:
            break
        alts = [m for m, other in explained if m is not best and other & left == qs & left]
        causes.append(best.name)
        lines.append(_mistake_line(kind, best, [q for q in todo if q in qs & left], alts))
        explained = [e for e in explained if e[0] is not best and e[0] not in alts]
        left -= qs
    todo[:] = [q for q in todo if q in left]
    return causes, lines


# --------------------------------------------------------------------------------------
# Simple transforms of the reference.


def _scale_factor(view: _View, quantity: str) -> float:
    """The least-squares c with observed ≈ c * reference over all positions."""
    num = den = 0.0
    for p in view.positions(quantity):
        o, r = view.obs(p).astype(np.float64).ravel(), view.ref(p).ravel()
        num, den = num + float(o @ r), den + float(r @ r)
    return num / den if den > 0 else float("nan")


def _factor_hint(c: float, case: Case) -> str:
    """What a constant factor most likely is (the batch size first: N = 2 is also 'halved')."""
    named = []
    if case.N > 1:
        named += [(1 / case.N, f"= 1/N: averaged over the batch (N={case.N}) instead of summed"),
                  (float(case.N), f"= N={case.N}")]  # fmt: skip
    named += [(-1.0, "the sign is flipped"), (2.0, "counted twice"), (0.5, "halved")]
    for value, words in named:
        if abs(c - value) <= 1e-6 * abs(value):
            return f" ({words})"
    return ""


def _scaled(view: _View, c: float) -> Candidate:
    return lambda p: c * view.ref(p)


ZERO_HINTS = {
    "hs": "forward never writes the hidden states into the hs it returns",
    "h": "forward never stores the last hidden state in self.h",
    "c": "forward never stores the last cell state in self.c",
    "dxs": "backward never writes the step gradients into the dxs it returns",
    "dWx": "each step's gradient is computed but never accumulated into grads[0] "
    "(write the sum with self.grads[0][...] = dWx)",
    "dWh": "each step's gradient is computed but never accumulated into grads[1] "
    "(write the sum with self.grads[1][...] = dWh)",
    "db": "each step's gradient is computed but never accumulated into grads[2] "
    "(write the sum with self.grads[2][...] = db)",
    "dh": "backward must store the gradient w.r.t. the segment's initial state in self.dh",
    "dc": "backward must store the gradient w.r.t. the initial cell state in self.dc",
}
PARAM_OF = {"dWx": "Wx", "dWh": "Wh", "db": "b"}


def _param(view: _View, q: str) -> Array:
    return {"dWx": view.data.Wx, "dWh": view.data.Wh, "db": view.data.b}[q].astype(np.float64)


def _decay_factor(view: _View, q: str) -> float | None:
    """The least-squares c with observed ≈ reference + c * the parameter (weight decay)."""
    if q not in PARAM_OF:
        return None
    w = _param(view, q).ravel()
    num = den = 0.0
    for p in view.positions(q):
        d = view.obs(p).astype(np.float64).ravel() - view.ref(p).ravel()
        num, den = num + float(d @ w), den + float(w @ w)
    c = num / den if den > 0 else float("nan")
    return c if np.isfinite(c) and c != 0 else None


def _plus_param(view: _View, q: str, c: float) -> Candidate:
    return lambda p: view.ref(p) + c * _param(view, q)


def _match_unfilled(view: _View, todo: list[str]) -> tuple[list[str], list[str]]:
    """hs with values no kind's h can take (|h| <= 1 for the tanh RNN, the LSTM's
    o ⊙ tanh(c) and the GRU's blend of such states): an np.empty buffer never written."""
    if "hs" not in todo:
        return [], []
    for p in view.positions("hs"):
        hs = view.obs(p)
        if not np.all(np.isfinite(hs)) or np.any(np.abs(hs) > 1):
            todo.remove("hs")
            return ["hs_unfilled"], [
                "hs holds values the layer cannot produce (outside [-1, 1], inf or NaN) in "
                f"segment {p[0]}: some entries of the hs buffer are never written (np.empty "
                "keeps whatever was in memory). Write hs[:, t] = h_t at every step t."
            ]
    return [], []


def _match_transforms(view: _View, todo: list[str]) -> tuple[list[str], list[str]]:
    """Zero, scaled, an extra parameter term, transposed, time-reversed: per quantity, the
    first that fits."""
    causes, lines = [], []
    for q in list(todo):
        zero = _explains(view, q, lambda p: np.zeros_like(view.ref(p)))
        c = _scale_factor(view, q)
        decay = _decay_factor(view, q)
        if zero:
            causes.append("zero")
            lines.append(f"{q} is all zeros where it should not be: {ZERO_HINTS[q]}.")
        elif np.isfinite(c) and _explains(view, q, _scaled(view, c)):
            causes.append("scaled")
            lines.append(
                f"{q} is {c:.6g} x the true value{_factor_hint(c, view.case)}: the shape of the "
                f"math is right but a constant factor is not ({view.math(q)})."
            )
        elif q in ("dWx", "dWh") and _explains(view, q, lambda p: view.ref(p).T):
            causes.append("transposed")
            lines.append(
                f"{q} is the transpose of the true value (the square shape cannot catch a swapped "
                f"product): {view.math(q)}."
            )
        elif decay is not None and _explains(view, q, _plus_param(view, q, decay)):
            name = PARAM_OF[q]
            causes.append("extra_term")
            lines.append(
                f"{q} is the true value plus {decay:.6g} x {name}: an extra term, such as weight "
                f"decay, was added inside backward. The layer's gradient is of the loss alone "
                f"({view.math(q)}); a regulariser belongs in the optimizer or the loss."
            )
        elif q in ("hs", "dxs") and _explains(view, q, lambda p: view.ref(p)[:, ::-1]):
            causes.append("time_reversed")
            lines.append(
                f"{q} is the true value reversed in time: step t is stored at T-1-t. Index the "
                "output with the step t itself, not with a counter of a reversed loop."
            )
        else:
            continue
        todo.remove(q)
    return causes, lines


def _match_precision(view: _View, todo: list[str]) -> tuple[list[str], list[str]]:
    """Right to float32's precision on a float64 case: something rounds to float32."""
    if view.case.dtype != "float64" or not todo:
        return [], []
    worst = 0.0
    for p in view.failing:
        if p[2] in todo:
            err = view.error(p, view.ref(p))
            if not err <= SLACK * compare.limit(view.case, p, view.accuracy, "float32"):
                return [], []
            worst = max(worst, err)
    where = "forward" if any(q in FORWARD_QUANTITIES for q in todo) else "backward"
    line = (
        f"{_words(todo)} {_verb(todo, 'is', 'are')} right to about float32 precision (worst "
        f"relative error {worst:.1e}) but not to float64's: somewhere the {where} rounds to "
        "float32 (dtype='f', np.float32, astype(np.float32)); compute in the parameters' dtype."
    )
    todo.clear()
    return ["float32_precision"], [line]


# Each takes the quantities still unexplained, removes those it explains and returns
# (causes, lines); tried in this order.
Matcher = Callable[[_View, list[str]], tuple[list[str], list[str]]]
MATCHERS: tuple[Matcher, ...] = (
    _match_unfilled,
    _match_mistakes,
    _match_transforms,
    _match_precision,
)


# --------------------------------------------------------------------------------------
# Localisation, when nothing known matches.


def _bad_steps(view: _View, p: Position) -> list[int]:
    per_step = compare.relative_error(p[2], view.obs(p), view.ref(p)).per_step
    assert per_step is not None
    return [int(t) for t in np.flatnonzero(~(per_step <= view.limit(p)))]


# What a step receives from the step after it, in backward.
CARRIED = {
    "rnn": "dh_next = dt_{t+1} Wh^T",
    "lstm": "dh_next = dA_{t+1} Wh^T and dc_next = ds_{t+1} ⊙ f_{t+1}",
    "gru": "dh_next, through the (1 − z) path, r ⊙ dhr and the gates' Wh^T products",
}


def _where_in_time(view: _View, p: Position) -> str | None:
    """Where in time hs or dxs first goes wrong, in words."""
    bad = _bad_steps(view, p)
    if not bad:
        return None
    k, q = p[0], p[2]
    T = view.case.segments[k].T
    if q == "hs":
        if bad[0] == 0:
            return (
                f"hs is wrong from the first step t=0 of segment {k}: look at the start state "
                "and the input term x_t Wx + b."
            )
        head = f"hs is right for t < {bad[0]} and wrong from t={bad[0]} of segment {k}"
        if bad[0] == 1 and view.case.segments[k].start in "zr" and view.kind.name == "rnn":
            # From zeros, h_{-1} Wh vanishes: step 1 is the first that uses the recurrence.
            return f"{head}: the error enters through the recurrence h_{{t-1}} Wh."
        return f"{head}: look at what the loop does differently from step {bad[0]} on."
    if bad[-1] == T - 1:
        return (
            f"dxs is wrong already at the last step t={T - 1} of segment {k}, which receives no "
            f"carried gradient: look at the step's own gradient and {view.math('dxs')}."
        )
    right = f"step t={T - 1}" if bad[-1] == T - 2 else f"steps t={T - 1} down to t={bad[-1] + 1}"
    return (
        f"dxs is right at the last {right} and wrong from "
        f"t={bad[-1]} back to t={bad[0]} (segment {k}): the error enters with the gradient "
        f"carried back from later steps, {CARRIED[view.kind.name]}, and spreads backward."
    )


def _where_in_calls(view: _View, q: str) -> str | None:
    """Whether q is right in earlier segments or calls and goes wrong later."""
    first = min((p for p in view.failing if p[2] == q), key=lambda p: (p[0], p[1] or 0))
    k, j = first[0], first[1]
    if j == 1 and (k, 0, q) not in view.failing:
        return (
            f"{q}: the first backward call of segment {k} is right, the second one (same forward, "
            "another dhs) is not: backward must not change what forward cached, and must "
            "overwrite grads rather than add to them."
        )
    if k > 0:
        start = START_WORDS[view.case.segments[k].start].format(set_state=view.kind.set_state)
        return (
            f"{q} is right in segment{'s' if k > 1 else ''} 0{f'..{k - 1}' if k > 1 else ''} and "
            f"first wrong in segment {k}, which starts {start}: look at what the layer keeps "
            "from one call to the next."
        )
    return None


def _localise(view: _View, todo: list[str]) -> list[str]:
    wrong = view.failing_quantities()
    right = [q for q in QUANTITIES if q not in wrong and view.positions(q)]
    lines = [
        f"No known mistake matches {_words(todo)}. Right: {', '.join(right) or 'nothing'}; "
        f"wrong: {', '.join(wrong)}."
    ]
    if any(q in FORWARD_QUANTITIES for q in wrong) and any(q in BACKWARD_QUANTITIES for q in todo):
        # The gradients follow from a wrong forward: localise the forward only.
        todo = [q for q in todo if q in FORWARD_QUANTITIES]
        lines.append(
            "The forward is wrong, so the gradients may be wrong only because of it: "
            "fix the forward first."
        )
    for q in todo:
        said = _where_in_calls(view, q)
        if said:
            lines.append(said)
        if q in ("hs", "dxs"):
            first = min((p for p in view.failing if p[2] == q), key=lambda p: (p[0], p[1] or 0))
            said = _where_in_time(view, first)
            if said:
                lines.append(said)
    return lines


# --------------------------------------------------------------------------------------


def diagnose(
    case: Case,
    observed: Sequence[SegmentValues],
    reference: Sequence[SegmentValues],
    failing: Sequence[Position],
    accuracy: float = 0.0,
    limits: Mapping[Position, float] | None = None,
) -> Diagnosis:
    """Explain the failing positions of one case.

    observed: the layer's completed segments (e.g. `drive(...).segments`); reference: a
    float64 reference of at least as many segments; failing: (segment, call, quantity)
    of every mismatch (call None for hs and h), e.g. from the report's failures;
    accuracy: the reference oracle's; limits: the threshold each position was judged
    against (report Evidence.limits), else compare.limit's.
    """
    failing_set = frozenset(p for p in failing if p[0] < len(observed))
    if not failing_set:
        return Diagnosis()
    view = _View(case, case.data(), observed, reference, failing_set, accuracy, limits or {})
    todo = view.failing_quantities()
    causes: list[str] = []
    lines: list[str] = []
    for match in MATCHERS:
        c, ls = match(view, todo)
        causes += c
        lines += ls
    if todo:
        lines += _localise(view, todo)
    return Diagnosis(tuple(causes), tuple(lines))
