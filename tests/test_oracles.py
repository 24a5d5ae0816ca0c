"""crosscheck.oracles: the four oracles, the chain driver `reference`, and lazy imports."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crosscheck import compare
from crosscheck.cases import Case, Segment, generate_cases
from crosscheck.oracles import (
    BackendUnavailable,
    Oracle,
    SegmentJob,
    available_backends,
    load_backend,
    reference,
)
from crosscheck.quantities import SegmentValues, quantities_for

RNN_QUANTITIES = quantities_for("rnn")

REPO = Path(__file__).resolve().parents[1]
BACKEND_OF = {"jax": "jax", "torch": "torch", "torch.nn.RNN": "torch", "numeric": "numeric"}
ORACLES = [
    pytest.param("jax", marks=pytest.mark.jax),
    pytest.param("torch", marks=pytest.mark.torch),
    pytest.param("torch.nn.RNN", marks=pytest.mark.torch),
    pytest.param("numeric"),
]


@functools.cache
def _backend(name: str) -> tuple[Oracle, ...]:
    return tuple(load_backend(name))  # one instance per backend: JAX compiles stay cached


def oracle(name: str) -> Oracle:
    try:
        oracles = _backend(BACKEND_OF[name])
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return next(o for o in oracles if o.name == name)


def job(rng: np.random.Generator, N: int, T: int, D: int, H: int, calls: int = 1) -> SegmentJob:
    """Random float64 data of moderate size (tanh neither linear nor saturated)."""
    return SegmentJob(
        Wx=rng.normal(0, 1 / math.sqrt(D), (D, H)),
        Wh=rng.normal(0, 0.8 / math.sqrt(H), (H, H)),
        b=rng.normal(0, 0.2, H),
        h0=rng.uniform(-0.9, 0.9, (N, H)),
        xs=rng.normal(size=(N, T, D)),
        dhs=tuple(rng.normal(size=(N, T, H)) for _ in range(calls)),
    )


def arrays(values: SegmentValues) -> list[np.ndarray[Any, Any]]:
    """Every array of `values` (a quantity the kind does not have is None: left out)."""
    out = [values.hs, values.h, values.c, *(a for g in values.backward for a in vars(g).values())]
    return [a for a in out if a is not None]


# --- the oracles agree with each other -------------------------------------------


@pytest.mark.jax
@pytest.mark.torch
def test_all_oracles_agree_far_inside_their_accuracy() -> None:
    cases = generate_cases(40, seed=2024)
    names = ["jax", "torch", "torch.nn.RNN", "numeric"]
    refs = {n: reference(oracle(n), cases) for n in names}
    assert sum(r is not None for r in refs["numeric"]) >= 10  # the pairs include "numeric"
    for a, b in itertools.combinations(names, 2):
        # "Far inside": a quarter of the looser accuracy, in compare's error scale.
        limit = max(oracle(a).accuracy, oracle(b).accuracy) / 4
        for case, ref_a, ref_b in zip(cases, refs[a], refs[b]):
            if ref_a is None or ref_b is None:
                continue
            assert len(ref_a) == len(ref_b) == len(case.segments)
            for k, (va, vb) in enumerate(zip(ref_a, ref_b)):
                assert len(va.backward) == len(vb.backward) == case.segments[k].backwards
                for q, call in itertools.product(RNN_QUANTITIES, range(len(va.backward))):
                    err = compare.relative_error(q, va.get(q, call), vb.get(q, call)).error
                    assert err <= limit, f"{a} vs {b}: {q} (call {call}) of segment {k}, {case}"


# --- a tiny example worked out by hand -------------------------------------------


@pytest.mark.parametrize("name", ORACLES)
def test_matches_a_hand_worked_example(name: str) -> None:
    # N = T = D = H = 1: h1 = tanh(h0 wh + x1 wx + b), h2 = tanh(h1 wh + x2 wx + b),
    # L = g1 h1 + g2 h2. Backward: d2 = g2 (1 - h2^2), d1 = (g1 + d2 wh)(1 - h1^2).
    wx, wh, b, h0, x1, x2 = 0.5, -0.8, 0.1, 0.3, 1.0, -2.0
    h1 = math.tanh(h0 * wh + x1 * wx + b)
    h2 = math.tanh(h1 * wh + x2 * wx + b)
    cotangents = [(0.7, -1.3), (0.2, 0.9)]  # two backward calls

    j = SegmentJob(
        np.array([[wx]]),
        np.array([[wh]]),
        np.array([b]),
        np.array([[h0]]),
        np.array([[[x1], [x2]]]),
        tuple(np.array([[[g1], [g2]]]) for g1, g2 in cotangents),
    )
    (got,) = oracle(name).run([j])

    rtol = 10 * oracle(name).accuracy
    np.testing.assert_allclose(got.hs.ravel(), [h1, h2], rtol=rtol, atol=0)
    np.testing.assert_allclose(got.h.ravel(), [h2], rtol=rtol, atol=0)
    assert len(got.backward) == 2
    for (g1, g2), grads in zip(cotangents, got.backward):
        d2 = g2 * (1 - h2**2)
        d1 = (g1 + d2 * wh) * (1 - h1**2)
        expected = {
            "dxs": [d1 * wx, d2 * wx],
            "dWx": [d1 * x1 + d2 * x2],
            "dWh": [d1 * h0 + d2 * h1],
            "db": [d1 + d2],
            "dh": [d1 * wh],
        }
        for q, value in expected.items():
            np.testing.assert_allclose(
                getattr(grads, q).ravel(), value, rtol=rtol, atol=0, err_msg=q
            )


# --- dtypes, shapes, order and fresh arrays --------------------------------------


@pytest.mark.parametrize("name", ORACLES)
def test_results_are_fresh_float64_arrays_of_the_right_shapes_in_job_order(name: str) -> None:
    rng = np.random.default_rng(3)
    # Mixed shapes, one or two backward calls, and more jobs of one shape than a JAX
    # chunk holds, interleaved: results must still come back in job order.
    shapes = [(2, 3, 4, 5, 2), (1, 1, 1, 1, 1), *[(3, 5, 2, 3, 1 + i % 2) for i in range(10)]]
    jobs = [job(rng, *s) for s in shapes]
    jobs = jobs[::2] + jobs[1::2]
    results = oracle(name).run(jobs)

    assert len(results) == len(jobs)
    seen: list[np.ndarray[Any, Any]] = []
    for j, values in zip(jobs, results):
        N, T, D = j.xs.shape
        H = j.b.size
        assert values.hs.shape == (N, T, H) and values.h.shape == (N, H)
        assert len(values.backward) == len(j.dhs)
        for g in values.backward:
            assert (g.dxs.shape, g.dWx.shape, g.dWh.shape) == ((N, T, D), (D, H), (H, H))
            assert (g.db.shape, g.dh.shape) == ((H,), (N, H))
        # The first step and the final state identify the job a result belongs to.
        np.testing.assert_allclose(values.hs[:, 0], np.tanh(j.h0 @ j.Wh + j.xs[:, 0] @ j.Wx + j.b))
        np.testing.assert_array_equal(values.h, values.hs[:, -1])
        for a in arrays(values):
            assert a.dtype == np.float64 and a.flags.c_contiguous
            assert not any(np.shares_memory(a, other) for other in seen)
            seen.append(a)
    inputs = [a for j in jobs for a in (j.Wx, j.Wh, j.b, j.h0, j.xs, *j.dhs)]
    assert not any(np.shares_memory(a, x) for a in seen for x in inputs)


@pytest.mark.jax
def test_jax_refuses_to_compute_without_float64() -> None:
    import jax

    from crosscheck.oracles.jax_scan import JaxOracle

    jax.config.update("jax_enable_x64", False)  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(RuntimeError, match=r"not float64.*jax_enable_x64"):
            JaxOracle().run([job(np.random.default_rng(0), 1, 2, 1, 1)])
    finally:
        jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]


@pytest.mark.jax
def test_jax_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from crosscheck.oracles.jax_scan import cache_dir

    monkeypatch.delenv("CROSSCHECK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "crosscheck" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "crosscheck" / "jax"
    monkeypatch.setenv("CROSSCHECK_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_numeric_supports_small_cases_only() -> None:
    numeric = oracle("numeric")
    assert numeric.supports(Case("float64", 1, 1, 1, "small", False, (Segment(64),) * 4, 0))
    assert not numeric.supports(Case("float64", 6, 10, 10, "small", False, (Segment(64),), 0))


# --- the chain driver ------------------------------------------------------------


class Recorder:
    """Passes jobs to the numeric oracle and keeps them; supports only the cases given."""

    name = "recorder"
    accuracy = 0.0

    def __init__(self, supported: Sequence[Case]) -> None:
        self.inner = oracle("numeric")
        self.supported = list(supported)
        self.jobs: list[SegmentJob] = []

    def supports(self, case: Case) -> bool:
        return case in self.supported

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        self.jobs.extend(jobs)
        return self.inner.run(jobs)


def test_reference_starts_each_segment_from_the_right_state() -> None:
    segments = (
        Segment(3, "s"),
        Segment(2, "c", backwards=2),
        Segment(4, "r"),
        Segment(2, "s"),
        Segment(3, "c", scribble=True),
    )
    chain = Case("float32", 2, 3, 4, "moderate", True, segments, seed=5)
    recorder = Recorder([chain])
    (ref,) = reference(recorder, [chain])

    assert ref is not None and len(ref) == len(recorder.jobs) == 5
    data = chain.data()
    h_set = [sd.h_set for sd in data.segments]
    zeros = np.zeros((2, 4))
    expected_h0 = [h_set[0], ref[0].h, zeros, h_set[3], ref[3].h]
    for k, (j, h0) in enumerate(zip(recorder.jobs, expected_h0)):
        assert h0 is not None
        np.testing.assert_array_equal(j.h0, h0.astype(np.float64), err_msg=f"segment {k}")
        np.testing.assert_array_equal(j.xs, data.segments[k].xs.astype(np.float64))
        assert len(j.dhs) == segments[k].backwards
        for a in (j.Wx, j.Wh, j.b, j.h0, j.xs, *j.dhs):
            assert a.dtype == np.float64
    # A carried segment really continues the previous one's recurrence.
    j = recorder.jobs[1]
    np.testing.assert_allclose(ref[1].hs[:, 0], np.tanh(ref[0].h @ j.Wh + j.xs[:, 0] @ j.Wx + j.b))


def test_reference_restarts_stateless_segments_and_skips_unsupported_cases() -> None:
    stateless = Case("float64", 1, 2, 2, "small", False, (Segment(2), Segment(3), Segment(1)), 1)
    skipped = Case("float64", 1, 2, 2, "small", True, (Segment(2, "s"), Segment(2, "c")), 2)
    recorder = Recorder([stateless])
    refs = reference(recorder, [skipped, stateless])

    assert refs[0] is None
    assert refs[1] is not None and [v.hs.shape[1] for v in refs[1]] == [2, 3, 1]
    assert len(recorder.jobs) == 3
    for j in recorder.jobs:
        np.testing.assert_array_equal(j.h0, np.zeros((1, 2)))


# --- a missing framework ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_missing_framework_raises_backend_unavailable_with_the_pip_hint(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == backend else real(name, *a)
    )
    hint = rf"needs {backend}, which is not installed: pip install {backend}"
    with pytest.raises(BackendUnavailable, match=hint):
        load_backend(backend)
    assert backend not in available_backends()


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        load_backend("tensorflow")


# --- frameworks are imported only when asked for ----------------------------------

PROBE = """
import json, sys
import numpy as np
import crosscheck, crosscheck.oracles
loaded = {}
def frameworks():
    return sorted({m.split(".")[0] for m in sys.modules} & {"jax", "jaxlib", "torch"})
loaded["import"] = frameworks()
backend = sys.argv[1]
if backend:
    from crosscheck.oracles import SegmentJob, load_backend
    j = SegmentJob(np.ones((1, 1)), np.ones((1, 1)), np.ones(1), np.ones((1, 1)),
                   np.ones((1, 2, 1)), (np.ones((1, 2, 1)),))
    for oracle in load_backend(backend):
        if "rnn" in oracle.kinds:
            oracle.run([j])
    loaded["backend"] = frameworks()
print(json.dumps(loaded))
"""


def probe(backend: str, tmp_path: Path) -> dict[str, list[str]]:
    """The frameworks a fresh interpreter has loaded after `import crosscheck` and after
    loading and running `backend` (if given)."""
    env = dict(os.environ, CROSSCHECK_CACHE_DIR=str(tmp_path / "jax-cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, backend], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_crosscheck_imports_no_framework(tmp_path: Path) -> None:
    assert probe("numeric", tmp_path) == {"import": [], "backend": []}


@pytest.mark.jax
def test_jax_backend_imports_no_torch_and_fills_the_compilation_cache(tmp_path: Path) -> None:
    if "jax" not in available_backends():
        pytest.skip("jax is not installed")
    loaded = probe("jax", tmp_path)
    assert (
        loaded["import"] == [] and "jax" in loaded["backend"] and "torch" not in loaded["backend"]
    )
    assert any((tmp_path / "jax-cache").iterdir())


@pytest.mark.torch
def test_torch_backend_imports_no_jax(tmp_path: Path) -> None:
    if "torch" not in available_backends():
        pytest.skip("torch is not installed")
    loaded = probe("torch", tmp_path)
    assert loaded["import"] == [] and loaded["backend"] == ["torch"]
