"""crosscheck.diagnose: a failing layer's values are matched with the signatures of known mistakes.

Each known mistake is made by a layer written independently of the diagnosis' own
variants model: the catalog's wrong layers (tests/catalog/), and `Plain` below, a compact
TimeRNN with one switchable mistake for the signatures the catalog does not cover. The
references come from the "numeric" backend (NumPy finite differences): no framework needed.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crosscheck import verify
from crosscheck.cases import parse_case
from crosscheck.diagnose import Diagnosis, diagnose
from crosscheck.drive import drive
from crosscheck.mistakes import MISTAKES, simulate
from crosscheck.oracles import load_backend, reference

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.catalog.*`
    sys.path.insert(0, str(ROOT))

# One case with every start (s, c, r), a second backward call and a scribbled hs; and a
# stateless chain for the stateless mistakes. Both small enough for finite differences.
STATEFUL = "{dt}:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11"
STATELESS = "{dt}:N3:D2:H3:moderate:stateless:4z,4z2*:7"

Array = Any


def diagnosis_of(layer: Any, case_id: str) -> Diagnosis:
    """Verify `layer` on one case against the numeric backend and diagnose its mismatches."""
    case = parse_case(case_id)
    numeric = load_backend("numeric")
    # explicit_dtype: float32 precision in a float64 case is then a mismatch, not a note.
    report = verify(layer, cases=[case], oracles=numeric, explain=False, isolate=False,
                    explicit_dtype=True)  # fmt: skip
    failing = [(f.segment, f.call, f.quantity) for f in report.failures if f.kind == "mismatch"]
    ref = reference(numeric[0], [case])[0]
    assert ref is not None
    return diagnose(case, drive(layer, case).segments, ref, failing, numeric[0].accuracy)


def catalog_layer(name: str) -> Any:
    return importlib.import_module(f"tests.catalog.wrong_{name}").TimeRNN


# catalog module -> the cause the diagnosis must name first
CATALOG_CAUSES = {
    "forward_no_bias": "forward_no_bias",
    "forward_wh_transposed": "forward_Wh_transposed",
    "tanh_grad_one_minus_h": "tanh_grad_1_minus_h",
    "tanh_grad_at_h_prev": "tanh_grad_from_h_prev",
    "dwh_uses_h_next": "dWh_from_h_t",
    "dh_prev_no_transpose": "carry_Wh_not_T",
    "db_batch_mean": "scaled",
    "no_branch_sum": "no_carry",
    "grads_last_step_only": "grads_step0_only",
    "stateless_carries": "stateless_carries",
    "set_state_ignored": "set_state_ignored",
    "reset_state_clears_dh": "reset_ignored",
    "backward_squares_cache": "backward_overwrites_cache",
    "grads_accumulate_across_calls": "grads_accumulate",
    "dwh_off_by_0p1pct": "scaled",
}


@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize("name", sorted(CATALOG_CAUSES))
def test_catalog_mistake_is_recognised(name: str, dtype: str) -> None:
    template = STATELESS if name == "stateless_carries" else STATEFUL
    d = diagnosis_of(catalog_layer(name), template.format(dt=dtype))
    assert d.causes[:1] == (CATALOG_CAUSES[name],), d.lines
    assert not any(line.startswith("No known mistake") for line in d.lines), d.lines


def test_float32_rounding_at_float64_is_recognised() -> None:
    d = diagnosis_of(catalog_layer("xs_cast_float32"), STATEFUL.format(dt="f64"))
    assert d.causes == ("float32_precision",)
    assert "forward rounds to float32" in d.lines[0]


def test_a_stray_factor_is_reported_with_its_value() -> None:
    d = diagnosis_of(catalog_layer("dwh_off_by_0p1pct"), STATEFUL.format(dt="f32"))
    assert d.lines[0].startswith("dWh is 1.001 x the true value")


def test_a_batch_mean_is_named_as_such() -> None:
    d = diagnosis_of(catalog_layer("db_batch_mean"), STATEFUL.format(dt="f64"))
    assert "= 1/N: averaged over the batch (N=2) instead of summed" in d.lines[0]


def test_the_explanation_names_the_line_of_math() -> None:
    d = diagnosis_of(catalog_layer("grads_last_step_only"), STATEFUL.format(dt="f64"))
    assert d.lines[0].startswith("dWx, dWh and db match what you get if only step t=0's")
    assert "dWh = Σ_t h_{t-1}^T dt_t" in d.lines[0]


# --------------------------------------------------------------------------------------
# Signatures the catalog does not cover, made by a compact independent layer.


class Plain:
    """A vectorised TimeRNN (tests only), right unless the class attribute MISTAKE says
    otherwise; computes in the parameters' dtype."""

    MISTAKE = ""

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.stateful = stateful
        self.h: Array = None
        self.dh: Array = None

    def set_state(self, h: Array) -> None:
        self.h = h.copy()

    def reset_state(self) -> None:
        self.h = None

    def forward(self, xs: Array) -> Array:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        fresh = self.h is None or not self.stateful or self.MISTAKE == "stateful_ignored"
        h0 = np.zeros((N, Wh.shape[0]), Wh.dtype) if fresh else self.h
        hs = np.empty((N, T, Wh.shape[0]), Wh.dtype)
        h = h0
        for t in range(T):
            h = np.tanh((h0 if self.MISTAKE == "no_recurrence" else h) @ Wh + xs[:, t] @ Wx + b)
            if self.MISTAKE == "late_offset" and t >= 2:
                h = h + 1e-3
            if self.MISTAKE != "hs_unfilled" or t % 2 == 0:
                hs[:, t] = h
            else:
                hs[:, t] = 7.0  # what an np.empty buffer may hold where nothing was written
        self.cache = (xs.copy(), h0.copy(), hs.copy())
        self.h = h.copy()
        return hs[:, ::-1].copy() if self.MISTAKE == "hs_reversed" else hs

    def backward(self, dhs: Array) -> Array:
        Wx, Wh, _ = self.params
        xs, h0, hs = self.cache
        m, T = self.MISTAKE, xs.shape[1]
        hprev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)
        deriv = np.ones_like(hs) if m == "tanh_grad_missing" else 1 - hs**2
        dt = np.empty_like(hs)
        dh = np.zeros_like(h0)
        for t in reversed(range(T)):
            carry = 0.5 * dh if m == "half_carry" else dh
            if m == "carry_after_tanh":
                dt[:, t] = dhs[:, t] * deriv[:, t] + carry
            else:
                dt[:, t] = (dhs[:, t] + carry) * deriv[:, t]
            dh = dt[:, t] @ Wh.T
            if t == T - 1:
                dh_last = dh
        steps = slice(T - 1, T) if m == "last_step_only" else slice(0, T)
        dWx = np.einsum("ntd,nth->dh", xs[:, steps], dt[:, steps])
        dWh = np.einsum("ntk,nth->kh", hprev[:, steps], dt[:, steps])
        db = dt[:, steps].sum(axis=(0, 1))
        if m == "dWh_transposed":
            dWh = dWh.T
        if m == "dWx_sign":
            dWx = -dWx
        if m == "db_one_sample":
            db = dt[0].sum(axis=0)
        if m == "db_axis":
            db = dt.sum(axis=(1, 2))
        if m == "second_call_off" and getattr(self, "called", False):
            db = 1.5 * db
        if m == "weight_decay":
            dWh = dWh + 0.01 * Wh
        if m == "never_accumulated":
            dWx = np.zeros_like(dWx)
        self.called = True
        for g, new in zip(self.grads, (dWx, dWh, db)):
            g[...] = new
        self.dh = {"dh_zero": np.zeros_like(dh), "dh_last": dh_last}.get(m, dh)
        dxs = dt @ (Wx if m == "dx_Wx" else Wx.T)
        return dxs[:, ::-1].copy() if m == "dxs_reversed" else dxs


def plain(mistake: str) -> type[Plain]:
    return type(f"Plain_{mistake}", (Plain,), {"MISTAKE": mistake})


PLAIN_CAUSES = [
    ("carry_after_tanh", STATEFUL, "carry_after_tanh"),
    ("tanh_grad_missing", STATEFUL, "tanh_grad_missing"),
    ("last_step_only", STATEFUL, "grads_last_step_only"),
    ("stateful_ignored", STATEFUL, "stateful_ignored"),
    ("no_recurrence", STATEFUL, "forward_no_recurrence"),
    ("dh_last", STATEFUL, "dh_from_last_step"),
    ("db_one_sample", STATEFUL, "db_first_sample_only"),
    ("db_axis", "{dt}:N3:D2:H3:moderate:stateless:4z,3z2:7", "db_wrong_axis"),
    ("dx_Wx", "{dt}:N2:D3:H3:moderate:stateless:4z:7", "dx_Wx_not_T"),
    ("dh_zero", STATEFUL, "zero"),
    ("never_accumulated", STATEFUL, "zero"),
    ("weight_decay", STATEFUL, "extra_term"),
    ("hs_unfilled", "{dt}:N2:D3:H4:moderate:stateless:4z:7", "hs_unfilled"),
    ("dWh_transposed", STATEFUL, "transposed"),
    ("dWx_sign", STATEFUL, "scaled"),
    ("dxs_reversed", STATEFUL, "time_reversed"),
    ("hs_reversed", STATEFUL, "time_reversed"),
]


@pytest.mark.parametrize("dtype", ["f64", "f32"])
@pytest.mark.parametrize(
    ("mistake", "template", "cause"), PLAIN_CAUSES, ids=[m[0] for m in PLAIN_CAUSES]
)
def test_other_mistakes_are_recognised(mistake: str, template: str, cause: str, dtype: str) -> None:
    d = diagnosis_of(plain(mistake), template.format(dt=dtype))
    assert cause in d.causes, d.lines


def test_a_sign_flip_is_named() -> None:
    d = diagnosis_of(plain("dWx_sign"), STATEFUL.format(dt="f64"))
    assert d.lines == ("dWx is -1 x the true value (the sign is flipped): the shape of the math is "
                       "right but a constant factor is not (dWx = Σ_t x_t^T dt_t).",)  # fmt: skip


def test_the_test_layer_is_right_without_a_mistake() -> None:
    for template in (STATEFUL, STATELESS):
        for dt in ("f32", "f64"):
            assert verify(
                Plain, cases=[parse_case(template.format(dt=dt))], backends=["numeric"]
            ).ok


# --------------------------------------------------------------------------------------
# No known signature: say what is right and wrong, and where it starts.


def test_unknown_backward_mistake_is_localised_to_the_carry() -> None:
    d = diagnosis_of(plain("half_carry"), "f64:N2:D3:H4:moderate:stateless:6z:3")
    assert d.causes == ()
    assert d.lines[0] == (
        "No known mistake matches dxs, dWx, dWh, db and dh. "
        "Right: hs, h; wrong: dxs, dWx, dWh, db, dh."
    )
    assert d.lines[1] == (
        "dxs is right at the last step t=5 and wrong from t=4 back to t=0 "
        "(segment 0): the error enters with the gradient carried back from later steps, "
        "dh_next = dt_{t+1} Wh^T, and spreads backward."
    )


def test_unknown_forward_mistake_is_localised_in_time() -> None:
    d = diagnosis_of(plain("late_offset"), "f64:N2:D3:H4:moderate:stateless:6z:3")
    assert d.causes == ()
    assert any(
        line.startswith("hs is right for t < 2 and wrong from t=2 of segment 0") for line in d.lines
    )
    assert any("fix the forward first" in line for line in d.lines)


def test_a_second_backward_call_going_wrong_is_pointed_out() -> None:
    d = diagnosis_of(plain("second_call_off"), "f64:N2:D3:H4:moderate:stateless:4z2:3")
    assert d.causes == ()
    assert any(
        line.startswith("db: the first backward call of segment 0 is right, the second one")
        for line in d.lines
    ), d.lines


def test_a_later_segment_going_wrong_is_pointed_out() -> None:
    d = diagnosis_of(plain("second_call_off"), "f64:N2:D3:H4:moderate:stateless:4z,4z:3")
    assert any(
        line.startswith("db is right in segment 0 and first wrong in segment 1") for line in d.lines
    )


# --------------------------------------------------------------------------------------


def test_the_right_layer_gets_no_diagnosis() -> None:
    for template in (STATEFUL, STATELESS):
        case = parse_case(template.format(dt="f32"))
        report = verify(Plain, cases=[case], backends=["numeric"])
        assert report.ok and report.diagnosis == [] and report.smallest_case is None
        ref = reference(load_backend("numeric")[0], [case])[0]
        assert ref is not None
        assert diagnose(case, drive(Plain, case).segments, ref, []) == Diagnosis()


def test_protocol_problems_alone_get_no_diagnosis() -> None:
    layer = importlib.import_module("tests.catalog.wrong_params_copied").TimeRNN
    assert diagnosis_of(layer, STATEFUL.format(dt="f64")) == Diagnosis()


def test_the_variants_model_without_a_mistake_is_the_reference() -> None:
    for template in (STATEFUL, STATELESS):
        case = parse_case(template.format(dt="f64"))
        ref = reference(load_backend("numeric")[0], [case])[0]
        assert ref is not None
        for mine, theirs in zip(simulate(case, case.data()), ref, strict=True):
            np.testing.assert_allclose(mine.hs, theirs.hs, atol=1e-12)
            for g, r in zip(mine.backward, theirs.backward, strict=True):
                for q in ("dxs", "dWx", "dWh", "db", "dh"):
                    np.testing.assert_allclose(getattr(g, q), getattr(r, q), atol=1e-7)


def test_every_mistake_changes_something_on_a_rich_case() -> None:
    """A variant equal to the right layer could never explain anything: catch typos in names."""
    for m in MISTAKES:
        if m.name == "stateless_carries":
            case = parse_case("f64:N3:D3:H3:moderate:stateless:4z,3z2:7")
        elif m.name in ("dx_Wx_not_T", "db_wrong_axis"):
            case = parse_case("f64:N3:D3:H3:moderate:stateful:5s,5c2,4r*,3c:11")
        else:
            case = parse_case(STATEFUL.format(dt="f64"))
        right, wrong = simulate(case, case.data()), simulate(case, case.data(), m.name)
        assert any(
            not np.allclose(r.get(q, 0), w.get(q, 0))
            for r, w in zip(right, wrong, strict=True)
            for q in ("hs", "dxs", "dWx", "dWh", "db", "dh")
        ) or any(
            not np.allclose(r.backward[-1].dWx, w.backward[-1].dWx)
            for r, w in zip(right, wrong, strict=True)
        ), m.name


def test_gradients_never_accumulated_weight_decay_and_an_unfilled_buffer_are_named() -> None:
    d = diagnosis_of(plain("never_accumulated"), STATEFUL.format(dt="f64"))
    assert "computed but never accumulated into grads[0]" in d.lines[0]
    d = diagnosis_of(plain("weight_decay"), STATEFUL.format(dt="f64"))
    assert d.lines[0].startswith("dWh is the true value plus 0.01 x Wh: an extra term")
    d = diagnosis_of(plain("hs_unfilled"), "f64:N2:D3:H4:moderate:stateless:4z:7")
    assert d.lines[0].startswith("hs holds values the layer cannot produce")
