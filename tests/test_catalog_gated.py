"""crosscheck finds real bugs in gated layers: every wrong TimeLSTM / TimeGRU of the catalog
is caught in the quantities it gets wrong and its mistake is named; every right one is
accepted, and the book's own layers pass with the float32 note.

The catalog is tests/catalog_gated/ (see its __init__). Every run uses 30 cases (seed 0),
both dtypes and every installed backend, through worker processes, as the CLI does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from crosscheck import Report, verify
from crosscheck.kinds import get_kind

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.catalog_gated.*`, the module paths the CLI takes
    sys.path.insert(0, str(ROOT))

from tests.catalog_gated import CATALOG, Entry  # noqa: E402

CASES = 30
WRONG = [e for e in CATALOG if not e.correct and not e.note]
RIGHT = [e for e in CATALOG if e.correct]
NOTED = [e for e in CATALOG if e.note]


def _ids(entry: Entry) -> str:
    return entry.name


def _summary(report: Report) -> str:
    lines = [f"{len(report.failures)} failures, {len(report.disagreements)} oracle disagreements"]
    lines += [f"  {f.kind} {f.quantity} [{f.case_id}]: {f.message}" for f in report.failures[:8]]
    return "\n".join(lines + report.diagnosis)


@pytest.mark.parametrize("entry", RIGHT, ids=_ids)
def test_right_gated_layer_is_accepted_even_when_strict(entry: Entry) -> None:
    report = verify(entry.spec, kind=entry.kind, cases=CASES, seed=0, strict=True)
    assert report.ok, _summary(report)
    assert report.kind == entry.kind and report.notes == {}
    compared = {q for (_, q), cell in report.cells.items() if cell.checked}
    # Everything the kind has is compared (dc only where the layer exposes it).
    assert compared >= set(get_kind(entry.kind).quantities) - {"dc"}, compared


@pytest.mark.parametrize("entry", NOTED, ids=_ids)
def test_the_books_gated_layer_passes_with_the_float32_note(entry: Entry) -> None:
    report = verify(entry.spec, kind=entry.kind, cases=CASES, seed=0)
    assert report.ok, _summary(report)
    assert set(report.notes) == {entry.note}
    strict = verify(entry.spec, kind=entry.kind, cases=CASES, seed=0, strict=True, explain=False)
    assert not strict.ok and strict.exit_code == 1


@pytest.mark.parametrize("entry", WRONG, ids=_ids)
def test_wrong_gated_layer_is_caught_and_its_mistake_named(entry: Entry) -> None:
    report = verify(entry.spec, kind=entry.kind, cases=CASES, seed=0)
    assert not report.ok, f"{entry.name} ({entry.mistake}) was not caught"
    flagged = {f.quantity for f in report.failures}
    assert flagged == entry.flags, f"flagged {sorted(flagged)}, expected {sorted(entry.flags)}"
    assert {f.kind for f in report.failures} <= entry.kinds, _summary(report)
    # The diagnosis names the mistake first, in the kind's own words.
    mistake = next(m for m in get_kind(entry.kind).mistakes if m.name == entry.cause)
    assert report.diagnosis, _summary(report)
    assert mistake.wrong in report.diagnosis[0], report.diagnosis
    assert report.smallest_case is not None and report.smallest_case.startswith(entry.kind)


def test_the_gated_catalog_has_ten_named_mistakes_and_three_right_layers_per_kind() -> None:
    assert len({e.cause for e in WRONG}) >= 10
    for kind in ("lstm", "gru"):
        assert sum(e.kind == kind for e in RIGHT) >= 3
        names = {m.name for m in get_kind(kind).mistakes}
        assert {e.cause for e in WRONG if e.kind == kind} <= names
