"""crosscheck finds real bugs: every wrong layer of the catalog is caught, every right one accepted.

The catalog (tests/catalog/) holds complete TimeRNN layers, each with one realistic
backprop mistake or none; see tests/catalog/__init__.py. Every run here uses 30 cases
(seed 0), both dtypes and every installed backend.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from crosscheck import Report, verify
from crosscheck.render import render_text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.catalog.*`, the module paths the CLI takes
    sys.path.insert(0, str(ROOT))

from tests.catalog import CATALOG, FAMILIES, Entry  # noqa: E402

CASES = 30
WRONG = [e for e in CATALOG if not e.correct and not e.note]
RIGHT = [e for e in CATALOG if e.correct]
NOTED = [e for e in CATALOG if e.note]


def _ids(entry: Entry) -> str:
    return entry.name


def _summary(report: Report) -> str:
    lines = [f"{len(report.failures)} failures, {len(report.disagreements)} oracle disagreements"]
    lines += [f"  {f.kind} {f.quantity} [{f.case_id}]: {f.message}" for f in report.failures[:8]]
    return "\n".join(lines)


@pytest.mark.parametrize("entry", RIGHT, ids=_ids)
def test_right_layer_is_accepted_even_when_strict(entry: Entry) -> None:
    report = verify(entry.layer(), cases=CASES, seed=0, strict=True)
    assert report.ok, _summary(report)
    assert sum(report.checked.values()) > 0 and report.notes == {}


@pytest.mark.parametrize("entry", NOTED, ids=_ids)
def test_noted_layer_passes_with_its_note_and_fails_when_strict(entry: Entry) -> None:
    report = verify(entry.layer(), cases=CASES, seed=0)
    assert report.ok, _summary(report)
    assert set(report.notes) == {entry.note}
    strict = verify(entry.layer(), cases=CASES, seed=0, strict=True, explain=False)
    assert not strict.ok and strict.exit_code == 1
    assert "--strict" not in render_text(strict)  # a strict run says no more that notes pass


@pytest.mark.parametrize("entry", WRONG, ids=_ids)
def test_wrong_layer_is_caught_in_the_expected_quantities(entry: Entry) -> None:
    report = verify(entry.layer(), cases=CASES, seed=0)
    assert not report.ok, f"{entry.name} ({entry.mistake}) was not caught"
    flagged = {f.quantity for f in report.failures}
    kinds = {f.kind for f in report.failures}
    assert flagged == entry.flags, (  # blamed on the wrong quantities, and only on them
        f"flagged {sorted(flagged)}, expected {sorted(entry.flags)}"
    )
    assert kinds & entry.kinds, (
        f"failure kinds {sorted(kinds)}, expected one of {sorted(entry.kinds)}"
    )
    if "exception" not in entry.kinds:
        assert "exception" not in kinds, _summary(report)  # silent mistakes, not crashes
    assert report.notes == {} or "float32_precision" not in report.notes


def test_catalog_covers_every_family() -> None:
    assert len(WRONG) >= 15
    assert len(RIGHT) >= 3
    assert {e.family for e in CATALOG} == set(FAMILIES)
    assert len({e.name for e in CATALOG}) == len(CATALOG)
    for e in CATALOG:
        assert e.correct == (e.family == "correct"), e.name
        assert e.correct or bool(e.note) or (e.flags and e.kinds), e.name
        assert bool(e.note) == (e.family == "notes"), e.name


@pytest.mark.parametrize("entry", CATALOG, ids=_ids)
def test_catalog_module_is_course_material(entry: Entry) -> None:
    """A module docstring; a wrong layer marks its one changed line `# MISTAKE:`."""
    module = importlib.import_module(entry.module)
    assert module.__doc__ and len(module.__doc__.strip().splitlines()) >= 3, entry.name
    spec = importlib.util.find_spec(entry.module)
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text(encoding="utf-8")
    marks = sum("  # MISTAKE: " in line for line in source.splitlines())  # code, not docs
    wrong_module = entry.module.rsplit(".", 1)[1].startswith("wrong_")
    assert marks == (1 if wrong_module else 0), f"{entry.name}: {marks} lines marked # MISTAKE:"


@pytest.mark.parametrize(
    ("name", "exit_code"), [("wrong_no_branch_sum", 1), ("correct_book_dtype", 0)]
)
def test_cli_takes_a_catalog_layer(name: str, exit_code: int) -> None:
    cmd = [sys.executable, "-m", "crosscheck", "--layer", f"tests.catalog.{name}:TimeRNN"]
    cmd += ["--cases", str(CASES), "--quiet", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == exit_code, done.stdout + done.stderr
