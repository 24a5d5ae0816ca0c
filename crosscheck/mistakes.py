"""The known backprop mistakes, and a float64 TimeRNN that can make any one of them.

`MISTAKES` lists them in plain words, each with the line of math it breaks;
`simulate(case, data, mistake)` computes what a layer with that one mistake returns on
a case. Written here from the formulas, it shares no code with handrnn. Used by
crosscheck.diagnose to recognise a failing layer's signature.

Notation (the book's row vectors), for t = 0 .. T-1 and h_{-1} the initial state:

    a_t  = h_{t-1} Wh + x_t Wx + b,   h_t = tanh(a_t)
    dt_t = (dhs_t + dh_next) ⊙ (1 − h_t²),   dh_next = dt_{t+1} Wh^T   (zero at t = T-1)
    dWx = Σ_t x_t^T dt_t,  dWh = Σ_t h_{t-1}^T dt_t,  db = Σ_t Σ_n dt_t[n],
    dx_t = dt_t Wx^T,  dh = dt_0 Wh^T
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crosscheck.cases import Case, CaseData
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

DT_LINE = "dt_t = (dhs_t + dh_next) ⊙ (1 − h_t²) with dh_next = dt_{t+1} Wh^T"
MATH = {
    "hs": "h_t = tanh(h_{t-1} Wh + x_t Wx + b)",
    "h": "layer.h = h_{T-1}, the last hidden state",
    "dxs": "dx_t = dt_t Wx^T",
    "dWx": "dWx = Σ_t x_t^T dt_t",
    "dWh": "dWh = Σ_t h_{t-1}^T dt_t",
    "db": "db = Σ_t Σ_n dt_t[n]",
    "dh": "dh = dt_0 Wh^T",
}


# --------------------------------------------------------------------------------------
# The known mistakes.


def _always(case: Case) -> bool:
    return True


def _has_start(start: str) -> Callable[[Case], bool]:
    return lambda case: any(s.start == start for s in case.segments)


@dataclass(frozen=True)
class Mistake:
    """One known mistake. `wrong` completes "... match(es) what you get if ..."; `right` is
    the line of math it breaks ("{math}" is replaced by the explained quantities' lines)."""

    name: str
    wrong: str
    right: str
    applies: Callable[[Case], bool] = _always


_SUM_OVER_STEPS = "the weights are shared by every step, so their gradients sum over steps: {math}"
# Order matters where two mistakes give the same values on a case: the first is named
# (the others as "also matches"), so narrower mistakes come before broader ones.
MISTAKES: tuple[Mistake, ...] = (
    Mistake("no_carry",
            "the gradient carried back from step t+1 is not added (dh is not carried back)",
            "h_t feeds both hs and step t+1, so both gradients add up: " + DT_LINE),
    Mistake("grads_step0_only",
            "only step t=0's contribution is kept (the last step the backward loop visits), "
            "as when the loop assigns each step's gradient (=) instead of adding it (+=)",
            _SUM_OVER_STEPS),
    Mistake("grads_last_step_only",
            "only the last step's (t=T-1) contribution is kept", _SUM_OVER_STEPS),
    Mistake("tanh_grad_1_minus_h", "tanh' is taken as 1 − h_t instead of 1 − h_t²",
            "d tanh(a)/da = 1 − tanh(a)², so " + DT_LINE),
    Mistake("tanh_grad_from_h_prev",
            "tanh' is computed from the step's input state, 1 − h_{t-1}², not its output h_t",
            "h_t = tanh(a_t) is the step's output, so " + DT_LINE),
    Mistake("tanh_grad_missing", "the tanh derivative is left out (dt_t = dhs_t + dh_next)",
            DT_LINE),
    Mistake("carry_after_tanh",
            "the carried gradient is added after the tanh derivative "
            "(dt_t = dhs_t ⊙ (1 − h_t²) + dh_next)",
            "the sum of both branches goes through tanh': " + DT_LINE),
    Mistake("carry_Wh_not_T", "the gradient is carried back with Wh instead of Wh^T",
            "a_t = h_{t-1} Wh + ..., so dh_{t-1} = dt_t Wh^T (with H = 1 both agree)"),
    Mistake("dWh_from_h_t", "dWh is built from the step's output h_t instead of its input h_{t-1}",
            "Wh multiplies what came into the step, a_t = h_{t-1} Wh + ..., so {math}"),
    Mistake("dx_Wx_not_T", "dxs uses Wx instead of Wx^T (shapes agree only because D = H)",
            "a_t = ... + x_t Wx + ..., so " + MATH["dxs"], lambda c: c.D == c.H),
    Mistake("db_first_sample_only", "db sums over time but not over the batch (sample 0 only)",
            "b is added to every sample's row, so {math}", lambda c: c.N > 1),
    Mistake("db_wrong_axis",
            "db is summed over time and hidden units, one value per sample (the shapes only "
            "agree because N = H)",
            "db = Σ_n Σ_t dt[n, t, :]: sum over the batch and time axes",
            lambda c: c.N == c.H),
    Mistake("dh_from_last_step",
            "layer.dh is stored from the first step the backward loop visits (t=T-1) "
            "instead of after the loop",
            "dh is the gradient w.r.t. the initial state h_{-1}: {math}, set after the loop"),
    Mistake("dh_missing_Wh", "layer.dh is dt_0 instead of dt_0 Wh^T",
            "the initial state enters as h_{-1} Wh, so {math}"),
    Mistake("set_state_ignored",
            "set_state(h) is ignored (forward starts from the carried state or zeros)",
            "set_state(h) must set self.h = h, the state the next forward starts from",
            _has_start("s")),
    Mistake("reset_ignored", "reset_state() does not reset the state (it carries on through it)",
            "reset_state() must set self.h = None, so the next forward starts from zeros",
            _has_start("r")),
    Mistake("stateful_ignored",
            "forward starts every segment from zeros, ignoring the carried or set state",
            "with stateful=True, forward starts from self.h (carried from the previous call, "
            "or given to set_state) and from zeros only when self.h is None",
            lambda c: c.stateful and any(s.start in "cs" for s in c.segments)),
    Mistake("stateless_carries",
            "a stateless layer carries its last state into the next forward",
            "with stateful=False every forward starts from h_{-1} = 0: "
            "`if not self.stateful or self.h is None`",
            lambda c: not c.stateful and len(c.segments) > 1),
    Mistake("grads_accumulate",
            "backward adds into grads (+=) instead of overwriting them, so they accumulate "
            "over backward calls",
            "each backward overwrites grads in place with this call's sums, "
            "self.grads[i][...] = g; {math}",
            lambda c: sum(s.backwards for s in c.segments) > 1),
    Mistake("backward_overwrites_cache",
            "backward overwrites the cached h_t with h_t² (e.g. np.square(h, out=h)): the first "
            "backward is right, but a second one, and the state carried into the next "
            "forward, use the squared values",
            "backward must not modify what forward cached: compute 1 − h_t² into a new array",
            lambda c: sum(s.backwards for s in c.segments) > 1),
    Mistake("forward_Wh_transposed", "forward uses Wh^T, h_t = tanh(h_{t-1} Wh^T + x_t Wx + b)",
            "in the book's row-vector form, " + MATH["hs"], lambda c: c.H > 1),
    Mistake("forward_no_bias", "forward leaves out the bias b", MATH["hs"]),
    Mistake("forward_no_recurrence",
            "every step starts from the initial state instead of the previous step's output "
            "(h is not updated inside the loop)",
            MATH["hs"] + ", where h_{t-1} is the output of the step before"),
)  # fmt: skip
BY_NAME = {m.name: m for m in MISTAKES}  # the kind-independent ones are reused by name


# --------------------------------------------------------------------------------------
# The mistaken-variants model: one float64 TimeRNN that can make one mistake.


def _forward(Wx: Array, Wh: Array, b: Array, h0: Array, xs: Array, mistake: str) -> Array:
    """h0 (N, H), xs (N, T, D) -> hs (N, T, H)."""
    W = Wh.T if mistake == "forward_Wh_transposed" else Wh
    bias = 0.0 if mistake == "forward_no_bias" else b
    hs = np.empty((xs.shape[0], xs.shape[1], Wh.shape[0]))
    h = h0
    for t in range(xs.shape[1]):
        h_in = h0 if mistake == "forward_no_recurrence" else h
        h = np.tanh(h_in @ W + xs[:, t] @ Wx + bias)
        hs[:, t] = h
    return hs


def _tanh_grad(hs: Array, hprev: Array, mistake: str) -> Array:
    """tanh'(a_t) as the mistake computes it, (N, T, H)."""
    if mistake == "tanh_grad_1_minus_h":
        return 1.0 - hs
    if mistake == "tanh_grad_from_h_prev":
        return 1.0 - hprev**2
    if mistake == "tanh_grad_missing":
        return np.ones_like(hs)
    return 1.0 - hs**2


def _step_terms(mistake: str, T: int) -> slice:
    """Which steps' weight-gradient terms survive."""
    if mistake == "grads_step0_only":
        return slice(0, 1)
    if mistake == "grads_last_step_only":
        return slice(T - 1, T)
    return slice(0, T)


def _backward(
    Wx: Array, Wh: Array, h0: Array, xs: Array, hs: Array, dhs: Array, mistake: str
) -> Grads:
    """One backward(dhs) of the segment that ran from h0 over xs (N, T, D) giving hs (N, T, H)."""
    T = xs.shape[1]
    hprev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)  # h_{t-1} lined up with step t
    deriv = _tanh_grad(hs, hprev, mistake)
    back = Wh if mistake == "carry_Wh_not_T" else Wh.T
    dt = np.zeros_like(hs)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        if mistake == "no_carry":
            dt[:, t] = dhs[:, t] * deriv[:, t]
        elif mistake == "carry_after_tanh":
            dt[:, t] = dhs[:, t] * deriv[:, t] + dh_next
        else:
            dt[:, t] = (dhs[:, t] + dh_next) * deriv[:, t]
        dh_next = dt[:, t] @ back

    keep = _step_terms(mistake, T)
    h_in = hs if mistake == "dWh_from_h_t" else hprev
    dWx = np.einsum("ntd,nth->dh", xs[:, keep], dt[:, keep])
    dWh = np.einsum("ntk,nth->kh", h_in[:, keep], dt[:, keep])
    db = dt[:, keep].sum(axis=(0, 1))
    if mistake == "db_first_sample_only":
        db = dt[0].sum(axis=0)
    elif mistake == "db_wrong_axis":
        db = dt.sum(axis=(1, 2))  # (N,), the shape of b only because N == H
    dxs = dt @ (Wx if mistake == "dx_Wx_not_T" else Wx.T)
    dh = dt[:, 0] @ back
    if mistake == "dh_from_last_step":
        dh = dt[:, T - 1] @ back
    elif mistake == "dh_missing_Wh":
        dh = dt[:, 0].copy()
    return Grads(dxs, dWx, dWh, db, dh)


def start_state(
    case: Case, k: int, h_set: Array | None, carried: Array | None, mistake: str
) -> Array:
    """The state segment k starts from, as the mistaken layer chooses it; (N, H). Also the
    gated models' rule, for h and for the LSTM's c (crosscheck.models)."""
    zeros = np.zeros((case.batch(k), case.H))
    prev = zeros if carried is None or carried.shape != zeros.shape else carried
    start = case.segments[k].start
    if not case.stateful:
        return prev if mistake == "stateless_carries" else zeros
    if mistake == "stateful_ignored" or start == "z":
        return zeros
    if start == "r":
        return prev if mistake == "reset_ignored" else zeros
    if start == "s" and mistake != "set_state_ignored":
        assert h_set is not None
        return h_set
    return prev  # "c", or a set_state the layer ignored


def accumulate(total: Grads | None, g: Grads, mistake: str) -> Grads:
    """What backward leaves in grads: this call's sums `g`, or, for grads_accumulate, those
    added to the sums `total` it left before (the other quantities are this call's)."""
    if mistake != "grads_accumulate" or total is None:
        return g
    return dataclasses.replace(g, dWx=total.dWx + g.dWx, dWh=total.dWh + g.dWh, db=total.db + g.db)


def simulate(case: Case, data: CaseData, mistake: str = "") -> list[SegmentValues]:
    """The per-segment values a layer making `mistake` ("" for none) gives on `case`, float64."""
    f64 = np.float64
    Wx, Wh, b = data.Wx.astype(f64), data.Wh.astype(f64), data.b.astype(f64)
    carried: Array | None = None  # the layer's self.h between segments
    total: Grads | None = None  # running sums, for grads_accumulate
    out = []
    for k, sd in enumerate(data.segments):
        h_set = None if sd.h_set is None else sd.h_set.astype(f64)
        h0 = start_state(case, k, h_set, carried, mistake)
        xs = sd.xs.astype(f64)
        hs = _forward(Wx, Wh, b, h0, xs, mistake)
        cache = hs.copy()  # what backward reads (backward_overwrites_cache squares it)
        calls = []
        for dhs in sd.dhs:
            g = _backward(Wx, Wh, h0, xs, cache, dhs.astype(f64), mistake)
            g = total = accumulate(total, g, mistake)
            calls.append(g)
            if mistake == "backward_overwrites_cache":
                cache = cache**2
        carried = cache[:, -1].copy()
        out.append(SegmentValues(hs, hs[:, -1].copy(), tuple(calls)))
    return out
