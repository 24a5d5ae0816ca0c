"""The scripts in examples/ run as a student would run them, each in a fresh temp directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pytest
from crosscheck_helpers import SMALL_CASES

from crosscheck.cli import main
from crosscheck.verification import verify

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BUG = "dx, dh = layer.backward(dhs[:, t, :])\n"
FIX = "dx, dh = layer.backward(dhs[:, t, :] + dh)\n"


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def student_files(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


def load_module(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def test_training_example_prints_a_falling_loss(tmp_path: Path) -> None:
    out = run([str(EXAMPLES / "train_tiny_rnn.py")], tmp_path)
    assert out.returncode == 0, out.stderr
    losses = [float(x) for x in re.findall(r"^epoch +\d+ \| loss ([0-9.]+)", out.stdout, re.M)]
    baseline = float(re.search(r"baseline .*loss ([0-9.]+)", out.stdout)[1])  # type: ignore[index]
    assert len(losses) >= 10
    assert losses[-1] < losses[0] / 10  # epoch 0 is before training
    assert losses[-1] < losses[1] and losses[-1] < baseline / 3


def test_the_student_layer_has_exactly_one_mistake() -> None:
    source = (EXAMPLES / "student_layer.py").read_text()
    assert source.count(BUG) == 1
    buggy = load_module("student_layer", source)
    fixed = load_module("student_layer_fixed", source.replace(BUG, FIX))
    cases = list(SMALL_CASES)
    assert verify(fixed.TimeRNN, cases=cases, backends=["numeric"]).ok
    report = verify(buggy.TimeRNN, cases=cases, backends=["numeric"], explain=False)
    assert not report.ok
    assert set(report.failures_by_quantity()) <= {"dxs", "dWx", "dWh", "db", "dh"}


def test_check_student_layer_shows_a_failing_verdict(tmp_path: Path) -> None:
    out = run([str(EXAMPLES / "check_student_layer.py"), "numeric"], tmp_path)
    assert out.returncode == 0, out.stderr  # a demonstration: it exits 0 after the verdict
    assert "FAIL: student_layer:TimeRNN is wrong on" in out.stdout
    assert "Rerun the first failing case alone:" in out.stdout
    assert "--layer student_layer:TimeRNN --case" in out.stdout


# The student's layer, importable as test_examples:StudentTimeRNN for the in-process CLI.
StudentTimeRNN = load_module("student_layer", (EXAMPLES / "student_layer.py").read_text()).TimeRNN


def test_cli_quiet_and_json_on_the_student_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    args = ["--layer", "test_examples:StudentTimeRNN", "--backend", "numeric",
            "--case", SMALL_CASES[0].id, "--quiet", "--json", str(path)]  # fmt: skip
    assert main(args) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("FAIL: test_examples:StudentTimeRNN")
    report = json.loads(path.read_text())
    assert report["verdict"] == "fail" and report["exit_code"] == 1 and report["failures"]


def pytest_args(*args: str) -> list[str]:
    """`python -m pytest ARGS` in a bare directory, with crosscheck's plugin loaded
    (through its entry point once handrnn is installed with it, else with -p)."""
    installed = any(e.value == "crosscheck.pytest_plugin" for e in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "crosscheck.pytest_plugin"]
    return ["-m", "pytest", "-p", "no:cacheprovider", *plugin, *args]


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {
        "crosscheck": "crosscheck.pytest_plugin"
    }


def test_the_students_pytest_file_fails_readably_and_in_junit_xml(tmp_path: Path) -> None:
    student_files(tmp_path, "student_layer.py", "test_my_layer.py")
    args = pytest_args("-rf", "test_my_layer.py", "--junitxml", "junit.xml",
                       "--crosscheck-backend", "numeric", "--crosscheck-cases", "6")  # fmt: skip
    out = run(args, tmp_path, env={**os.environ, "COLUMNS": "250"})
    assert out.returncode == 1, out.stdout + out.stderr  # 1: tests failed (not a crash)
    # pytest's one-line summary names the verdict, not an array or a crosscheck internal.
    summary = next(line for line in out.stdout.splitlines() if line.startswith("FAILED "))
    assert "AssertionError: FAIL: student_layer:TimeRNN is wrong on" in summary
    assert "of 6 cases" in summary  # --crosscheck-cases reached the helper
    assert "Rerun the first failing case alone:" in out.stdout

    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message", "").startswith(
        "AssertionError: FAIL: student_layer:TimeRNN is wrong on"
    )
    assert "Rerun the first failing case alone:" in (failure.text or "")


def test_a_bad_plugin_option_is_a_pytest_usage_error(tmp_path: Path) -> None:
    student_files(tmp_path, "student_layer.py", "test_my_layer.py")
    out = run(pytest_args("test_my_layer.py", "--crosscheck-cases", "0"), tmp_path)
    assert out.returncode == 4  # pytest's exit code for usage errors
    assert "--crosscheck-cases must be at least 1" in out.stderr
