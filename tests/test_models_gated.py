"""The LSTM and GRU models (crosscheck.models.lstm, .gru) and the catalog of gated layers.

The models without a mistake are checked against gradients found independently:
central finite differences through a forward written here anew, and jax.grad. Every
known mistake must change something on a rich case; every wrong layer of
tests/catalog_gated must give its mistake's values (what a diagnosis relies on) and
be wrong in exactly its flags; every right layer must give the model's values.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from crosscheck import compare
from crosscheck.cases import Case, CaseData, parse_case
from crosscheck.mistakes import MISTAKES as RNN_MISTAKES
from crosscheck.models import gru, lstm
from crosscheck.quantities import Grads, Position, SegmentValues, positions, quantities_for

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.catalog_gated.*`
    sys.path.insert(0, str(ROOT))

from tests.catalog_gated import CATALOG, FAMILIES, Entry  # noqa: E402

Array = Any
MODELS: dict[str, ModuleType] = {"lstm": lstm, "gru": gru}
KINDS = tuple(MODELS)
# Every start (s, c, r) and a second backward call; a stateless chain. Small enough for
# finite differences.
STATEFUL = "{kind}:f64:N2:D3:H4:moderate:stateful:5s,5c2,4r,3c:11"
STATELESS = "{kind}:f64:N3:D2:H3:moderate:stateless:4z,4z2:7"
RICH = (STATEFUL, STATELESS)
SHARED = {"grads_step0_only", "grads_accumulate", "set_state_ignored", "reset_ignored",
          "stateful_ignored", "stateless_carries"}  # fmt: skip

WRONG = [e for e in CATALOG if not e.correct and not e.note]
RIGHT = [e for e in CATALOG if e.correct]
NOTED = [e for e in CATALOG if e.note]


def _ids(entry: Entry) -> str:
    return entry.name


def case_of(template: str, kind: str, dtype: str = "f64") -> Case:
    return parse_case(template.format(kind=kind).replace(":f64:", f":{dtype}:"))


def error(values: list[SegmentValues], reference: list[SegmentValues], p: Position) -> float:
    """compare.relative_error of `values` against `reference` at p (both must have it)."""
    k, j, q = p
    return compare.relative_error(q, values[k].get(q, j or 0), reference[k].get(q, j or 0)).error


def shared_positions(a: list[SegmentValues], b: list[SegmentValues]) -> list[Position]:
    """The positions both have (a layer without layer.dc has no dc positions)."""
    theirs = set(positions(b))
    return [p for p in positions(a) if p in theirs]


def drive_layer(cls: Any, case: Case, data: CaseData) -> list[SegmentValues]:
    """Run a catalog layer through `case` as a training loop would, copying what it gives."""
    layer = cls(*(a.copy() for a in (data.Wx, data.Wh, data.b)), stateful=case.stateful)
    out = []
    for seg, sd in zip(case.segments, data.segments, strict=True):
        if seg.start == "s":
            assert sd.h_set is not None
            if case.has_cell:
                assert sd.c_set is not None
                layer.set_state(sd.h_set.copy(), sd.c_set.copy())
            else:
                layer.set_state(sd.h_set.copy())
        elif seg.start == "r":
            layer.reset_state()
        hs = np.array(layer.forward(sd.xs.copy()))
        h = np.array(layer.h)
        c = np.array(layer.c) if case.has_cell else None
        calls = []
        for dhs in sd.dhs:
            dxs = np.array(layer.backward(dhs.copy()))
            dWx, dWh, db = (np.array(g) for g in layer.grads)
            dc = getattr(layer, "dc", None)
            dc = None if dc is None else np.array(dc)
            calls.append(Grads(dxs, dWx, dWh, db, np.array(layer.dh), dc))
        out.append(SegmentValues(hs, h, tuple(calls), c))
    return out


# --------------------------------------------------------------------------------------
# The models without a mistake, against gradients found without them.


def _sigmoid(a: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-a))


def forward_here(kind: str, W: dict[str, Array], xs: Array) -> tuple[Array, Array, Array]:
    """hs, the final h and the final c (zeros for the GRU) from W's h0 (and c0), the
    formulas alone, float64."""
    Wx, Wh, b, h = W["Wx"], W["Wh"], W["b"], W["h0"]
    H = Wh.shape[0]
    c = W.get("c0", np.zeros_like(h))
    hs = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        if kind == "lstm":
            A = x @ Wx + h @ Wh + b
            f, g = _sigmoid(A[:, :H]), np.tanh(A[:, H : 2 * H])
            i, o = _sigmoid(A[:, 2 * H : 3 * H]), _sigmoid(A[:, 3 * H :])
            c = f * c + g * i
            h = o * np.tanh(c)
        else:
            z = _sigmoid(x @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])
            r = _sigmoid(x @ Wx[:, H : 2 * H] + h @ Wh[:, H : 2 * H] + b[H : 2 * H])
            h_hat = np.tanh(x @ Wx[:, 2 * H :] + (r * h) @ Wh[:, 2 * H :] + b[2 * H :])
            h = (1 - z) * h + z * h_hat
        hs.append(h)
    return np.stack(hs, axis=1), h, c


def segment_inputs(case: Case, data: CaseData) -> list[dict[str, Array]]:
    """Each segment's weights and initial state, walking the chain with forward_here."""
    out: list[dict[str, Array]] = []
    h = c = None
    for seg, sd in zip(case.segments, data.segments, strict=True):
        zeros = np.zeros((sd.xs.shape[0], case.H))
        W = {"Wx": data.Wx.copy(), "Wh": data.Wh.copy(), "b": data.b.copy()}
        if case.stateful and seg.start == "c":
            W["h0"], c0 = h, c
        elif case.stateful and seg.start == "s":
            W["h0"], c0 = sd.h_set.copy(), sd.c_set  # type: ignore[union-attr]
        else:
            W["h0"], c0 = zeros, zeros
        if case.has_cell:
            W["c0"] = np.array(c0)
        out.append(W)
        _, h, c = forward_here(case.kind, W, sd.xs)
    return out


STENCIL = ((-2.0, 1.0), (-1.0, -8.0), (1.0, 8.0), (2.0, -1.0))  # f' ~ Σ w f(kε) / 12ε
EPS = 1e-4


def finite_differences(kind: str, W: dict[str, Array], xs: Array) -> dict[str, Array]:
    """d hs / d θ for every entry of every input: {name: (*θ.shape, N, T, H)}."""
    inputs = dict(W, xs=xs.copy())
    out = {}
    for name, arr in inputs.items():
        jac = []
        for idx in np.ndindex(arr.shape):
            d: Array = 0.0
            orig = arr[idx]
            for k, w in STENCIL:
                arr[idx] = orig + k * EPS
                params = {n: a for n, a in inputs.items() if n != "xs"}
                d = d + w * forward_here(kind, params, inputs["xs"])[0]
            arr[idx] = orig
            jac.append(d / (12 * EPS))
        out[name] = np.stack(jac).reshape(*arr.shape, *jac[0].shape)
    return out


def _fd_grads(jac: dict[str, Array], dhs: Array) -> dict[str, Array]:
    """The gradients of L = sum(hs * dhs) from the Jacobians of hs."""
    return {
        name: np.tensordot(j, dhs, axes=3)
        for name, j in jac.items()  # the last three axes are hs's (N, T, H)
    }


GRAD_OF = {"xs": "dxs", "Wx": "dWx", "Wh": "dWh", "b": "db", "h0": "dh", "c0": "dc"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("template", RICH, ids=["stateful", "stateless"])
def test_the_model_is_the_finite_differences_of_a_forward_written_anew(
    kind: str, template: str
) -> None:
    case = case_of(template, kind)
    data = case.data()
    sim = MODELS[kind].simulate(case, data)
    for k, (W, sd) in enumerate(zip(segment_inputs(case, data), data.segments, strict=True)):
        hs, h, c = forward_here(kind, W, sd.xs)
        np.testing.assert_allclose(sim[k].hs, hs, rtol=0, atol=1e-13)
        np.testing.assert_allclose(sim[k].h, h, rtol=0, atol=1e-13)
        if case.has_cell:
            np.testing.assert_allclose(sim[k].c, c, rtol=0, atol=1e-13)
        else:
            assert sim[k].c is None
        jac = finite_differences(kind, W, sd.xs)
        for g, dhs in zip(sim[k].backward, sd.dhs, strict=True):
            for name, fd in _fd_grads(jac, dhs).items():
                q = GRAD_OF[name]
                err = compare.relative_error(q, getattr(g, q), fd).error
                assert err < 1e-8, (k, q, err)
            assert (g.dc is None) == (not case.has_cell)


def _jax_hs(kind: str, jnp: Any, lax: Any, W: dict[str, Any], xs: Any) -> Any:
    H = W["Wh"].shape[0]

    def sig(a: Any) -> Any:
        return 1 / (1 + jnp.exp(-a))

    def step(carry: Any, x: Any) -> Any:
        h, c = carry
        if kind == "lstm":
            A = x @ W["Wx"] + h @ W["Wh"] + W["b"]
            c = sig(A[:, :H]) * c + jnp.tanh(A[:, H : 2 * H]) * sig(A[:, 2 * H : 3 * H])
            h = sig(A[:, 3 * H :]) * jnp.tanh(c)
        else:
            Wx, Wh, b = W["Wx"], W["Wh"], W["b"]
            z = sig(x @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])
            r = sig(x @ Wx[:, H : 2 * H] + h @ Wh[:, H : 2 * H] + b[H : 2 * H])
            h_hat = jnp.tanh(x @ Wx[:, 2 * H :] + (r * h) @ Wh[:, 2 * H :] + b[2 * H :])
            h = (1 - z) * h + z * h_hat
        return (h, c), h

    c0 = W.get("c0", jnp.zeros_like(W["h0"]))
    _, hs = lax.scan(step, (W["h0"], c0), jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1)


@pytest.mark.jax
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "template",
    [*RICH, "{kind}:f64:N2:D3:H4:saturating:stateful:6s,5c2,4r:3",
     "{kind}:f64:N2:D4:H4:exploding:stateful:8z,9c:5"],
    ids=["stateful", "stateless", "saturating", "exploding"],
)  # fmt: skip
def test_the_model_is_jax_grad(kind: str, template: str) -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)  # as crosscheck's jax oracle does
    jnp = jax.numpy
    case = case_of(template, kind)
    data = case.data()
    sim = MODELS[kind].simulate(case, data)
    for k, (W, sd) in enumerate(zip(segment_inputs(case, data), data.segments, strict=True)):
        Wj = {n: jnp.asarray(a, dtype=jnp.float64) for n, a in W.items()}
        xs = jnp.asarray(sd.xs, dtype=jnp.float64)
        hs = _jax_hs(kind, jnp, jax.lax, Wj, xs)
        assert compare.relative_error("hs", sim[k].hs, np.asarray(hs)).error < 1e-12
        for g, dhs in zip(sim[k].backward, sd.dhs, strict=True):

            def loss(Wj: Any, xs: Any, dhs: Any = dhs) -> Any:
                return jnp.sum(_jax_hs(kind, jnp, jax.lax, Wj, xs) * dhs)

            gW, gx = jax.grad(loss, argnums=(0, 1))(Wj, xs)
            ref = {GRAD_OF[n]: np.asarray(a) for n, a in gW.items()}
            ref["dxs"] = np.asarray(gx)
            for q, r in ref.items():
                err = compare.relative_error(q, getattr(g, q), r).error
                assert err < 1e-12, (k, q, err)


@pytest.mark.parametrize("kind", KINDS)
def test_the_float32_twin_computes_in_float32(kind: str) -> None:
    case = case_of(STATEFUL, kind, "f32")
    data = case.data()
    twin = MODELS[kind].simulate(case, data, "", "float32")
    ref = MODELS[kind].simulate(case, data)
    errors = []
    for p in positions(ref):
        k, j, q = p
        assert twin[k].get(q, j or 0).dtype == np.float32, p
        assert ref[k].get(q, j or 0).dtype == np.float64, p
        errors.append(error(twin, ref, p))
    assert 1e-9 < max(errors) < 1e-5


# --------------------------------------------------------------------------------------
# The mistakes.


@pytest.mark.parametrize("kind", KINDS)
def test_the_mistakes_and_the_math_are_listed_once(kind: str) -> None:
    model = MODELS[kind]
    names = [m.name for m in model.MISTAKES]
    assert len(set(names)) == len(names)
    assert set(names) >= SHARED
    assert all(n.startswith(f"{kind}_") for n in set(names) - SHARED), names
    rnn = {m.name: m for m in RNN_MISTAKES}
    for m in model.MISTAKES:
        assert m.wrong and m.right and m.wrong[0].islower(), m.name
        if m.name in SHARED:
            assert m.applies is rnn[m.name].applies, m.name  # the same semantics
    assert tuple(model.MATH) == quantities_for(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_mistake_changes_something_on_a_rich_case(kind: str) -> None:
    """A variant equal to the right layer could never explain anything: catch typos."""
    model = MODELS[kind]
    for m in model.MISTAKES:
        case = case_of(STATELESS if m.name == "stateless_carries" else STATEFUL, kind)
        assert m.applies(case), m.name
        data = case.data()
        right, wrong = model.simulate(case, data), model.simulate(case, data, m.name)
        assert positions(right) == positions(wrong), m.name
        assert max(error(wrong, right, p) for p in positions(right)) > 1e-3, m.name


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_mistake_is_no_mistake(kind: str) -> None:
    case = case_of(STATEFUL, kind)
    data = case.data()
    right = MODELS[kind].simulate(case, data)
    other = MODELS[kind].simulate(case, data, "no_such_mistake")
    assert all(error(other, right, p) == 0 for p in positions(right))


# --------------------------------------------------------------------------------------
# The catalog.


@pytest.mark.parametrize("entry", WRONG, ids=_ids)
def test_wrong_layer_is_its_mistake_and_wrong_in_its_flags(entry: Entry) -> None:
    model = MODELS[entry.kind]
    flagged = set()
    for template in RICH:
        case = case_of(template, entry.kind)
        data = case.data()
        observed = drive_layer(entry.layer(), case, data)
        variant = model.simulate(case, data, entry.cause)
        right = model.simulate(case, data)
        for p in shared_positions(observed, variant):
            assert error(observed, variant, p) < 1e-10, (case.id, p)
            if error(observed, right, p) > 1e-7:
                flagged.add(p[2])
    assert flagged == entry.flags


@pytest.mark.parametrize("entry", RIGHT, ids=_ids)
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_right_layer_is_the_model(entry: Entry, dtype: str) -> None:
    """float64: the model's values; float32: within the tolerance a verification allows
    (crosscheck.compare.threshold with the float32 twin's error)."""
    model = MODELS[entry.kind]
    for template in RICH:
        case = case_of(template, entry.kind, dtype)
        data = case.data()
        observed = drive_layer(entry.layer(), case, data)
        right = model.simulate(case, data)
        twin = model.simulate(case, data, "", "float32")
        for p in shared_positions(observed, right):
            k, j, q = p
            assert observed[k].get(q, j or 0).dtype == case.dtype, p
            if dtype == "f64":
                assert error(observed, right, p) < 1e-12, (case.id, p)
            else:
                limit = compare.threshold(
                    "float32", case.chain_steps(k), 0.0, error(twin, right, p)
                )
                assert error(observed, right, p) < limit, (case.id, p)


@pytest.mark.parametrize("entry", NOTED, ids=_ids)
def test_the_books_layer_is_the_model_rounded_to_float32(entry: Entry) -> None:
    model = MODELS[entry.kind]
    for template in RICH:
        case = case_of(template, entry.kind)
        data = case.data()
        observed = drive_layer(entry.layer(), case, data)
        right = model.simulate(case, data)
        assert observed[0].hs.dtype == observed[0].backward[0].dxs.dtype == np.float32
        for p in shared_positions(observed, right):
            assert error(observed, right, p) < 1e-5, (case.id, p)


def test_the_catalog_covers_every_mistake_and_kind() -> None:
    for kind in KINDS:
        own = {m.name for m in MODELS[kind].MISTAKES} - SHARED
        assert {e.cause for e in WRONG if e.kind == kind} == own
        assert len([e for e in RIGHT if e.kind == kind]) >= 4  # the book's, dtype fixed, + 3
    assert {e.family for e in CATALOG} == set(FAMILIES)
    assert len({e.name for e in CATALOG}) == len(CATALOG)
    assert len({e.module for e in CATALOG}) == len(CATALOG)
    for e in CATALOG:
        assert e.correct == (e.family == "correct"), e.name
        assert bool(e.note) == (e.family == "notes"), e.name
        assert e.correct or bool(e.note) or (e.flags and e.kinds and e.cause), e.name
        assert e.cls == {"lstm": "TimeLSTM", "gru": "TimeGRU"}[e.kind]
        assert e.flags <= set(quantities_for(e.kind)), e.name


def test_some_right_lstm_exposes_dc() -> None:
    case = case_of(STATEFUL, "lstm")
    exposes = [
        e.name
        for e in RIGHT
        if e.kind == "lstm"
        and drive_layer(e.layer(), case, case.data())[0].backward[0].dc is not None
    ]
    assert exposes, "no right LSTM exposes layer.dc: dc would never be compared"


def _code(module: str) -> tuple[str, list[str]]:
    """A catalog module's docstring and its lines of code after it."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text(encoding="utf-8")
    doc, code = source.split('"""', 2)[1:]
    return doc, code.splitlines()


@pytest.mark.parametrize("entry", CATALOG, ids=_ids)
def test_catalog_module_is_course_material(entry: Entry) -> None:
    """A module docstring; a wrong layer is its base with one line changed, marked."""
    module = importlib.import_module(entry.module)
    assert module.__doc__ and len(module.__doc__.strip().splitlines()) >= 3, entry.name
    doc, code = _code(entry.module)
    marks = [line for line in code if "  # MISTAKE: " in line]
    wrong_module = entry.module.rsplit(".", 1)[1].startswith("wrong_")
    assert len(marks) == (1 if wrong_module else 0), entry.name
    if wrong_module:
        bases = set(re.findall(r"`(correct_\w+)\.py`", doc))
        assert len(bases) == 1, bases  # the docstring names what it was made from
        _, base = _code(f"tests.catalog_gated.{bases.pop()}")
        changed = [(a, b) for a, b in zip(base, code, strict=True) if a != b]
        assert len(changed) == 1 and changed[0][1] == marks[0], changed
