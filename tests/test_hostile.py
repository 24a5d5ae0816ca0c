"""The judge never runs the code it judges: every hostile layer of tests/catalog/hostile/
gets the verdict its entry expects, through the CLI, verify() and pytest, and none can
steer the exit code, hang the checker, leave a process behind or spoil `--json -`.

Each run uses two small cases that the finite-difference backend checks in milliseconds,
a one-second time limit per call and a 512 MiB memory cap, so that the whole catalog
takes about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from crosscheck_helpers import SMALL_IDS

from crosscheck.cases import parse_case
from crosscheck.render import render_text
from crosscheck.report import EXIT_MISMATCH, EXIT_OK
from crosscheck.verification import verify
from tests.catalog.hostile import HOSTILE, Hostile

ROOT = Path(__file__).resolve().parents[1]
CASE_IDS = (SMALL_IDS[0], SMALL_IDS[2])  # stateful with every start; float64 stateless
MEMORY = 512 * 2**20


def timeout(entry: Hostile) -> float:
    """1 s per call; the memory hog gets longer, as this machine fills memory slowly."""
    return 10.0 if entry.name == "memory_blowup_forward" else 1.0


# A hang is stopped after the time limit (1 s per call, 10 s for an import): the whole
# run must end well inside this, or the checker hung.
NO_HANG = 40.0


def run_cli(
    entry: Hostile, *extra: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "crosscheck", "--layer", entry.spec, "--backend", "numeric",
            "--timeout", str(timeout(entry)), "--memory-limit", "512M",
            *(a for i in CASE_IDS for a in ("--case", i)), *extra]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=NO_HANG + 60)  # fmt: skip
    return done, time.monotonic() - start


def strict_json(text: str) -> Any:
    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def workers_in(cwd: Path) -> list[int]:
    """Processes still running a crosscheck worker (or a child it forked) in `cwd`."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            here = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if b"crosscheck.worker" in cmd and here == str(cwd):
            pids.append(int(pid))
    return pids


def words_of(doc: dict[str, Any]) -> str:
    """Everything a JSON report says about what went wrong, lowercased."""
    parts = [doc.get("fatal") or ""] + [f["message"] for f in doc["failures"]]
    return " ".join(parts).lower()


@pytest.mark.parametrize("entry", HOSTILE, ids=lambda e: e.name)
def test_the_cli_gives_each_hostile_layer_its_verdict(entry: Hostile, tmp_path: Path) -> None:
    done, seconds = run_cli(entry, "--json", "-", cwd=tmp_path)
    assert seconds < NO_HANG, f"{entry.name} held the checker for {seconds:.0f} s"
    doc = strict_json(done.stdout)  # stdout is one JSON document, whatever the layer printed
    expected = EXIT_OK if entry.expected == "pass" else EXIT_MISMATCH
    assert (done.returncode, doc["exit_code"]) == (expected, expected), (done.stderr, doc)
    assert doc["verdict"] == entry.expected
    said = words_of(doc)
    for word in entry.reason_words:
        assert word in said, (word, said)
    assert workers_in(tmp_path) == [], "a process of the layer outlived the check"


def test_a_hostile_layer_cannot_print_into_the_text_report(tmp_path: Path) -> None:
    entry = next(e for e in HOSTILE if e.name == "print_noise")
    done, _ = run_cli(entry, cwd=tmp_path)
    assert done.returncode == 0
    # Its prints are shown, shortened and marked, never as lines of the report itself.
    printed = [ln for ln in done.stdout.splitlines() if '"verdict"' in ln]
    assert printed and all(ln.startswith("  | ") for ln in printed)
    assert max(len(ln) for ln in done.stdout.splitlines()) <= 200


def test_an_enormous_print_is_shortened(tmp_path: Path) -> None:
    entry = next(e for e in HOSTILE if e.name == "print_50mb_forward")
    done, _ = run_cli(entry, "--json", "-", cwd=tmp_path)
    doc = strict_json(done.stdout)
    assert doc["verdict"] == "pass"
    assert len(done.stdout) < 100_000 and "bytes left out" in doc["output"]


# verify() and assert_layer_matches() in this very process: the layer still runs in a
# worker, so nothing it does reaches pytest. (Layers that misbehave at import are named
# by their spec: importing them here would do to pytest what they do.)
@pytest.mark.parametrize("entry", HOSTILE, ids=lambda e: e.name)
def test_verify_gives_each_hostile_layer_its_verdict(entry: Hostile) -> None:
    before = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    report = verify(entry.spec, cases=[parse_case(i) for i in CASE_IDS], backends=["numeric"],
                    timeout=timeout(entry), memory_limit=MEMORY)  # fmt: skip
    assert report.verdict_word == entry.expected, render_text(report)
    said = " ".join([report.fatal or ""] + [f.message for f in report.failures]).lower()
    for word in entry.reason_words:
        assert word in said, (word, said)
    after = np.random.get_state()[1]  # type: ignore[index]  # noqa: NPY002
    np.testing.assert_array_equal(after, before)  # the global RNG was not used


TEST_FILE = """
import pytest
from crosscheck.cases import parse_case
from crosscheck.testing import assert_layer_matches

CASES = [parse_case(i) for i in {ids!r}]


@pytest.mark.parametrize(("spec", "timeout"), {specs!r})
def test_layer(spec, timeout):
    assert_layer_matches(spec, cases=CASES, backends=["numeric"], timeout=timeout,
                         memory_limit={memory})
"""


def test_pytest_reports_each_hostile_layer_as_its_entry_expects(tmp_path: Path) -> None:
    (tmp_path / "test_hostile_layers.py").write_text(
        textwrap.dedent(TEST_FILE).format(
            ids=list(CASE_IDS), specs=[(e.spec, timeout(e)) for e in HOSTILE], memory=MEMORY
        )
    )
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         "test_hostile_layers.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]  # some tests failed: pytest says so
    outcome = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        spec = tc.get("name", "").removeprefix("test_layer[").rpartition("-")[0]
        failure = tc.find("failure")
        outcome[spec] = "pass" if failure is None else "fail"
        if failure is not None:
            assert (failure.get("message") or "").startswith("AssertionError: FAIL")
    assert outcome == {e.spec: e.expected for e in HOSTILE}
