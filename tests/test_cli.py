"""python -m crosscheck: arguments, output, JSON and exit codes.

Most tests call crosscheck.cli.main in-process; a few run the real command.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crosscheck_helpers import (
    SMALL_IDS,
    WRONG_FROM_STEP_2_SOURCE,
    HandrnnOracle,
    ScaledOracle,
)

from crosscheck.cli import main
from crosscheck.references import Cache
from crosscheck.render import dump_json
from crosscheck.verification import verify

NUMERIC = ["--backend", "numeric"]
PASSING_ID = "f32:N2:D3:H4:moderate:stateless:2z:3"  # T=2: WrongLate is still right
FAILING_ID = "f64:N2:D3:H4:moderate:stateful:3s,5c:4"
JSON_KEYS = {
    "schema_version", "verdict", "ok", "exit_code", "layer", "seed", "cases",
    "elapsed_s", "backends", "summary", "failures", "disagreements",
}  # fmt: skip


def cases(*ids: str) -> list[str]:
    return [a for i in ids for a in ("--case", i)]


def strict_json(text: str) -> Any:
    """json.loads that rejects NaN and Infinity, which are not JSON."""

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """cwd = tmp_path; sys.path and modules imported from tmp_path are restored after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name, mod in list(sys.modules.items()):
        if str(getattr(mod, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosscheck", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_correct_layer_exits_0_with_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*NUMERIC, *cases(*SMALL_IDS)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].startswith("PASS: handrnn:TimeRNN agrees with numeric")  # verdict first
    header = next(line for line in lines if "worst error" in line)
    assert header.split() == ["worst", "error", "threshold", "wrong", "in", "against"]
    rows = [line.split() for line in lines if line.split()[:1] and line.split()[0] in
            ("hs", "h", "dxs", "dWx", "dWh", "db", "dh")]  # fmt: skip
    assert [r[0] for r in rows] == ["hs", "h", "dxs", "dWx", "dWh", "db", "dh"]
    for r in rows:  # the worst relative error, its threshold, in how many cases wrong
        assert float(r[1]) <= float(r[2]) and r[3:6] == ["0", "of", str(len(SMALL_IDS))]
        assert r[-1] == "numeric"
    assert max(len(line) for line in lines) <= 100
    assert lines[-1] == lines[1]  # and last
    assert err == ""


def test_a_wrong_layer_exits_1_with_where_and_a_reproducer_that_fails_again(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "wrong_late.py").write_text(WRONG_FROM_STEP_2_SOURCE)
    argv = ["--layer", "wrong_late:WrongLate", *NUMERIC, *cases(PASSING_ID, FAILING_ID)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("  hs    off by 1%")]
    assert "(threshold " in lines[at] and "in 1 case; first against numeric:" in lines[at]
    assert lines[at + 1].strip() == f"case {FAILING_ID}"
    assert lines[at + 2].strip() == "segment 0: wrong from step t=2 on"
    reproducer = lines[lines.index("Rerun the first failing case alone:") + 1].strip()
    assert (
        out.rstrip().splitlines()[-1] == "FAIL: wrong_late:WrongLate is wrong on 1 of 2 cases (hs)"
    )

    # Run exactly as printed, from the same directory (python -> this interpreter).
    cmd = shlex.split(reproducer)
    assert cmd[:3] == ["python", "-m", "crosscheck"]
    again = subprocess.run([sys.executable, *cmd[1:]], cwd=workdir, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 1, again.stderr
    assert "wrong_late:WrongLate is wrong on 1 of 1 cases (hs)" in again.stdout
    assert f"case {FAILING_ID}\n        segment 0: wrong from step t=2 on" in again.stdout


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("crosscheck: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--cases", "ten"], "invalid int value: 'ten'"),
        (["--backend", "tensorflow"], "invalid choice: 'tensorflow'"),
        (["--cases", "0"], "--cases must be at least 1"),
        (["--layer", "handrnn"], "--layer must look like MODULE:ATTR"),
        (["--layer", "no_such_module_xyz:TimeRNN"], "module 'no_such_module_xyz' not found"),
        (["--layer", "handrnn:TimeRNNN"], "module 'handrnn' has no attribute 'TimeRNNN'"),
        (["--layer", "handrnn:__version__"], "handrnn:__version__ is not callable"),
        (["--case", "f32:N2:oops"], "not a case id: 'f32:N2:oops'"),
        (["--case", "f32:N2:D3:H4:moderate:stateful:3c:1"], "segment 0 cannot carry"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in one_line_error(capsys)


def test_a_layer_module_that_raises_on_import_exits_2_with_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "needs_gpu.py").write_text("raise RuntimeError('no GPU here')\n")
    (workdir / "needs_tf.py").write_text("import tensorflow_not_installed_xyz\n")
    assert main(["--layer", "needs_gpu:TimeRNN"]) == 2
    assert "importing 'needs_gpu' failed: RuntimeError: no GPU here" in one_line_error(capsys)
    assert main(["--layer", "needs_tf:TimeRNN"]) == 2
    err = one_line_error(capsys)
    assert "importing 'needs_tf' failed: ModuleNotFoundError" in err
    assert "tensorflow_not_installed_xyz" in err


def test_a_backend_that_is_not_installed_exits_2_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    assert main(["--backend", "jax", "--cases", "1"]) == 2
    err = one_line_error(capsys)
    assert "backend 'jax' needs jax, which is not installed: pip install jax" in err


@pytest.mark.parametrize(
    ("make", "option", "message"),
    [
        (lambda p: p / "missing-dir" / "report.json", "--json", "does not exist"),
        (lambda p: p, "--json", "is a directory"),
        (lambda p: (p / "a-file").touch() or p / "a-file", "--plot", "is a file"),
        (lambda p: (p / "f").touch() or p / "f" / "sub", "--plot", "cannot create it"),
    ],
)
def test_an_output_that_cannot_be_written_exits_2_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, option: str, message: str
) -> None:
    pytest.importorskip("matplotlib")
    target = make(tmp_path)
    argv = ["--layer", "no_such_module_xyz:TimeRNN", *NUMERIC, "--quiet", option, str(target)]
    assert main(argv) == 2  # the layer is never looked for: the output is checked first
    err = one_line_error(capsys)
    assert err.startswith(f"crosscheck: error: {option} {target}") and message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--memory-limit", "lots"], "not a size: 'lots'"),
        (["--memory-limit", "1M"], "at least 64M"),
    ],
)
def test_bad_limits_and_seeds_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in one_line_error(capsys)


def test_a_repeated_backend_is_checked_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*NUMERIC, *NUMERIC, *cases(PASSING_ID), "--json", "-"]) == 0
    doc = strict_json(capsys.readouterr().out)
    assert [b["name"] for b in doc["backends"]] == ["numeric"]


def test_a_layer_that_raises_during_a_case_is_a_mismatch_showing_the_exception(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "raising.py").write_text(
        "from handrnn import TimeRNN\n\n\nclass Raising(TimeRNN):\n"
        "    def backward(self, dhs):\n        raise ValueError('shapes do not align')\n"
    )
    assert main(["--layer", "raising:Raising", *NUMERIC, *cases(PASSING_ID)]) == 1
    out = capsys.readouterr().out
    assert "backward exception, in 1 case:" in out
    assert "backward raised ValueError: shapes do not align" in out
    assert "raising.py:6" in out  # where, in the user's file
    assert "FAIL: raising:Raising is wrong on 1 of 1 cases (backward)" in out


def test_json_path_gets_the_documented_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    assert main([*NUMERIC, *cases(*SMALL_IDS[:2]), "--seed", "7", "--json", str(path)]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("PASS:")
    doc = strict_json(path.read_text())
    assert set(doc) >= JSON_KEYS
    assert doc["schema_version"] == 1
    assert (doc["verdict"], doc["ok"], doc["exit_code"]) == ("pass", True, 0)
    assert (doc["layer"], doc["seed"], doc["cases"]) == ("handrnn:TimeRNN", 7, 2)
    assert doc["backends"] == [{"name": "numeric", "cases_checked": 2, "cases_skipped": 0}]
    assert doc["case_ids"] == list(SMALL_IDS[:2]) and doc["fatal"] is None
    assert {s["quantity"] for s in doc["summary"]} == {"hs", "h", "dxs", "dWx", "dWh", "db", "dh"}
    assert all(s["ok"] and s["compared"] > 0 for s in doc["summary"])
    assert doc["failures"] == [] and doc["disagreements"] == []
    assert isinstance(doc["elapsed_s"], float)


def test_json_failures_carry_the_fields_a_tool_needs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "wrong_late.py").write_text(WRONG_FROM_STEP_2_SOURCE)
    assert (
        main(["--layer", "wrong_late:WrongLate", *NUMERIC, *cases(FAILING_ID), "--json", "-"]) == 1
    )
    doc = strict_json(capsys.readouterr().out)
    assert (doc["verdict"], doc["ok"], doc["exit_code"]) == ("fail", False, 1)
    f = doc["failures"][0]
    assert (f["kind"], f["quantity"], f["case_id"], f["segment"]) == (
        "mismatch",
        "hs",
        FAILING_ID,
        0,
    )
    assert (f["first_bad_step"], f["backend"]) == (2, "numeric")
    assert f["error"] > f["threshold"] and "--case" in f["reproducer"]


def test_json_stays_valid_when_an_oracle_returns_nan() -> None:
    from crosscheck_helpers import case

    fakes = [HandrnnOracle(), ScaledOracle("nan", "db", float("nan"))]
    report = verify("handrnn:TimeRNN", cases=[case(PASSING_ID)], oracles=fakes, cache=Cache())
    doc = strict_json(dump_json(report))
    assert doc["verdict"] == "inconclusive" and doc["exit_code"] == 3
    assert doc["disagreements"][0]["oracles"] == ["handrnn-f64", "nan"]


def test_json_dash_prints_only_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*NUMERIC, *cases(PASSING_ID), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert strict_json(out)["verdict"] == "pass"
    assert err.strip().startswith("PASS:")  # the verdict goes to stderr


def test_quiet_prints_only_the_verdict_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*NUMERIC, *cases(PASSING_ID), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out == "PASS: handrnn:TimeRNN agrees with numeric on all 1 cases\n"
    assert err == ""


def test_layer_modules_resolve_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "my_rnn.py").write_text("from handrnn import TimeRNN as MyRNN\n")
    done = run_cli("--layer", "my_rnn:MyRNN", *NUMERIC, *cases(PASSING_ID), "--quiet", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "PASS: my_rnn:MyRNN agrees with numeric on all 1 cases\n"


def test_the_real_command_reports_a_missing_module_in_one_line(tmp_path: Path) -> None:
    done = run_cli("--layer", "not_here:TimeRNN", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"crosscheck: error: module 'not_here' not found (looked in the current directory "
        f"{tmp_path} and on sys.path)"
    ]


@pytest.mark.jax
def test_default_run_with_jax_passes_handrnn(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jax")
    assert main(["--backend", "jax", "--cases", "6", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "6 cases (3 float32, 3 float64), seed 3" in out
    assert "PASS: handrnn:TimeRNN agrees with jax on all 6 cases" in out


def test_ctrl_c_reports_the_cases_judged_so_far(tmp_path: Path) -> None:
    import signal
    import time

    # Far more cases than memory could hold as a list: they are generated as a stream.
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosscheck", "--backend", "numeric", "--cases", "10000000000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "crosscheck: interrupted" in err
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("INTERRUPTED after ") and "no verdict" in last


def test_output_piped_into_a_reader_that_stops_early_is_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crosscheck", *NUMERIC, *cases(*SMALL_IDS)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_the_books_layer_passes_with_a_note_and_fails_strict_or_an_explicit_float64(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crosscheck_helpers import BOOK_SOURCE

    (workdir / "book_layer.py").write_text(BOOK_SOURCE)
    both = ["--layer", "book_layer:TimeRNN", *NUMERIC, *cases(*SMALL_IDS), "--no-explain"]
    assert main(both) == 0
    out = capsys.readouterr().out
    assert "Note (float32_outputs, 2 cases): the layer computes in float32" in out
    assert "--strict makes them fail" in out
    assert main([*both, "--strict"]) == 1
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("FAIL: book_layer")
    assert main([*both, "--dtype", "float64"]) == 1  # asked for float64: float32 is wrong
    assert "float32_outputs" in capsys.readouterr().out
    f32 = ["--layer", "book_layer:TimeRNN", *NUMERIC, "--cases", "6", "--dtype", "float32"]
    assert main(f32) == 0


def test_a_second_different_exception_of_the_same_call_is_shown(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "two_faults.py").write_text(
        "from handrnn import TimeRNN\n\n\nclass TwoFaults(TimeRNN):\n"
        "    def backward(self, dhs):\n"
        "        if dhs.shape[0] == 1:\n            raise KeyError('first')\n"
        "        raise ValueError('second')\n"
    )
    ids = ("f64:N1:D1:H1:small:stateless:3z:5", PASSING_ID)
    assert main(["--layer", "two_faults:TwoFaults", *NUMERIC, *cases(*ids), "--no-explain"]) == 1
    out = capsys.readouterr().out
    assert "backward raised KeyError: 'first'" in out
    assert "and also: backward raised ValueError: second" in out


def test_backward_errors_read_backward_in_a_segment_with_its_own_batch_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "4zn3": T=4 for 3 samples. A hand-parsed id once read T=43 from that token.
    argv = ["--layer", "tests.catalog.wrong_no_branch_sum:TimeRNN", *NUMERIC, "--no-explain",
            *cases("f64:N2:D3:H4:moderate:stateless:1z,4zn3:5")]  # fmt: skip
    assert main(argv) == 1  # one step has nothing to carry: segment 0 is right
    out = capsys.readouterr().out
    assert "segment 1, backward call 0: wrong from t=2 back to t=0, right at t=3" in out
