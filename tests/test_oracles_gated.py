"""The oracles of the gated kinds (the book's LSTM and GRU): which oracle takes which
kind, that all of a kind agree, hand-worked examples, the torch.nn.LSTM weight mapping
and the JAX oracle's padding.

The book's cells, with a = x Wx + h Wh + b cut into blocks of H columns:
    LSTM  blocks f, g, i, o: c' = σ(f) c + tanh(g) σ(i), h' = σ(o) tanh(c')
    GRU   blocks z, r, h~: z = σ(x Wx_z + h Wh_z + b_z), r likewise,
          h~ = tanh(x Wx_h + (r h) Wh_h + b_h), h' = (1 - z) h + z h~
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from crosscheck import compare
from crosscheck.cases import GATES, KINDS, Case, generate_cases, parse_case
from crosscheck.oracles import BackendUnavailable, Oracle, SegmentJob, load_backend, reference
from crosscheck.quantities import SegmentValues, positions, quantities_for, value_at

Array = np.ndarray[Any, Any]

BACKEND_OF = {
    "jax": "jax",
    "torch": "torch",
    "torch.nn.RNN": "torch",
    "torch.nn.LSTM": "torch",
    "numeric": "numeric",
}
# The oracles of each kind: torch.nn.GRU is not the book's GRU (see torch_oracles).
ORACLES_OF = {
    "rnn": ("jax", "torch", "torch.nn.RNN", "numeric"),
    "lstm": ("jax", "torch", "torch.nn.LSTM", "numeric"),
    "gru": ("jax", "torch", "numeric"),
}
MARKS = {"jax": pytest.mark.jax, "numeric": ()}
GATED = ("lstm", "gru")


def _marks(name: str) -> Any:
    return MARKS.get(name, pytest.mark.torch)


@functools.cache
def _backend(name: str) -> tuple[Oracle, ...]:
    return tuple(load_backend(name))  # one instance per backend: JAX compiles stay cached


def oracle(name: str) -> Oracle:
    try:
        oracles = _backend(BACKEND_OF[name])
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return next(o for o in oracles if o.name == name)


def sigmoid(a: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-a))  # type: ignore[no-any-return]


def case_of(kind: str, rest: str) -> Case:
    return parse_case(rest if kind == "rnn" else f"{kind}:{rest}")


# --- which oracle takes which kind ------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in BACKEND_OF])
def test_each_oracle_supports_exactly_its_kinds(name: str) -> None:
    o = oracle(name)
    expected = {k for k, names in ORACLES_OF.items() if name in names}
    assert set(o.kinds) == expected  # type: ignore[attr-defined]
    for kind in KINDS:
        small = case_of(kind, "f64:N1:D2:H2:small:stateful:3z,2c:1")
        assert o.supports(small) == (kind in expected), (name, kind)


@pytest.mark.torch
def test_torch_module_oracles_refuse_jobs_of_another_kind() -> None:
    rnn, lstm = oracle("torch.nn.RNN"), oracle("torch.nn.LSTM")
    assert not rnn.supports(case_of("lstm", "f64:N1:D1:H1:small:stateless:1z:0"))
    assert not rnn.supports(case_of("gru", "f64:N1:D1:H1:small:stateless:1z:0"))
    assert not lstm.supports(case_of("rnn", "f64:N1:D1:H1:small:stateless:1z:0"))
    assert not lstm.supports(case_of("gru", "f64:N1:D1:H1:small:stateless:1z:0"))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no layer kind 'lstm'"):
        rnn.run([job(rng, "lstm", 1, 2, 1, 2)])
    with pytest.raises(ValueError, match="no layer kind 'gru'"):
        lstm.run([job(rng, "gru", 1, 2, 1, 2)])


def test_numeric_supports_small_gated_cases_only() -> None:
    numeric = oracle("numeric")
    for kind in GATED:
        assert numeric.supports(case_of(kind, "f64:N1:D1:H1:small:stateless:64z,64z:0"))
        assert not numeric.supports(case_of(kind, "f64:N6:D10:H10:small:stateless:64z:0"))


# --- all oracles of a kind agree ----------------------------------------------------

CHAINS = (
    "f64:N2:D3:H4:moderate:stateful:5s,5c2,4r,3c:11",
    "f32:N3:D2:H5:saturating:stateful:4z2,3c,2s2*,6c:12",
    "f64:N1:D3:H2:exploding:stateful:8s,8c,8r2,8c2:13",
    "f32:N2:D1:H3:small:stateless:3z,3z2n1,2zn4:14",
)


def _agree(kind: str, cases: Sequence[Case]) -> None:
    names = ORACLES_OF[kind]
    refs = {n: reference(oracle(n), cases) for n in names}
    assert sum(r is not None for r in refs["numeric"]) >= len(cases) // 2  # numeric in pairs
    quantities = set(quantities_for(kind))
    for a, b in itertools.combinations(names, 2):
        # "Far inside": a quarter of the looser accuracy, in compare's error scale.
        limit = max(oracle(a).accuracy, oracle(b).accuracy) / 4
        for case, ref_a, ref_b in zip(cases, refs[a], refs[b]):
            if ref_a is None or ref_b is None:
                continue
            assert len(ref_a) == len(ref_b) == len(case.segments)
            where = positions(ref_a)
            assert where == positions(ref_b), f"{a} vs {b}: {case}"
            assert {p[2] for p in where} == quantities  # c and dc exactly for the LSTM
            for p in where:
                err = compare.relative_error(p[2], value_at(ref_a, p), value_at(ref_b, p)).error
                assert err <= limit, f"{a} vs {b}: {p} of {case}: {err:.2e}"


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("kind", GATED)
def test_all_oracles_of_a_kind_agree_far_inside_their_accuracy(kind: str) -> None:
    cases = generate_cases(24, seed=77, kind=kind) + [case_of(kind, c) for c in CHAINS]
    _agree(kind, cases)


@pytest.mark.parametrize("kind", GATED)
def test_c_and_dc_for_the_lstm_only(kind: str) -> None:
    refs = reference(oracle("numeric"), [case_of(kind, c) for c in CHAINS])
    for ref in refs:
        assert ref is not None
        for seg in ref:
            assert (seg.c is not None) == (kind == "lstm")
            assert all((g.dc is not None) == (kind == "lstm") for g in seg.backward)


class Recorder:
    """Passes jobs to the numeric oracle and keeps them."""

    name = "recorder"
    accuracy = 0.0

    def __init__(self) -> None:
        self.inner = oracle("numeric")
        self.jobs: list[SegmentJob] = []

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        self.jobs.extend(jobs)
        return self.inner.run(jobs)


def test_the_reference_chain_carries_the_lstm_cell_state() -> None:
    case = case_of("lstm", "f32:N2:D3:H4:moderate:stateful:3s,2c2,4r,2s,3c:5")
    recorder = Recorder()
    (ref,) = reference(recorder, [case])
    assert ref is not None
    data = case.data()
    zeros = np.zeros((2, 4))
    c_set = [sd.c_set for sd in data.segments]
    expected_c0 = [c_set[0], ref[0].c, zeros, c_set[3], ref[3].c]
    for k, (j, c0) in enumerate(zip(recorder.jobs, expected_c0)):
        assert j.kind == "lstm" and j.c0 is not None and c0 is not None
        np.testing.assert_array_equal(j.c0, c0.astype(np.float64), err_msg=f"segment {k}")
    # A carried segment continues the cell: its first step starts from the last c.
    j = recorder.jobs[1]
    a = ref[0].h @ j.Wh + j.xs[:, 0] @ j.Wx + j.b
    f, g, i, o = (a[:, k * 4 : (k + 1) * 4] for k in range(4))
    c1 = sigmoid(f) * ref[0].c + np.tanh(g) * sigmoid(i)
    np.testing.assert_allclose(ref[1].hs[:, 0], sigmoid(o) * np.tanh(c1), rtol=1e-13)


# --- tiny examples worked out by hand ----------------------------------------------


def job(
    rng: np.random.Generator, kind: str, N: int, T: int, D: int, H: int, calls: int = 1
) -> SegmentJob:
    """Random float64 data of moderate size (gates neither linear nor saturated)."""
    GH = GATES[kind] * H
    return SegmentJob(
        Wx=rng.normal(0, 1 / math.sqrt(D), (D, GH)),
        Wh=rng.normal(0, 0.8 / math.sqrt(H), (H, GH)),
        b=rng.normal(0, 0.5, GH),
        h0=rng.uniform(-0.9, 0.9, (N, H)),
        xs=rng.normal(size=(N, T, D)),
        dhs=tuple(rng.normal(size=(N, T, H)) for _ in range(calls)),
        kind=kind,
        c0=rng.uniform(-2, 2, (N, H)) if kind == "lstm" else None,
    )


def lstm_by_hand(j: SegmentJob) -> tuple[Array, Array, list[dict[str, Array]]]:
    """One LSTM step, forward and backward, written out: h, c, and the grads per dhs."""
    assert j.c0 is not None
    H = j.H
    x, h0, c0 = j.xs[:, 0], j.h0, j.c0
    a = x @ j.Wx + h0 @ j.Wh + j.b
    f, g, i, o = (a[:, k * H : (k + 1) * H] for k in range(4))
    f, g, i, o = sigmoid(f), np.tanh(g), sigmoid(i), sigmoid(o)
    c = f * c0 + g * i
    h = o * np.tanh(c)
    grads = []
    for dhs in j.dhs:
        dh = dhs[:, 0]
        do = dh * np.tanh(c)
        dc = dh * o * (1 - np.tanh(c) ** 2)
        df, dg, di = dc * c0, dc * i, dc * g
        da = np.hstack([df * f * (1 - f), dg * (1 - g**2), di * i * (1 - i), do * o * (1 - o)])
        grads.append({
            "dxs": (da @ j.Wx.T)[:, None], "dWx": x.T @ da, "dWh": h0.T @ da,
            "db": da.sum(axis=0), "dh": da @ j.Wh.T, "dc": dc * f,
        })  # fmt: skip
    return h, c, grads


def gru_by_hand(j: SegmentJob) -> tuple[Array, None, list[dict[str, Array]]]:
    """One GRU step, forward and backward, written out: h and the grads per dhs."""
    H = j.H
    x, h0 = j.xs[:, 0], j.h0
    Wx_z, Wx_r, Wx_h = j.Wx[:, :H], j.Wx[:, H : 2 * H], j.Wx[:, 2 * H :]
    Wh_z, Wh_r, Wh_h = j.Wh[:, :H], j.Wh[:, H : 2 * H], j.Wh[:, 2 * H :]
    b_z, b_r, b_h = j.b[:H], j.b[H : 2 * H], j.b[2 * H :]
    z = sigmoid(x @ Wx_z + h0 @ Wh_z + b_z)
    r = sigmoid(x @ Wx_r + h0 @ Wh_r + b_r)
    h_new = np.tanh(x @ Wx_h + (r * h0) @ Wh_h + b_h)
    h = (1 - z) * h0 + z * h_new
    grads = []
    for dhs in j.dhs:
        dh = dhs[:, 0]
        da_h = dh * z * (1 - h_new**2)
        du = da_h @ Wh_h.T  # u = r h0
        da_z = dh * (h_new - h0) * z * (1 - z)
        da_r = du * h0 * r * (1 - r)
        da = np.concatenate([da_z, da_r, da_h], axis=1)
        dWh = np.concatenate([h0.T @ da_z, h0.T @ da_r, (r * h0).T @ da_h], axis=1)
        dh0 = dh * (1 - z) + du * r + da_z @ Wh_z.T + da_r @ Wh_r.T
        grads.append({
            "dxs": (da @ j.Wx.T)[:, None], "dWx": x.T @ da, "dWh": dWh,
            "db": da.sum(axis=0), "dh": dh0,
        })  # fmt: skip
    return h, None, grads


def first_h(j: SegmentJob) -> Array:
    """h after the first step of `j`, by hand."""
    if j.kind == "rnn":
        return np.tanh(j.h0 @ j.Wh + j.xs[:, 0] @ j.Wx + j.b)  # type: ignore[no-any-return]
    return (lstm_by_hand if j.kind == "lstm" else gru_by_hand)(j)[0]


GATED_ORACLES = [
    pytest.param(kind, name, marks=_marks(name)) for kind in GATED for name in ORACLES_OF[kind]
]


@pytest.mark.parametrize(("kind", "name"), GATED_ORACLES)
def test_matches_a_hand_worked_step(kind: str, name: str) -> None:
    j = job(np.random.default_rng(5), kind, N=2, T=1, D=3, H=2, calls=2)
    h, c, grads = (lstm_by_hand if kind == "lstm" else gru_by_hand)(j)
    (got,) = oracle(name).run([j])

    rtol = 10 * oracle(name).accuracy
    np.testing.assert_allclose(got.hs[:, 0], h, rtol=rtol, atol=0)
    np.testing.assert_allclose(got.h, h, rtol=rtol, atol=0)
    if c is None:
        assert got.c is None
    else:
        assert got.c is not None
        np.testing.assert_allclose(got.c, c, rtol=rtol, atol=0)
    assert len(got.backward) == 2
    for expected, g in zip(grads, got.backward):
        assert (g.dc is None) == (kind != "lstm")
        for q, value in expected.items():
            np.testing.assert_allclose(getattr(g, q), value, rtol=rtol, atol=1e-15, err_msg=q)


# --- shapes, order and fresh arrays of mixed kinds ------------------------------------


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=_marks(n)) for n in ("jax", "torch", "numeric")]
)
def test_mixed_kinds_come_back_fresh_and_in_job_order(name: str) -> None:
    rng = np.random.default_rng(8)
    shapes = [(2, 3, 4, 3, 2), (1, 1, 1, 1, 1), *[(3, 4, 2, 3, 1 + i % 2) for i in range(10)]]
    jobs = [job(rng, KINDS[i % 3], *s) for i, s in enumerate(shapes)]
    jobs = jobs[::2] + jobs[1::2]
    results = oracle(name).run(jobs)

    assert len(results) == len(jobs)
    seen: list[Array] = []
    for j, values in zip(jobs, results):
        N, T, D = j.xs.shape
        H, GH = j.H, GATES[j.kind] * j.H
        assert values.hs.shape == (N, T, H) and values.h.shape == (N, H)
        assert (values.c is None) == (j.kind != "lstm")
        assert len(values.backward) == len(j.dhs)
        for g in values.backward:
            assert (g.dxs.shape, g.dWx.shape, g.dWh.shape) == ((N, T, D), (D, GH), (H, GH))
            assert (g.db.shape, g.dh.shape) == ((GH,), (N, H))
            assert g.dc is None if j.kind != "lstm" else g.dc is not None and g.dc.shape == (N, H)
        np.testing.assert_array_equal(values.h, values.hs[:, -1])
        grads = [a for g in values.backward for a in vars(g).values()]
        for a in [values.hs, values.h, values.c, *grads]:
            if a is None:
                continue
            assert a.dtype == np.float64 and a.flags.c_contiguous
            assert not any(np.shares_memory(a, other) for other in seen)
            seen.append(a)
        # The first step identifies the job a result belongs to.
        np.testing.assert_allclose(values.hs[:, 0], first_h(j), rtol=1e-13, atol=1e-15)


# --- the torch.nn.LSTM weight mapping -----------------------------------------------


def strongly_gated_job() -> SegmentJob:
    """An LSTM job whose four gate blocks differ strongly: any mix-up of blocks shows."""
    rng = np.random.default_rng(9)
    j = job(rng, "lstm", N=3, T=6, D=2, H=3, calls=2)
    H = 3
    b = j.b.copy()
    b[:H] += 2.5  # f: remember
    b[H : 2 * H] *= 3.0  # g: a strong candidate
    b[2 * H : 3 * H] -= 1.5  # i: mostly closed
    b[3 * H :] += 0.5  # o
    Wx = j.Wx * np.repeat([0.3, 2.0, 1.0, 0.6], H)
    return SegmentJob(Wx, j.Wh, b, j.h0, j.xs, j.dhs, "lstm", j.c0)


def max_error(a: SegmentValues, b: SegmentValues) -> float:
    errs = [
        compare.relative_error(p[2], value_at([a], p), value_at([b], p)).error
        for p in positions([a])
    ]
    return max(errs)


@pytest.mark.torch
def test_torch_nn_lstm_maps_the_books_gate_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from crosscheck.oracles import torch_oracles

    j = strongly_gated_job()
    (loop,) = oracle("torch").run([j])
    (module,) = oracle("torch.nn.LSTM").run([j])
    assert positions([module]) == positions([loop])  # c and dc too
    assert max_error(module, loop) <= 1e-13
    # The test can tell: torch's gate order taken as the book's is far off.
    monkeypatch.setattr(torch_oracles, "TO_TORCH", (0, 1, 2, 3))
    monkeypatch.setattr(torch_oracles, "FROM_TORCH", (0, 1, 2, 3))
    (unmapped,) = oracle("torch.nn.LSTM").run([j])
    assert max_error(unmapped, loop) > 0.1


# --- the JAX oracle's padding ---------------------------------------------------------


@pytest.mark.jax
@pytest.mark.parametrize("kind", KINDS)
def test_jax_padding_is_exact(kind: str) -> None:
    import jax

    from crosscheck.oracles import jax_scan

    j = job(np.random.default_rng(11), kind, N=3, T=5, D=3, H=2, calls=2)
    (padded,) = oracle("jax").run([j])  # in the bucket (8, 16, 16, 16)
    assert jax_scan.bucket((3, 5, 3, 2)) == (8, 16, 16, 16)

    # The same segment at its own shape, no padding at all.
    segment = jax_scan._SEGMENTS[kind]
    states = (j.h0,) if j.c0 is None else (j.h0, j.c0)
    hs, vjp, aux = jax.vjp(segment, j.Wx, j.Wh, j.b, j.xs, *states, has_aux=True)
    for k, d in enumerate(j.dhs):
        dWx, dWh, db, dxs, dh, *dc = (np.asarray(a) for a in vjp(d))
        g = padded.backward[k]
        for q, want in (("dxs", dxs), ("dWx", dWx), ("dWh", dWh), ("db", db), ("dh", dh)):
            err = compare.relative_error(q, getattr(g, q), want).error
            assert err <= 1e-14, (q, err)
        if dc:
            assert g.dc is not None
            assert compare.relative_error("dc", g.dc, dc[0]).error <= 1e-14
    assert compare.relative_error("hs", padded.hs, np.asarray(hs)).error <= 1e-14
    if kind == "lstm":
        assert padded.c is not None
        np.testing.assert_allclose(padded.c, np.asarray(aux)[:, -1], rtol=1e-14, atol=1e-15)

    # Inside the bucket, the padded hidden units stay exactly 0 (and c with them).
    Np, Tp, Dp, Hp = 8, 16, 16, 16
    G = GATES[kind]
    args = [
        jax_scan._pad_gates(j.Wx, (Dp, G * Hp), G),
        jax_scan._pad_gates(j.Wh, (Hp, G * Hp), G),
        jax_scan._pad_gates(j.b, (G * Hp,), G),
        jax_scan._pad(j.xs, (Np, Tp, Dp)),
        *(jax_scan._pad(s, (Np, Hp)) for s in states),
    ]
    hs_p, aux_p = segment(*args)
    assert not np.asarray(hs_p)[:, :, 2:].any()
    if kind == "lstm":
        assert not np.asarray(aux_p)[:, :, 2:].any()


def test_a_job_has_a_cell_state_exactly_when_its_kind_does_and_oracles_refuse_other_kinds() -> None:
    one = (np.ones((1, 4)), np.ones((1, 4)), np.ones(4), np.zeros((1, 1)), np.ones((1, 1, 1)),
           (np.ones((1, 1, 1)),))  # fmt: skip
    with pytest.raises(ValueError, match="a lstm job needs c0"):
        SegmentJob(*one, "lstm")
    with pytest.raises(ValueError, match="a rnn job has no c0"):
        SegmentJob(np.ones((1, 1)), np.ones((1, 1)), np.ones(1), *one[3:], "rnn", np.zeros((1, 1)))
    lstm = SegmentJob(*one, "lstm", np.zeros((1, 1)))
    assert lstm.cell0 is lstm.c0
    for oracle in load_backend("numeric"):
        with pytest.raises(ValueError, match="has no layer kind 'transformer'"):
            oracle.run([SegmentJob(*one[:3], *one[3:], "transformer")])
