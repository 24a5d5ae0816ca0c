"""crosscheck.cs231n: CS231n-style RNN functions checked through adapters to the book's layer.

tests/cs231n/ holds modules of the four functions: two right ones and five with one
mistake each. Each module is checked in two parts ("rnn_forward": rnn_forward and
rnn_backward; "rnn_step_forward": the step functions alone, in crosscheck's loop); every
wrong one must fail in the part that holds the mistake, in the quantities it gets wrong,
and pass in the other. Below that, the adapters' own behaviour, driven directly.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crosscheck_helpers import case

from crosscheck import Report, cs231n, verify
from crosscheck.drive import Observed, drive
from crosscheck.quantities import quantities_for
from handrnn import TimeRNN

RNN_QUANTITIES = quantities_for("rnn")

ROOT = Path(__file__).resolve().parents[1]
CASES = 30
FAST = ["numeric"]  # the in-process checks: finite differences are enough, and quick
SEQ, STEP = cs231n.PARTS
# Whether crosscheck has the isolated road for CS231n modules (verify(api=...), the worker).
HAS_API = "api" in inspect.signature(verify).parameters
_GRADS = frozenset({"dxs", "dWx", "dWh", "db", "dh"})


def module(name: str) -> types.ModuleType:
    return importlib.import_module(f"tests.cs231n.{name}")


@dataclass(frozen=True)
class Entry:
    """One module of tests/cs231n/: per part, the quantities (or problem subjects) a report
    must flag, and the failure kinds; an empty set: the part must pass."""

    name: str
    flags: dict[str, frozenset[str]]
    kinds: frozenset[str] = frozenset({"mismatch"})


NONE: frozenset[str] = frozenset()
CATALOG = (
    Entry("correct", {SEQ: NONE, STEP: NONE}),
    Entry("correct_vectorized", {SEQ: NONE, STEP: NONE}),
    Entry("wrong_dh0", {SEQ: frozenset({"dh"}), STEP: NONE}),
    Entry("wrong_no_branch_sum", {SEQ: _GRADS, STEP: NONE}),
    Entry("wrong_step_derivative", {SEQ: _GRADS, STEP: _GRADS}),
    Entry("wrong_ignores_h0", {SEQ: frozenset({"hs", "h"}) | _GRADS, STEP: NONE}),
    Entry("wrong_dh_in_place", {SEQ: frozenset({"dhs"}), STEP: NONE}, frozenset({"protocol"})),
)
RUNS = [(e, part) for e in CATALOG for part in cs231n.PARTS]


def _check(name: str, part: str, **kw: Any) -> Report:
    kw = {"cases": CASES, "seed": 0, "backends": FAST, "isolate": False, **kw}
    return verify(cs231n.adapter(module(name), part), **kw)


def _summary(report: Report) -> str:
    lines = [f"{len(report.failures)} failures"]
    lines += [f"  {f.kind} {f.quantity} [{f.case_id}]: {f.message}" for f in report.failures[:8]]
    return "\n".join(lines)


@pytest.mark.parametrize(("entry", "part"), RUNS, ids=[f"{e.name}-{p}" for e, p in RUNS])
def test_each_part_passes_or_fails_in_the_quantities_it_gets_wrong(entry: Entry, part: str) -> None:
    report = _check(entry.name, part, strict=True, explain=False)
    expected = entry.flags[part]
    if not expected:
        assert report.ok, _summary(report)
        assert report.notes == {} and sum(report.checked.values()) > 0
        return
    assert not report.ok, f"{entry.name} ({part}) was not caught"
    flagged = {f.quantity for f in report.failures}
    assert flagged <= expected and flagged, (sorted(flagged), sorted(expected))
    assert {f.kind for f in report.failures} <= entry.kinds, _summary(report)


def test_the_catalog_has_right_modules_and_one_mistake_per_wrong_one() -> None:
    wrong = [e for e in CATALOG if any(e.flags.values())]
    assert len(wrong) >= 4 and len(CATALOG) - len(wrong) >= 2
    for e in wrong:
        text = (ROOT / "tests" / "cs231n" / f"{e.name}.py").read_text()
        assert "# MISTAKE:" in text and text.startswith('"""Wrong')


def test_a_right_module_passes_against_every_installed_backend() -> None:
    for part in cs231n.PARTS:
        report = _check("correct", part, backends=None, cases=40, strict=True)
        assert report.ok, _summary(report)
        assert sum(report.checked.values()) > 0


def test_the_diagnosis_names_the_mistake_and_shrinking_finds_one_step() -> None:
    branch = _check("wrong_no_branch_sum", SEQ)
    assert any("not added" in d for d in branch.diagnosis), branch.diagnosis
    h0 = _check("wrong_ignores_h0", SEQ)
    assert any("set_state(h) is ignored" in d for d in h0.diagnosis), h0.diagnosis
    step = _check("wrong_step_derivative", STEP)
    assert any("1 − h_t instead of 1 − h_t²" in d for d in step.diagnosis), step.diagnosis
    # Shrinking works through the adapter as through any layer: down to one step.
    assert step.smallest_case is not None and ":1z:" in step.smallest_case


# --------------------------------------------------------------------------------------
# The adapters, driven directly.

F64 = case("f64:N2:D3:H4:moderate:stateful:4s2,3c,2r*:7")
F32 = case("f32:N3:D2:H5:saturating:stateless:3z,2zn1:3")


def _values(observed: Observed) -> list[tuple[str, Any]]:
    return [
        (q, seg.get(q, j))
        for seg in observed.segments
        for j in range(len(seg.backward))
        for q in RNN_QUANTITIES
    ]


@pytest.mark.parametrize("part", cs231n.PARTS)
@pytest.mark.parametrize("name", ["correct", "correct_vectorized"])
def test_an_adapted_right_module_follows_the_book_protocol_and_matches_handrnn(
    name: str, part: str
) -> None:
    for c in (F64, F32):
        got = drive(cs231n.adapter(module(name), part), c)
        want = drive(TimeRNN, c)
        assert got.problems == [] and len(got.segments) == len(c.segments)
        for (q, a), (_, b) in zip(_values(got), _values(want)):
            assert a.dtype == np.dtype(c.dtype), q
            tight = c.dtype == "float64"
            rtol, atol = (1e-12, 1e-13) if tight else (1e-5, 1e-6)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=q)


def _spy(**overrides: Any) -> types.ModuleType:
    """A module of correct.py's functions, some replaced."""
    spy = types.ModuleType("spy")
    base = module("correct")
    for fn in cs231n.ALL_FUNCTIONS:
        setattr(spy, fn, overrides.get(fn, getattr(base, fn)))
    return spy


def test_rnn_forward_gets_zeros_the_carried_state_or_the_set_state_as_h0() -> None:
    seen: list[Any] = []
    base = module("correct")

    def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        seen.append(h0.copy())
        return base.rnn_forward(x, h0, Wx, Wh, b)

    c = case("f64:N2:D3:H4:moderate:stateful:3z,3s,3c,3r:5")
    observed = drive(cs231n.adapter(_spy(rnn_forward=rnn_forward)), c)
    assert observed.problems == []
    data = c.data()
    assert not seen[0].any() and not seen[3].any()  # from zeros, and after reset_state
    np.testing.assert_array_equal(seen[1], data.segments[1].h_set)
    np.testing.assert_array_equal(seen[2], observed.segments[1].h)  # carried: h[:, -1]
    stateless = drive(cs231n.adapter(_spy(rnn_forward=rnn_forward)), F32)
    assert stateless.problems == [] and not seen[-1].any() and not seen[-2].any()


def test_a_one_step_segment_is_exactly_one_call_of_each_step_function() -> None:
    calls: list[str] = []
    base = module("correct")

    def rnn_step_forward(*args: Any) -> Any:
        calls.append("forward")
        return base.rnn_step_forward(*args)

    def rnn_step_backward(*args: Any) -> Any:
        calls.append("backward")
        return base.rnn_step_backward(*args)

    spy = _spy(rnn_step_forward=rnn_step_forward, rnn_step_backward=rnn_step_backward)
    observed = drive(cs231n.adapter(spy, STEP), case("f64:N2:D3:H4:small:stateless:1z:9"))
    assert observed.problems == [] and calls == ["forward", "backward"]
    # ...and there, the step's own outputs are what is compared: dh is its dprev_h.
    c = case("f64:N2:D3:H4:small:stateless:1z:9")
    d = c.data()
    sd = d.segments[0]
    next_h, cache = base.rnn_step_forward(sd.xs[:, 0], np.zeros((2, 4)), d.Wx, d.Wh, d.b)
    _, dprev_h, _, dWh, _ = base.rnn_step_backward(sd.dhs[0][:, 0], cache)
    seg = observed.segments[0]
    np.testing.assert_array_equal(seg.hs[:, 0], next_h)
    np.testing.assert_array_equal(seg.backward[0].dh, dprev_h)
    np.testing.assert_array_equal(seg.backward[0].dWh, dWh)


def _only(observed: Observed) -> Any:
    assert len(observed.problems) == 1, observed.problems
    return observed.problems[0]


def test_the_functions_exceptions_reach_the_report_with_the_students_line() -> None:
    def rnn_backward(dh: Any, cache: Any) -> Any:
        raise IndexError("list index out of range")

    p = _only(drive(cs231n.adapter(_spy(rnn_backward=rnn_backward)), F64))
    assert (p.kind, p.quantity) == ("exception", "backward")
    assert "IndexError: list index out of range" in p.message
    assert "test_cs231n.py" in p.message  # the line that raised, not the adapter's


def test_an_unfinished_stub_is_named_not_a_broadcasting_error() -> None:
    def stub(*args: Any) -> Any:
        return None, None  # CS231n's template: next_h, cache = None, None

    p = _only(drive(cs231n.adapter(_spy(rnn_forward=stub)), F64))
    assert (p.kind, p.quantity) == ("shape", "hs") and "NoneType" in p.message
    p = _only(drive(cs231n.adapter(_spy(rnn_step_forward=stub), STEP), F64))
    assert p.kind == "exception" and p.quantity == "forward"
    assert "rnn_step_forward returned next_h as NoneType at step t=0" in p.message


def test_wrong_shapes_and_tuples_from_the_functions_are_named() -> None:
    base = module("correct")

    def rnn_backward(dh: Any, cache: Any) -> Any:
        dx, dh0, dWx, dWh, db = base.rnn_backward(dh, cache)
        return dx, dh0, dWx, dWh, db[None]  # (1, H): would broadcast into grads[2]

    p = _only(drive(cs231n.adapter(_spy(rnn_backward=rnn_backward)), F64))
    assert p.kind == "exception" and "rnn_backward returned db of shape (1, 4)" in p.message

    def four(dh: Any, cache: Any) -> Any:
        return base.rnn_backward(dh, cache)[:4]

    p = _only(drive(cs231n.adapter(_spy(rnn_backward=four)), F64))
    assert "rnn_backward returned 4 values, expected the tuple (dx, dh0, dWx, dWh, db)" in (
        p.message
    )

    def step_back(dnext_h: Any, cache: Any) -> Any:
        dx, dprev_h, dWx, dWh, db = base.rnn_step_backward(dnext_h, cache)
        return dx, dprev_h, dWx.T, dWh, db  # (H, D) for (D, H)

    p = _only(drive(cs231n.adapter(_spy(rnn_step_backward=step_back), STEP), F64))
    assert "rnn_step_backward returned dWx of shape (4, 3) at step t=3" in p.message


def test_writing_into_the_callers_x_or_dh_is_seen_by_drive() -> None:
    base = module("correct")

    def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        out = base.rnn_forward(x, h0, Wx, Wh, b)
        x *= 2.0
        return out

    observed = drive(cs231n.adapter(_spy(rnn_forward=rnn_forward)), F64)
    assert {(p.kind, p.quantity) for p in observed.problems} == {("protocol", "xs")}
    observed = drive(cs231n.adapter(module("wrong_dh_in_place")), F64)
    assert {(p.kind, p.quantity) for p in observed.problems} == {("protocol", "dhs")}


def test_writing_into_h0_or_prev_h_is_an_error_that_names_it() -> None:
    base = module("correct")

    def rnn_forward(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        out = base.rnn_forward(x, h0, Wx, Wh, b)
        h0 += 1.0
        return out

    p = _only(drive(cs231n.adapter(_spy(rnn_forward=rnn_forward)), F64))
    assert p.kind == "exception" and "rnn_forward wrote into its argument h0" in p.message

    def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        out = base.rnn_step_forward(x, prev_h, Wx, Wh, b)
        prev_h[...] = 0.0
        return out

    p = _only(drive(cs231n.adapter(_spy(rnn_step_forward=rnn_step_forward), STEP), F64))
    assert "rnn_step_forward wrote into its argument prev_h at step t=0" in p.message


def test_a_step_function_that_reuses_one_output_buffer_fails_in_prev_h() -> None:
    buf: dict[str, Any] = {}
    base = module("correct")

    def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        next_h, cache = base.rnn_step_forward(x, prev_h, Wx, Wh, b)
        out = buf.setdefault("h", np.empty_like(next_h))
        out[...] = next_h
        return out, cache

    p = _only(drive(cs231n.adapter(_spy(rnn_step_forward=rnn_step_forward), STEP), F64))
    assert "wrote into its argument prev_h at step t=1" in p.message


def test_a_module_without_the_functions_is_refused_with_what_it_defines() -> None:
    half = types.ModuleType("half")
    half.rnn_forward = module("correct").rnn_forward  # type: ignore[attr-defined]
    half.rnn_backward = module("correct").rnn_backward  # type: ignore[attr-defined]
    assert cs231n.parts_defined(half) == [SEQ]
    assert cs231n.parts_defined(module("correct")) == list(cs231n.PARTS)
    with pytest.raises(cs231n.NotCS231n, match=r"rnn_step_forward is missing.*--layer MODULE:rnn_"):
        cs231n.adapter(half, STEP)
    half.rnn_step_forward = 3  # type: ignore[attr-defined]
    with pytest.raises(cs231n.NotCS231n, match="rnn_step_forward is not a function"):
        cs231n.adapter(half, STEP)
    with pytest.raises(ValueError, match="part must be one of"):
        cs231n.adapter(half, "rnn_backward")


def test_backward_before_forward_is_an_error() -> None:
    d = F64.data()
    for part in cs231n.PARTS:
        layer = cs231n.adapter(module("correct"), part)(d.Wx, d.Wh, d.b)
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(d.segments[0].dhs[0])


def test_float32_steps_in_a_float64_case_are_a_note_as_for_the_book() -> None:
    base = module("correct")

    def rnn_step_forward(x: Any, prev_h: Any, Wx: Any, Wh: Any, b: Any) -> Any:
        next_h, cache = base.rnn_step_forward(x, prev_h, Wx, Wh, b)
        return next_h.astype(np.float32), cache

    observed = drive(cs231n.adapter(_spy(rnn_step_forward=rnn_step_forward), STEP), F64)
    assert {(p.kind, p.quantity) for p in observed.problems} >= {("float32_outputs", "hs")}


# --------------------------------------------------------------------------------------
# Names, legend, hints, exit codes.


def test_every_quantity_has_a_name_in_each_part_and_a_part_is_named_by_its_forward() -> None:
    for part in cs231n.PARTS:
        names = cs231n.NAMES[part]
        assert set(RNN_QUANTITIES) <= set(names)
        assert names["forward"] == part  # crosscheck.verification finds the part by it
        assert all(len(names[q]) <= 30 for q in RNN_QUANTITIES)  # the summary table's column
        legend = cs231n.legend(part)
        assert all(names[q] in legend for q in RNN_QUANTITIES)
    assert cs231n.NAMES[SEQ]["dWh"] == "rnn_backward's dWh"
    assert cs231n.NAMES[SEQ]["dh"] == "rnn_backward's dh0"
    assert cs231n.NAMES[SEQ]["h"] == "rnn_forward's h[:, -1]"
    assert cs231n.NAMES[STEP]["hs"] == "rnn_step_forward's next_h"
    assert cs231n.NAMES[STEP]["dh"] == "rnn_step_backward's dprev_h"


def test_hints_and_exit_codes() -> None:
    lines = cs231n.hints(["set_state_ignored", "stateful_ignored", "scaled"], SEQ)
    assert len(lines) == 1 and "prev_h = h0" in lines[0]
    assert cs231n.hints(["no_carry"], STEP)[0].endswith("dprev_h = dt @ Wh.T.")
    assert cs231n.exit_code([0, 0]) == 0
    assert cs231n.exit_code([0, 3]) == 3
    assert cs231n.exit_code([3, 1]) == 1
    assert cs231n.exit_code([130, 0]) == 130


def test_an_adapter_class_is_never_looked_up_by_its_own_name() -> None:
    cls = cs231n.adapter(module("correct"))
    assert "<locals>" in cls.__qualname__  # target_for: "a fresh process cannot find it"
    assert cs231n.adapted(cls) == ("tests.cs231n.correct", SEQ)
    assert cs231n.adapted(TimeRNN) is None
    report = verify(cls, cases=2, backends=FAST)
    # Before verify knows adapters: in this process, saying so; after: its module, isolated.
    where = "in a worker process" if HAS_API else "in this process"
    assert report.ok and where in report.isolation


def test_the_worker_needs_nothing_but_numpy_to_import_the_adapter() -> None:
    code = (
        "import sys, crosscheck.cs231n; "
        "print(sorted(m for m in ('jax', 'torch', 'crosscheck.oracles', 'crosscheck.verification')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------
# The isolated road (the worker, verify(api=...), the CLI): active once crosscheck has it.

needs_api = pytest.mark.skipif(
    not HAS_API,
    reason="verify(api=...) and the worker's api target are not in crosscheck yet",
)


@needs_api
def test_a_module_spec_is_checked_in_a_worker_and_reported_in_its_names() -> None:
    spec = "tests/cs231n/wrong_dh0.py:rnn_forward"
    report = verify(spec, api="cs231n", cases=10, backends=FAST, jobs=1)  # type: ignore[call-arg]
    assert report.isolation.endswith("in a worker process")
    assert {f.quantity for f in report.failures} == {"dh"}
    assert report.name("dh") == "rnn_backward's dh0"  # type: ignore[attr-defined]
    assert report.failures[0].reproducer.endswith("--api cs231n --backend numeric")
    step = verify("tests/cs231n/wrong_dh0.py:rnn_step_forward", api="cs231n",  # type: ignore[call-arg]
                  cases=10, backends=FAST, jobs=1)  # fmt: skip
    assert step.ok
    isolated = verify(cs231n.adapter(module("wrong_ignores_h0")), cases=10, backends=FAST, jobs=1)
    assert isolated.isolation.endswith("in a worker process") and not isolated.ok


@needs_api
def test_the_diagnosis_adds_the_advice_in_the_modules_terms() -> None:
    branch = _check("wrong_no_branch_sum", SEQ)
    assert any(d.startswith("In the module's terms: in rnn_backward") for d in branch.diagnosis)
    h0 = _check("wrong_ignores_h0", SEQ)
    assert any("rnn_forward must start from h0" in d for d in h0.diagnosis), h0.diagnosis
    assert h0.legend.startswith("Names: ")  # type: ignore[attr-defined]


@needs_api
def test_the_cli_checks_both_parts_and_exits_with_the_worse() -> None:
    cmd = [sys.executable, "-m", "crosscheck", "--api", "cs231n", "--cases", "10",
           "--backend", "numeric", "--no-progress"]  # fmt: skip
    run = subprocess.run([*cmd, "--layer", "tests.cs231n.wrong_step_derivative"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "rnn_step_backward's dWh" in run.stdout and "rnn_backward's dWh" in run.stdout
    assert (
        run.stdout.rstrip()
        .splitlines()[-1]
        .startswith("FAIL: tests.cs231n.wrong_step_derivative (--api cs231n)")
    )
    ok = subprocess.run([*cmd, "--layer", "tests/cs231n/correct.py", "--quiet"], cwd=ROOT,
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = subprocess.run([*cmd, "--layer", "handrnn"], cwd=ROOT, capture_output=True,
                             text=True)  # fmt: skip
    assert missing.returncode == 2 and "rnn_forward is missing" in missing.stderr
