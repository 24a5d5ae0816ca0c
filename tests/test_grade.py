"""`crosscheck grade`: a class of submissions (tests/submissions/) graded end to end.

The class is graded once per test session, in a subprocess, as an instructor runs it
(`python -m crosscheck.grade SUBMISSIONS --out OUT`, numeric backend, 6 cases, short
limits), and the tests read what it wrote: the CSV, the JSON, the HTML page (in a real
headless Chromium when one is installed), and Gradescope's results.json written by the
bundle's run_autograder against a fake /autograder tree. The rubric's charging rules
are tested on hand-made reports.
"""

from __future__ import annotations

import csv
import html.parser
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tomllib

from crosscheck import grade, gradebook, rubric
from crosscheck.cases import parse_case
from crosscheck.report import Failure, Report

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
FAST = ["--backend", "numeric", "--cases", "6", "--timeout", "2", "--memory-limit", "512M"]

# name -> (verdict, score, status, words the table's "why" or the reason contains)
EXPECTED: dict[str, tuple[str, float, str, tuple[str, ...]]] = {
    "alice_correct.py": ("pass", 100, "graded", ()),
    "bob_vectorized.py": ("pass", 100, "graded", ()),
    "carol_notebook.ipynb": ("pass", 100, "graded", ()),
    "dave_folder/": ("pass", 100, "graded", ()),
    "erin_copy.py": ("pass", 100, "graded", ()),
    "frank_book.py": ("pass", 100, "graded", ("float32_outputs",)),
    "gina_handrnn.py": ("pass", 100, "graded", ()),
    "hank_no_branch_sum.py": ("fail", 50, "graded", ("not added",)),
    "ivy_db_mean.py": ("fail", 75, "graded", ("1/n",)),
    "jack_set_state_ignored.py": ("fail", 90, "graded", ("set_state",)),
    "kim_no_bias.py": ("fail", 20, "graded", ("bias",)),
    "liam_params_copied.py": ("fail", 90, "graded", ("params",)),
    "maya_grads_last_step.py": ("fail", 75, "graded", ("contribution",)),
    "nick_syntax_error.py": ("fail", 0, "not loaded", ("syntax error (line 7)",)),
    "olga_no_class.py": ("fail", 0, "not loaded", ("no such class", "timernn")),
    "pete_hang.py": ("fail", 0, "stopped", ("time limit", "forward")),
    "quinn_exit.py": ("fail", 0, "stopped", ("exited (code 0)", "forward")),
    "rosa_numpy_patch.py": ("fail", 20, "graded", ("hs",)),
    "sam_missing_package.py": ("fail", 0, "not loaded", ("missing package rnn_helpers_of_sam",)),
    "tara_print.py": ("pass", 100, "graded", ()),
    "uma_memory.py": ("fail", 0, None, ()),  # MemoryError, or the time limit under load
    "vic_sys_exit.py": ("fail", 0, "graded", ("systemexit",)),
    "wes_correct_float64.py": ("pass", 100, "graded", ()),
}
# Points per category of the default rubric: forward, backward, weights, state, protocol.
CATEGORY_POINTS = {
    "hank_no_branch_sum.py": (30, 0, 0, 10, 10),
    "ivy_db_mean.py": (30, 25, 0, 10, 10),
    "jack_set_state_ignored.py": (30, 25, 25, 0, 10),
    "kim_no_bias.py": (0, 0, 0, 10, 10),
    "liam_params_copied.py": (30, 25, 25, 10, 0),
    "maya_grads_last_step.py": (30, 25, 0, 10, 10),
}


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kw
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Grade tests/submissions once: {"out", "rc", "stderr", "seconds", "rows", "json"}."""
    out = tmp_path_factory.mktemp("gradebook")
    start = time.perf_counter()
    proc = _run(["-m", "crosscheck.grade", "tests/submissions", "--out", str(out), *FAST])
    seconds = time.perf_counter() - start
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as fh:
        rows = {r["submission"]: r for r in csv.DictReader(fh)}
    book = json.loads((out / "gradebook.json").read_text(encoding="utf-8"))
    return {"out": out, "rc": proc.returncode, "stderr": proc.stderr, "seconds": seconds,
            "rows": rows, "json": book}  # fmt: skip


def test_grading_completes_with_exit_code_0_whatever_the_verdicts(graded: dict[str, Any]) -> None:
    assert graded["rc"] == 0, graded["stderr"][-3000:]
    for name in ("gradebook.csv", "gradebook.json", "index.html"):
        assert (graded["out"] / name).stat().st_size > 0
    # One progress line per submission, and the summary.
    progress = [ln for ln in graded["stderr"].splitlines() if ln.startswith("[")]
    assert len(progress) == len(EXPECTED)
    assert "23 submissions: 9 pass, 14 fail, 0 inconclusive" in graded["stderr"]


def test_every_submission_has_its_row_verdict_score_and_reason(graded: dict[str, Any]) -> None:
    rows = graded["rows"]
    assert set(rows) == set(EXPECTED)
    for name, (verdict, score, status, words) in EXPECTED.items():
        row = rows[name]
        assert row["verdict"] == verdict, (name, row)
        assert float(row["score"]) == score, (name, row)
        assert float(row["max_score"]) == 100
        if status is not None:
            assert row["status"] == status, (name, row)
        said = (row["why"] + " " + row["reason"] + " " + row["notes"]).lower()
        for w in words:
            assert w in said, (name, w, said)
        assert row["reason"], name
        assert float(row["seconds"]) >= 0
    for name, points in CATEGORY_POINTS.items():
        got = tuple(float(rows[name][c]) for c in rubric.CATEGORIES)
        assert got == points, (name, got)
    # Reproducers name the submission as given, never the grader's private copy.
    assert rows["dave_folder/"]["spec"] == "tests/submissions/dave_folder/time_layers.py:TimeRNN"
    assert "crosscheck-grade-" not in (graded["out"] / "gradebook.csv").read_text()
    assert "crosscheck-grade-" not in (graded["out"] / "gradebook.json").read_text()


def test_hostile_submissions_say_what_happened(graded: dict[str, Any]) -> None:
    rows = graded["rows"]
    assert "ran past the time limit of 2 s in forward()" in rows["pete_hang.py"]["reason"]
    assert "exit code 0" in rows["quinn_exit.py"]["reason"]
    assert "TimeRnn" in rows["olga_no_class.py"]["reason"]  # the classes found, and a hint
    assert "did you mean TimeRnn?" in rows["olga_no_class.py"]["reason"]
    assert "expected ':'" in rows["nick_syntax_error.py"]["reason"]
    assert "No module named 'rnn_helpers_of_sam'" in rows["sam_missing_package.py"]["reason"]
    uma = rows["uma_memory.py"]["reason"].lower() + rows["uma_memory.py"]["why"].lower()
    assert "memory" in uma or "time limit" in uma
    # A NumPy patch in the worker cannot reach the references: hs is wrong, as it is.
    assert rows["rosa_numpy_patch.py"]["failed_quantities"].startswith("hs h")


def test_csv_cells_a_spreadsheet_would_evaluate_are_quoted() -> None:
    assert gradebook._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert gradebook._cell("-1") == "'-1"
    assert gradebook._cell(-1.0) == -1.0
    assert gradebook._cell("fine") == "fine"


def test_flags_duplicates_and_framework_imports_never_deduct(graded: dict[str, Any]) -> None:
    rows = graded["rows"]
    flagged = {name: row["flags"] for name, row in rows.items() if row["flags"]}
    assert flagged == {
        "alice_correct.py": "same code as erin_copy.py",
        "erin_copy.py": "same code as alice_correct.py",
        "gina_handrnn.py": "imports handrnn (source and worker)",
    }
    assert rows["alice_correct.py"]["code_hash"] == rows["erin_copy.py"]["code_hash"]
    assert rows["alice_correct.py"]["code_hash"] != rows["bob_vectorized.py"]["code_hash"]
    by_name = {s["submission"]: s for s in graded["json"]["submissions"]}
    assert by_name["gina_handrnn.py"]["imports"] == {"source": ["handrnn"], "worker": ["handrnn"]}
    assert by_name["alice_correct.py"]["duplicate_of"] == ["erin_copy.py"]


def test_json_holds_the_settings_and_every_full_report(graded: dict[str, Any]) -> None:
    book = graded["json"]
    assert book["schema_version"] == 1
    assert book["complete"] is True
    assert book["settings"]["cases"] == 6
    assert book["settings"]["backends"] == ["numeric"]
    assert book["settings"]["timeout"] == 2
    assert book["settings"]["memory_limit"] == 512 * 2**20
    assert book["rubric"]["points"]["forward"] == 30
    assert any("README.md" in s for s in book["skipped"])
    assert [s["submission"] for s in book["submissions"]] == sorted(EXPECTED, key=str.lower)
    for s in book["submissions"]:
        assert s["verdict"] == graded["rows"][s["submission"]]["verdict"]
        assert s["score"] == float(graded["rows"][s["submission"]]["score"])
        if s["status"] == "not loaded":
            assert s["report"] is None and s["load_error"]
            continue
        report = s["report"]
        assert report["schema_version"] == 1
        assert report["verdict"] == s["verdict"]
        assert len(report["case_ids"]) == 6
        assert {"failures", "summary", "diagnosis", "smallest_case", "notes"} <= set(report)
        assert sum(c["max_points"] for c in s["categories"].values()) == 100
    frank = next(s for s in book["submissions"] if s["submission"] == "frank_book.py")
    assert "float32_outputs" in frank["report"]["notes"]
    tara = next(s for s in book["submissions"] if s["submission"] == "tara_print.py")
    assert "bytes left out" in tara["report"]["output"]  # 48 MB printed, kept shortened
    hank = next(s for s in book["submissions"] if s["submission"] == "hank_no_branch_sum.py")
    assert hank["likely_cause"] and hank["report"]["smallest_reproducer"].startswith(
        "python -m crosscheck --layer tests/submissions/hank_no_branch_sum.py:TimeRNN --case"
    )


class _Page(html.parser.HTMLParser):
    """Rows of the gradebook table, and every external reference of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.external: list[str] = []
        self.sorted = ""
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-name"):
            self.rows.append(str(a["data-name"]))
        if tag == "table" and a.get("id") == "grades":
            self.sorted = a.get("data-sorted") or ""
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value and not value.startswith(("#", "data:")):
                self.external.append(value)
        if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images += 1
        if tag in ("link", "iframe", "object", "embed"):
            self.external.append(tag)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_index_html_is_self_contained_and_escapes_what_students_wrote(
    graded: dict[str, Any],
) -> None:
    text = (graded["out"] / "index.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert page.external == []
    assert page.rows == sorted(EXPECTED, key=str.lower)
    # Two pictures per failing submission that was run and kept a case, none for passes.
    assert page.images >= 2 * 7
    assert "<script>alert(" not in text
    assert "&lt;script&gt;alert(&#x27;Tara was here&#x27;)&lt;/script&gt;" in text
    assert text.count("<script>") == 1  # crosscheck's own sorting script, nothing else
    for needle in ("Likely cause", "Smallest failing case", "Rerun it", "python -m crosscheck"):
        assert needle in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_index_html_sorts_in_a_real_browser(graded: dict[str, Any], tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium here (apt-get install -y chromium) to load index.html in")
    url = (graded["out"] / "index.html").as_uri()
    rows = graded["rows"]

    def dom(query: str) -> _Page:
        proc = _browser(binary, tmp_path / f"profile{len(query)}", "--virtual-time-budget=5000",
                        "--dump-dom", f"{url}?{query}")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return _parse(proc.stdout)

    by_score = dom("sort=score&order=desc")
    assert by_score.sorted == "score:desc"
    scores = [float(rows[n]["score"]) for n in by_score.rows]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(EXPECTED)
    assert by_score.rows[:2] == ["alice_correct.py", "bob_vectorized.py"]  # stable: ties keep order
    # A click on a header sorts (numbers: largest first), a second click reverses.
    once = dom("click=score")
    assert [float(rows[n]["score"]) for n in once.rows] == scores
    twice = dom("click=score,score")
    assert twice.sorted == "score:asc"
    assert [float(rows[n]["score"]) for n in twice.rows] == sorted(scores)
    by_name = dom("sort=submission&order=desc")
    assert by_name.rows == sorted(EXPECTED, key=str.lower, reverse=True)
    shot = tmp_path / "gradebook.png"
    proc = _browser(binary, tmp_path / "shot", "--hide-scrollbars", "--window-size=1400,1000",
                    "--virtual-time-budget=5000", f"--screenshot={shot}",
                    f"{url}?sort=score&order=desc")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("CROSSCHECK_KEEP_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["CROSSCHECK_KEEP_SCREENSHOT"])


# --------------------------------------------------------------------------------------
# Gradescope: the bundle's run_autograder against a fake /autograder tree.


@pytest.fixture(scope="module")
def autograder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked bundle (source tree, numeric backend, 6 cases) in ROOT/source."""
    root = tmp_path_factory.mktemp("autograder")
    bundle = root / "autograder.zip"
    proc = _run(["-m", "crosscheck.gradescope", str(bundle), "--source", "--backend", "numeric",
                 "--cases", "6", "--timeout", "2", "--memory-limit", "512M"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        for name in ("setup.sh", "run_autograder"):
            assert (zf.getinfo(name).external_attr >> 16) & 0o111, name  # executable
        zf.extractall(root / "source")
    assert {"setup.sh", "run_autograder", "rubric.toml", "README.txt"} <= set(names)
    assert "handrnn-src/crosscheck/default_rubric.toml" in names
    assert "handrnn-src/pyproject.toml" in names
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(root / "source" / script)]).returncode == 0
    return root


def _autograde(root: Path, files: dict[str, Path], python: str = sys.executable) -> dict[str, Any]:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    for name, src in files.items():
        shutil.copyfile(src, submission / name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "CROSSCHECK_PYTHON": python}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads((root / "results" / "results.json").read_text())
    return result


def test_run_autograder_writes_gradescope_results(autograder: Path) -> None:
    got = _autograde(autograder, {"my_layer.py": SUBMISSIONS / "ivy_db_mean.py"})
    assert got["score"] == 75
    assert isinstance(got["execution_time"], int)
    assert "FAIL: ./my_layer.py:TimeRNN is wrong" in got["output"]
    assert "python -m crosscheck --layer ./my_layer.py:TimeRNN --case" in got["output"]
    tests = {t["name"].split(" (")[0]: t for t in got["tests"]}
    assert list(tests) == ["Forward pass", "Backward pass", "Weight gradients",
                           "State handling", "Protocol"]  # fmt: skip
    assert sum(t["max_score"] for t in got["tests"]) == 100
    assert tests["Weight gradients"]["score"] == 0
    assert "db: mismatch" in tests["Weight gradients"]["output"]
    assert tests["Forward pass"]["score"] == 30
    assert all(t["visibility"] == "visible" for t in got["tests"])


def test_run_autograder_grades_a_notebook_and_flags_for_staff_only(autograder: Path) -> None:
    got = _autograde(autograder, {"homework.ipynb": SUBMISSIONS / "carol_notebook.ipynb"})
    assert got["score"] == 100
    got = _autograde(autograder, {"layer.py": SUBMISSIONS / "gina_handrnn.py"})
    assert got["score"] == 100
    staff = [t for t in got["tests"] if t["visibility"] == "hidden"]
    assert len(staff) == 1 and staff[0]["max_score"] == 0
    assert "imports handrnn" in staff[0]["output"]


def test_run_autograder_explains_a_submission_that_does_not_load(autograder: Path) -> None:
    got = _autograde(autograder, {"layer.py": SUBMISSIONS / "nick_syntax_error.py"})
    assert got["score"] == 0
    assert "could not be loaded" in got["output"] and "SyntaxError" in got["output"]


def test_run_autograder_always_writes_results(autograder: Path) -> None:
    got = _autograde(autograder, {"layer.py": SUBMISSIONS / "alice_correct.py"}, python="false")
    assert got["score"] == 0
    assert "could not grade this submission" in got["output"]


# --------------------------------------------------------------------------------------
# Usage errors, and reading submissions without running them.


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "out")]
    assert grade.main([str(tmp_path / "nowhere"), *out]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert grade.main([str(tmp_path / "empty"), *out]) == 2
    assert "no submissions" in capsys.readouterr().err
    assert grade.main([str(SUBMISSIONS)]) == 2
    assert "--out" in capsys.readouterr().err
    assert grade.main([str(SUBMISSIONS), *out, "--cases", "0"]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[points]\nforward = -3\n")
    assert grade.main([str(SUBMISSIONS), *out, "--rubric", str(bad)]) == 2
    assert "[points] forward must be a number, 0 or more" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert grade.main([str(SUBMISSIONS), "--out", str(tmp_path / "file")]) == 2
    assert grade.main([str(SUBMISSIONS), *out, "--layer-attr", "not a name"]) == 2


def test_analyse_finds_the_class_without_running_anything() -> None:
    src = '"""Doc."""\nimport os\nos._exit(3)\nclass RNN: pass\nclass TimeRNN(RNN):\n    pass\n'
    info = grade.analyse(src, "TimeRNN")
    assert info.binds == "class" and info.classes == ["RNN", "TimeRNN"] and info.error is None
    assert grade.analyse("from handrnn import TimeRNN\n", "TimeRNN").binds == "imported"
    assert grade.analyse("from x import *\n", "TimeRNN").binds == "star"
    assert grade.analyse("TimeRNN = make()\n", "TimeRNN").binds == "assigned"
    assert (
        grade.analyse("try:\n    class TimeRNN: pass\nexcept: pass\n", "TimeRNN").binds == "class"
    )
    assert grade.analyse("def f():\n    class TimeRNN: pass\n", "TimeRNN").binds == "absent"
    assert grade.analyse("class A:\n  def f(self)\n", "A").error.startswith("SyntaxError")
    assert grade.analyse("x = 1\0\n", "A").error is not None
    assert grade.analyse("(" * 300_000, "A").error is not None  # never a crash of the grader
    imports = "import torch.nn\nfrom jax import numpy\n__import__('autograd')\nimport numpy\n"
    assert grade.analyse(imports, "A").imports == {"torch", "jax", "autograd"}
    # The code hash ignores docstrings, comments and layout, not the code.
    a = grade.analyse('"""A."""\nclass T:\n    """t"""\n    x = 1  # one\n', "T")
    b = grade.analyse("# other\nclass T:\n\n    x = 1\n", "T")
    c = grade.analyse("class T:\n    x = 2\n", "T")
    assert a.normalized == b.normalized != c.normalized


def test_a_folder_submission_is_graded_by_the_file_that_defines_the_class() -> None:
    subs, skipped = grade.discover(SUBMISSIONS, "subs", "TimeRNN", single=False)
    dave = next(s for s in subs if s.name == "dave_folder/")
    assert dave.layer == SUBMISSIONS / "dave_folder" / "time_layers.py"
    assert dave.spec_shown == os.path.join("subs", "dave_folder", "time_layers.py")
    assert sorted(skipped) == ["README.md: not a .py file, a notebook or a folder",
                               "ruff.toml: not a .py file, a notebook or a folder"]  # fmt: skip
    olga = next(s for s in subs if s.name == "olga_no_class.py")
    assert olga.problem is not None and "classes found: RNN, TimeRnn" in olga.problem


# --------------------------------------------------------------------------------------
# The rubric, on hand-made reports.

CHAIN = "f32:N2:D3:H4:moderate:stateful:7z,7c2:123"  # segment 0 fresh, segment 1 carried
SET_FIRST = "f32:N2:D3:H4:moderate:stateful:7s,7c:456"  # segment 0 starts from set_state


def _report(*failures: Failure, chained: bool = True, judged: int = 4) -> Report:
    """A report of `judged` cases, every quantity compared, with `failures`."""
    r = Report("x.py:TimeRNN", 0, ["numeric"])
    r.checked = {"numeric": judged}
    for q in rubric.QUANTITY_CATEGORY:
        for i in range(judged + (1 if chained else 0)):
            r.cell("numeric", q).add(1e-7, 1e-4, f"case{i}")
    for f in failures:
        r.add_failure(f, parse_case(f.case_id) if f.case_id else None)
    return r


def _fail(q: str, case: str = CHAIN, segment: int = 0, call: int | None = 0,
          kind: str = "mismatch") -> Failure:  # fmt: skip
    return Failure(kind, q, case, segment, call, f"{q} is wrong", "python -m crosscheck ...")


def _points(score: rubric.Score) -> dict[str, float]:
    return {c.name: c.points for c in score.categories}


DEFAULT = rubric.load_rubric()


def test_the_default_rubric_file_is_the_documented_default() -> None:
    data = tomllib.loads(rubric.DEFAULT_RUBRIC_FILE.read_text(encoding="utf-8"))
    assert rubric.rubric_from_dict(data) == rubric.rubric_from_dict({})
    assert data["points"] == rubric.DEFAULT["points"]
    assert DEFAULT.max_score == 100 and DEFAULT.mode == "all_or_nothing"


def test_a_wrong_value_at_a_fresh_position_costs_its_category() -> None:
    s = rubric.score_report(_report(_fail("hs", call=None), _fail("dWh")), DEFAULT)
    assert _points(s) == {"forward": 0, "backward": 25, "weight_gradients": 0, "state": 10,
                          "protocol": 10}  # fmt: skip
    assert s.total == 45 and s.status == "graded"
    assert "hs: mismatch in 1 case; first: hs is wrong" in s.category("forward").lost[0]


def test_a_value_wrong_only_where_the_state_matters_costs_state() -> None:
    carried = _fail("hs", segment=1, call=None)
    second_call = _fail("dWx", segment=1, call=1)
    set_first = _fail("h", case=SET_FIRST, call=None)
    s = rubric.score_report(_report(carried, second_call, set_first), DEFAULT)
    assert _points(s)["state"] == 0 and s.total == 90
    # ... unless the same quantity is also wrong where the layer starts fresh.
    s = rubric.score_report(_report(carried, _fail("hs", call=None)), DEFAULT)
    assert _points(s)["forward"] == 0 and _points(s)["state"] == 10
    # A state mistake the diagnosis names costs state too.
    s = rubric.score_report(_report(), DEFAULT, causes=["set_state_ignored"])
    assert _points(s)["state"] == 0


def test_protocol_exceptions_and_shapes_cost_protocol() -> None:
    for kind, q in (("protocol", "params"), ("exception", "forward"), ("shape", "hs")):
        s = rubric.score_report(_report(_fail(q, kind=kind, call=None)), DEFAULT)
        assert _points(s)["protocol"] == 0 and s.total == 90, kind


def test_a_category_never_compared_earns_nothing() -> None:
    r = Report("x.py:TimeRNN", 0, ["numeric"])
    r.checked = {"numeric": 3}
    for q in ("hs", "h"):
        r.cell("numeric", q).add(1e-7, 1e-4, "c")
    s = rubric.score_report(r, DEFAULT)
    assert _points(s) == {"forward": 30, "backward": 0, "weight_gradients": 0, "state": 0,
                          "protocol": 10}  # fmt: skip
    assert "never compared" in s.category("backward").lost[0]
    assert "two or more segments" in s.category("state").lost[0]
    assert rubric.score_report(Report("x", 0, ["numeric"]), DEFAULT).total == 0


def test_a_stopped_layer_scores_the_fatal_score() -> None:
    r = _report()
    r.fatal = "The layer ran past the time limit of 2 s in forward() of segment 0 of case x."
    s = rubric.score_report(r, DEFAULT)
    assert s.total == 0 and s.status == "stopped"
    assert all("stopped" in c.lost[0] for c in s.categories)
    kind = rubric.rubric_from_dict({"fatal": {"score": 5}})
    assert rubric.score_report(r, kind).total == 5
    assert rubric.score_load_error("no class", kind).total == 0
    assert rubric.score_load_error("no class", rubric.rubric_from_dict(
        {"load_error": {"score": 2}})).total == 2  # fmt: skip


def test_notes_cost_what_the_rubric_says_and_per_case_scoring() -> None:
    r = _report()
    r.add_note("float32_outputs", "hs is float32", CHAIN)
    assert rubric.score_report(r, DEFAULT).total == 100
    costly = rubric.rubric_from_dict({"notes": {"float32_outputs": 5}})
    s = rubric.score_report(r, costly)
    assert s.total == 95 and s.deductions == (("float32_outputs", 5.0),)
    per_case = rubric.rubric_from_dict({"scoring": {"mode": "per_case"}, "points": {"state": 0}})
    s = rubric.score_report(_report(_fail("db"), judged=4), per_case)
    assert _points(s)["weight_gradients"] == 18.75 and s.max_score == 90


def test_bad_rubrics_are_one_line_errors(tmp_path: Path) -> None:
    cases = {
        "[pints]\nforward = 1\n": "unknown section [pints]",
        "[points]\nfoward = 1\n": "unknown key 'foward' in [points]",
        "[points]\nforward = 'ten'\n": "must be a number",
        "[scoring]\nmode = 'curve'\n": "mode must be one of",
        "[points\n": "not valid TOML",
    }
    for text, words in cases.items():
        path = tmp_path / "r.toml"
        path.write_text(text)
        with pytest.raises(rubric.RubricError, match=words.replace("[", r"\[")):
            rubric.load_rubric(path)
    with pytest.raises(rubric.RubricError, match="cannot read"):
        rubric.load_rubric(tmp_path / "missing.toml")


def test_a_crosscheck_failure_on_one_submission_is_a_row_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copyfile(SUBMISSIONS / "wes_correct_float64.py", subs / "wes.py")
    shutil.copyfile(SUBMISSIONS / "nick_syntax_error.py", subs / "nick.py")

    def broken(*args: Any, **kwargs: Any) -> Report:
        raise RuntimeError("an oracle fell over")

    monkeypatch.setattr(grade, "verify", broken)
    out = tmp_path / "out"
    assert grade.main([str(subs), "--out", str(out), "--backend", "numeric", "--quiet"]) == 0
    capsys.readouterr()
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as fh:
        rows = {r["submission"]: r for r in csv.DictReader(fh)}
    assert rows["wes.py"]["verdict"] == "inconclusive" and rows["wes.py"]["status"] == "error"
    assert "an oracle fell over" in rows["wes.py"]["reason"]
    assert rows["wes.py"]["flags"] == "review: crosscheck failed on this submission"
    assert rows["nick.py"]["status"] == "not loaded"  # found by ast: verify never called


def test_gradebook_json_keeps_the_first_failures_of_each_report(graded: dict[str, Any]) -> None:
    for s in graded["json"]["submissions"]:
        if s["report"] is not None:
            assert len(s["report"]["failures"]) <= 100
            assert s["report"]["failures_left_out"] >= 0


def test_cs231n_style_modules_are_graded_through_the_command(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("correct.py", "wrong_no_branch_sum.py", "wrong_ignores_h0.py"):
        shutil.copy(ROOT / "tests" / "cs231n" / name, subs / name)
    out = tmp_path / "out"
    proc = _run(["-m", "crosscheck", "grade", str(subs), "--out", str(out), "--api", "cs231n",
                 *FAST])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as fh:
        rows = {r["submission"]: r for r in csv.DictReader(fh)}
    assert {k: (r["verdict"], float(r["score"])) for k, r in rows.items()} == {
        "correct.py": ("pass", 100.0),
        "wrong_no_branch_sum.py": ("fail", 50.0),  # forward right, every gradient wrong
        "wrong_ignores_h0.py": ("fail", 90.0),  # right from zeros, wrong from a given h0
    }
    assert rows["wrong_no_branch_sum.py"]["failed_quantities"] == "dxs dWx dWh db dh"
