"""crosscheck.verification: cases -> workers / oracle processes -> compare -> Report."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from typing import Any

import pytest
from crosscheck_helpers import (
    BOOK_SOURCE,
    SMALL_CASES,
    HandrnnOracle,
    ScaledOracle,
    case,
    import_path,
)

from crosscheck.cases import generate_cases
from crosscheck.oracles import BackendUnavailable
from crosscheck.quantities import quantities_for
from crosscheck.references import Cache
from crosscheck.render import verdict
from crosscheck.report import EXIT_INCONCLUSIVE, EXIT_MISMATCH, EXIT_OK
from crosscheck.verification import verify
from handrnn import TimeRNN

RNN_QUANTITIES = quantities_for("rnn")


class WrongDb(TimeRNN):
    """db 1% too large."""

    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.grads[2] *= 1.01
        return dxs


def test_handrnn_passes_against_finite_differences() -> None:
    report = verify(TimeRNN, cases=SMALL_CASES, backends=["numeric"])
    assert report.ok and report.exit_code == EXIT_OK
    assert report.failures == [] and report.disagreements == []
    assert report.backends == ["numeric"]
    assert report.checked == {"numeric": len(SMALL_CASES)}
    assert report.layer == "handrnn.layers:TimeRNN"
    assert report.isolation == "imported in a worker process"
    for q in RNN_QUANTITIES:
        cell = report.cells[("numeric", q)]
        assert cell.checked > 0 and 0 <= cell.ratio <= 1 and cell.case_id, q


def test_a_wrong_layer_fails_naming_the_quantity_and_backend() -> None:
    report = verify(WrongDb, cases=SMALL_CASES, backends=["numeric"], explain=False)
    assert not report.ok and report.exit_code == EXIT_MISMATCH
    assert {f.quantity for f in report.failures} == {"db"}
    assert report.failing_case_ids == [c.id for c in SMALL_CASES]
    f = report.failures[0]
    assert (f.kind, f.backend, f.segment, f.call) == ("mismatch", "numeric", 0, 0)
    assert f.error is not None and f.threshold is not None and f.error > f.threshold
    assert f.error == pytest.approx(0.01, rel=1e-3)
    assert "db differs from numeric" in f.message
    assert f.reproducer == (
        "python -m crosscheck --layer test_verification:WrongDb "
        f"--case {shlex.quote(f.case_id)} --backend numeric"
    )
    assert report.cells[("numeric", "db")].ratio > 1
    assert report.cells[("numeric", "dWx")].ratio <= 1  # the other grads are still right


def test_protocol_problems_are_failures_without_a_backend() -> None:
    class Float64Hs(TimeRNN):
        def forward(self, xs: Any) -> Any:
            return super().forward(xs).astype("float64")

    report = verify(Float64Hs, cases=SMALL_CASES[:1], backends=["numeric"], explain=False)
    assert report.exit_code == EXIT_MISMATCH
    (f,) = report.failures
    assert (f.kind, f.quantity, f.backend) == ("dtype", "hs", None)
    assert "--backend" not in f.reproducer and f.case_id in f.reproducer


def test_an_exception_in_the_layer_is_a_failure_not_a_crash() -> None:
    class Broken(TimeRNN):
        def backward(self, dhs: Any) -> Any:
            raise IndexError("off by one")

    report = verify(Broken, cases=SMALL_CASES[:2], backends=["numeric"], explain=False)
    assert report.exit_code == EXIT_MISMATCH
    assert [(f.kind, f.quantity) for f in report.failures] == [("exception", "backward")] * 2
    assert "IndexError: off by one" in report.failures[0].message


def test_a_count_of_cases_draws_them_from_the_seeded_generator() -> None:
    report = verify(TimeRNN, cases=6, seed=9, dtypes=["float64"], oracles=[HandrnnOracle()])
    assert report.case_ids == [c.id for c in generate_cases(6, 9, ["float64"])]
    assert report.seed == 9 and report.backends == ["handrnn-f64"] and report.ok


class NoRecompute(HandrnnOracle):
    """An oracle that must never be asked: everything should come from the cache."""

    name = "numeric"

    def run(self, jobs: Any) -> Any:
        raise AssertionError("reference recomputed")

    def supports(self, case: Any) -> bool:
        raise AssertionError("reference recomputed")


def test_the_reference_cache_makes_a_second_verify_reuse_references() -> None:
    big = case("f32:N8:D4:H6:moderate:stateless:64z:1")  # too large for finite differences
    cases = [*SMALL_CASES, big]
    cache = Cache()
    first = verify(TimeRNN, cases=cases, backends=["numeric"], cache=cache)
    assert set(cache.entries) == {("numeric", c.id) for c in cases}
    assert cache.entries[("numeric", big.id)] is None  # "unsupported" is remembered too
    assert len(cache.entries[("numeric", SMALL_CASES[0].id)]) == len(SMALL_CASES[0].segments)

    class Another(TimeRNN):
        pass

    second = verify(Another, cases=cases, oracles=[NoRecompute()], cache=cache)
    assert first.unchecked == second.unchecked == [big.id]  # judged by no oracle: undecided
    assert not first.failures and not second.failures and second.layer.endswith("Another")
    assert first.checked == second.checked == {"numeric": len(SMALL_CASES)}


def test_oracle_disagreement_is_inconclusive_and_does_not_blame_the_layer() -> None:
    fakes = [HandrnnOracle(), ScaledOracle("broken", "dWh", 1.01)]
    report = verify(TimeRNN, cases=SMALL_CASES, oracles=fakes, cache=Cache())
    assert report.backends == ["handrnn-f64", "broken"]
    assert not report.ok and report.exit_code == EXIT_INCONCLUSIVE
    assert report.failures == [] and report.checked == {}
    assert {d.case_id for d in report.disagreements} == {c.id for c in SMALL_CASES}
    d = report.disagreements[0]
    assert (d.oracles, d.quantity, d.segment, d.call) == (("handrnn-f64", "broken"), "dWh", 0, 0)
    assert d.error == pytest.approx(0.01, rel=1e-6) and d.error > d.threshold


def test_oracles_agreeing_within_their_accuracy_judge_the_layer() -> None:
    nearly = ScaledOracle("nearly", "hs", 1 + 1e-14)
    report = verify(WrongDb, cases=SMALL_CASES[:2], explain=False,
                    oracles=[HandrnnOracle(), nearly], cache=Cache())  # fmt: skip
    assert report.disagreements == [] and report.exit_code == EXIT_MISMATCH
    assert {f.backend for f in report.failures} == {"handrnn-f64", "nearly"}


def test_protocol_problems_count_even_when_the_oracles_disagree() -> None:
    class CopiesParams(TimeRNN):
        def __init__(self, Wx: Any, Wh: Any, b: Any, stateful: bool = False) -> None:
            super().__init__(Wx.copy(), Wh.copy(), b.copy(), stateful)

    fakes = [HandrnnOracle(), ScaledOracle("broken", "h", 2.0)]
    report = verify(CopiesParams, cases=SMALL_CASES[:1], explain=False, oracles=fakes,
                    cache=Cache())  # fmt: skip
    assert report.disagreements and report.exit_code == EXIT_MISMATCH
    assert [f.quantity for f in report.failures] == ["params"]


def test_a_case_no_oracle_can_check_is_not_a_pass() -> None:
    # The numeric oracle skips large cases; a report that judged nothing must not say
    # the layer agreed "on all cases" (Report.ok: "no case was left undecided").
    big = case("f32:N8:D4:H6:moderate:stateless:64z:1")
    report = verify(WrongDb, cases=[big], backends=["numeric"], explain=False)
    assert report.checked == {}
    assert report.unchecked == [big.id]
    assert not report.ok
    assert report.exit_code == 3
    assert "INCONCLUSIVE" in verdict(report)


def test_drawn_cases_do_not_depend_on_the_backends_and_unsupported_ones_are_counted() -> None:
    report = verify(TimeRNN, cases=40, backends=["numeric"], explain=False)
    assert report.case_ids == [c.id for c in generate_cases(40)]
    assert report.ok  # a drawn case too large for numeric is counted, not a verdict
    skipped = report.skipped.get("numeric", 0)
    assert 0 < skipped < 40 and report.unjudged == skipped
    assert report.checked == {"numeric": 40 - skipped}
    assert f"{skipped} of 40 are too large for numeric" in verdict(report)


def test_progress_reports_cases_done() -> None:
    seen: list[tuple[str, int, int]] = []
    verify(TimeRNN, cases=SMALL_CASES[:2], backends=["numeric"], progress=lambda *a: seen.append(a))
    assert seen[0] == ("checking the layer", 0, 2)
    assert all(0 <= done <= total == 2 for _, done, total in seen)
    assert seen[-1] == ("done", 2, 2)  # the last call says everything is done


def test_unknown_or_missing_backends_raise_before_any_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="unknown backend 'tf'"):
        verify(TimeRNN, cases=1, backends=["tf"])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    with pytest.raises(
        BackendUnavailable, match=r"needs jax, which is not installed: pip install jax"
    ):
        verify(TimeRNN, cases=1, backends=["jax"])


@pytest.mark.jax
def test_handrnn_passes_against_jax() -> None:
    pytest.importorskip("jax")
    report = verify(TimeRNN, cases=6, seed=1, backends=["jax"])
    assert report.ok, report.failures
    assert report.checked == {"jax": 6}


@pytest.mark.torch
def test_handrnn_passes_against_both_torch_oracles() -> None:
    pytest.importorskip("torch")
    report = verify(TimeRNN, cases=4, seed=2, backends=["torch"])
    assert report.backends == ["torch", "torch.nn.RNN"]
    assert report.ok, report.failures
    assert report.checked == {"torch": 4, "torch.nn.RNN": 4}


@pytest.fixture
def book(tmp_path: Path) -> Any:
    path = tmp_path / "book_time_rnn.py"
    path.write_text(BOOK_SOURCE)
    return import_path(path).TimeRNN


def test_the_books_time_rnn_passes_at_float32(book: Any) -> None:
    f32 = [c for c in SMALL_CASES if c.dtype == "float32"]
    report = verify(book, cases=f32, backends=["numeric"])
    assert report.ok, report.failures
    assert report.checked == {"numeric": len(f32)}


def test_the_books_time_rnn_passes_at_float64_with_a_note_on_its_hard_coded_float32(
    book: Any,
) -> None:
    f64 = [c for c in SMALL_CASES if c.dtype == "float64"]
    report = verify(book, cases=f64, backends=["numeric"], explain=False)
    assert report.ok and set(report.notes) == {"float32_outputs"}
    assert report.notes["float32_outputs"].cases == len(f64)
    assert "dtype='f'" in report.notes["float32_outputs"].message
    # Its values were judged at float32's tolerance, against the float64 reference.
    assert 1e-8 < report.cells[("numeric", "hs")].error < 1e-4


def test_the_books_time_rnn_fails_an_explicit_float64_check(book: Any) -> None:
    f64 = [c for c in SMALL_CASES if c.dtype == "float64"]
    report = verify(book, cases=f64, backends=["numeric"], explain=False, explicit_dtype=True)
    assert report.exit_code == EXIT_MISMATCH and report.notes == {}
    kinds = {(f.kind, f.quantity) for f in report.failures}
    assert kinds == {(k, q) for k in ("float32_outputs", "mismatch") for q in ("hs", "dxs")}
    assert "hs came back float32 for float64 parameters" in report.failures[0].message


CALLER = """
import json, sys, threading
import numpy as np
{setup}
def state():
    out = {{"modules": sorted(m for m in ("jax", "torch") if m in sys.modules),
            "rng": np.random.get_state()[1][:8].tolist(), "err": np.geterr(),
            "threads": threading.active_count()}}
    {extra}
    return out
before = state()
from crosscheck import verify
from crosscheck.cases import parse_case
report = verify("tests.catalog.hostile.jax_x64_off_import:TimeRNN", backends={backends!r},
                cases=[parse_case("f64:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11")])
print(json.dumps({{"ok": report.ok, "before": before, "after": state()}}))
"""


def caller_state(tmp_path: Path, backends: list[str], setup: str = "", extra: str = "") -> Any:
    import json
    import os
    import subprocess
    import sys

    script = CALLER.format(setup=setup, extra=extra, backends=backends)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_verify_leaves_the_callers_process_as_it_was(tmp_path: Path) -> None:
    got = caller_state(tmp_path, ["numeric"])
    assert got["ok"]
    assert got["after"] == got["before"]  # no framework imported, RNG, error state, threads


@pytest.mark.jax
@pytest.mark.torch
def test_verify_with_the_frameworks_leaves_their_settings_alone(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    setup = "import jax, jax.numpy as jnp, torch"
    extra = (
        'out["x64"] = str(jnp.ones(3).dtype); '
        'out["cache"] = str(jax.config.jax_compilation_cache_dir); '
        'out["tf32"] = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]; '
        'out["torch_threads"] = torch.get_num_threads(); '
        'out["dtype"] = str(torch.get_default_dtype())'
    )
    got = caller_state(tmp_path, ["jax", "torch"], setup, extra)
    assert got["ok"]  # a correct layer that turns JAX x64 off in its worker still passes
    assert got["after"] == got["before"]
    assert got["after"]["x64"] == "float32"
