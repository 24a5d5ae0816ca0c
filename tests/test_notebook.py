"""Notebooks: `--layer my_work.ipynb:TimeRNN` (crosscheck.notebook runs the code cells in a
worker) and a Report shown as HTML in a real Jupyter kernel (crosscheck.html).

The notebooks here are written as plain JSON; only the kernel test needs Jupyter
(nbclient, nbformat, ipykernel), and is skipped without it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from crosscheck_helpers import SMALL_CASES

from crosscheck import html as cc_html
from crosscheck.cases import parse_case
from crosscheck.notebook import (
    SKIPPED_ATTR,
    NotebookError,
    python_source,
    read_notebook,
    run_notebook,
)
from crosscheck.plots import PlotUnavailable
from crosscheck.verification import verify
from handrnn import TimeRNN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_layer.ipynb"
BUG = "layer.backward(dhs[:, t, :] + dh)"
FIX_LINE = "layer.backward(dhs[:, t, :])"
CASE_IDS = [
    "f32:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11",
    "f64:N1:D1:H1:small:stateless:3z,3z2*:5",
]
EXAMPLE_SKIPPED = [
    "cell 2: %matplotlib inline",
    "cell 3: !pip install --quiet 'handrnn[plot]'   # crosscheck (and matplotlib for its p...",
]


def notebook_json(cells: list[str | tuple[str, str]]) -> str:
    """nbformat 4 JSON: a str is a code cell, ("markdown", text) a markdown cell."""
    out = []
    for i, cell in enumerate(cells):
        kind, text = ("code", cell) if isinstance(cell, str) else cell
        lines = text.split("\n")
        source = [ln + "\n" for ln in lines[:-1]] + [lines[-1]]
        entry: dict[str, Any] = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
        if kind == "code":
            entry.update(execution_count=None, outputs=[])
        out.append(entry)
    nb = {"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1)


def write_notebook(path: Path, cells: list[str | tuple[str, str]]) -> Path:
    path.write_text(notebook_json(cells), encoding="utf-8")
    return path


def example_cells() -> list[str]:
    """The example notebook's code cells, as text."""
    nb = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def layer_cell() -> str:
    return next(c for c in example_cells() if "class TimeRNN" in c)


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Modules, sys.path, cwd and argv as they were, after a notebook ran in this process."""
    modules, path, cwd, argv = set(sys.modules), list(sys.path), os.getcwd(), list(sys.argv)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path
    assert os.getcwd() == cwd and sys.argv == argv  # run_notebook put them back


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosscheck", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# run_notebook: the namespace, and what it leaves out


@pytest.mark.usefixtures("clean_modules")
def test_the_example_notebook_runs_as_a_module_named_after_it() -> None:
    module = run_notebook(EXAMPLE)
    assert module.__name__ == "my_layer" and sys.modules["my_layer"] is module
    assert module.TimeRNN.__module__ == "my_layer" and module.RNN.__module__ == "my_layer"
    assert getattr(module, SKIPPED_ATTR) == EXAMPLE_SKIPPED
    assert module.hs.shape == (2, 5, 4)  # an ordinary cell ran
    assert "report" not in vars(module)  # the `if __name__ == "__main__":` cell did not
    assert [c.number for c in read_notebook(EXAMPLE)] == [2, 3, 4, 6, 8, 10]


@pytest.mark.parametrize(
    ("source", "python", "skipped"),
    [
        ("%matplotlib inline\nimport math", "pass\nimport math", ["%matplotlib inline"]),
        ("!pip install numpy\nx = 1", "pass\nx = 1", ["!pip install numpy"]),
        ("files = !ls\nout, err = %sx ls", "pass\npass", ["files = !ls", "out, err = %sx ls"]),
        ("np.dot?\n??np", "pass\npass", ["np.dot?", "??np"]),
        ("for i in range(2):\n    !echo $i", "for i in range(2):\n    pass", ["!echo $i"]),
        ("%time y = 2 ** 10", "y = 2 ** 10",
         ["%time y = 2 ** 10 (the magic only: the statement ran)"]),
        ("%%time\nclass A:\n    pass", "\nclass A:\n    pass",
         ["%%time (the magic only: the cell's code ran)"]),
        ("\n%%bash\necho hi\nls", "\n\n\n", ["%%bash (the whole cell)"]),
        ("%%writefile layer.py\nclass A: ...", "\n", ["%%writefile layer.py (the whole cell)"]),
        # A line that starts with % or ! inside brackets, a string or a continuation is Python.
        ("x = (10\n %3)", "x = (10\n %3)", []),
        ('s = """\n%not a magic\n!nor this\n"""', 's = """\n%not a magic\n!nor this\n"""', []),
        ("ok = 1 \\\n != 2", "ok = 1 \\\n != 2", []),
    ],
)  # fmt: skip
def test_magics_and_shell_lines_are_left_out_line_for_line(
    source: str, python: str, skipped: list[str]
) -> None:
    got, notes = python_source(source)
    assert (got, notes) == (python, skipped)
    assert got.count("\n") == source.count("\n")  # line numbers stay the cell's
    compile(got, "cell", "exec")


@pytest.mark.usefixtures("clean_modules")
def test_cells_share_one_namespace_as_in_jupyter(tmp_path: Path) -> None:
    (tmp_path / "weights.txt").write_text("3")
    path = write_notebook(tmp_path / "work.ipynb", [
        ("markdown", "# notes\n%not code"),
        "from __future__ import annotations\nimport os",
        "def f(x: Undefined) -> int:\n    return 2 * x",  # the future import holds here too
        "from pathlib import Path\nn = int(Path('weights.txt').read_text())  # in its folder",
        "display(f(n), 'shown')\nf(n)",
        'if __name__ == "__main__":\n    raise RuntimeError("not run by crosscheck")',
        "import sys\nargv = list(sys.argv)",
    ])  # fmt: skip
    module = run_notebook(path)
    assert module.f(module.n) == 6 and module.f.__annotations__["x"] == "Undefined"
    assert module.argv == [str(path.resolve())]
    assert sys.path[0] == str(tmp_path.resolve())  # its own modules import beside it
    assert getattr(module, SKIPPED_ATTR) == []


@pytest.mark.usefixtures("clean_modules")
def test_a_name_that_is_already_a_module_gets_a_suffix(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("K = 5\n")
    json_nb = write_notebook(tmp_path / "json.ipynb", ["x = 1"])
    helpers_nb = write_notebook(tmp_path / "helpers.ipynb", ["from helpers import K"])
    odd = write_notebook(tmp_path / "01 my-layer (copy).ipynb", ["class L: pass"])
    assert run_notebook(json_nb).__name__ == "json_ipynb"
    assert run_notebook(helpers_nb).K == 5  # the notebook still imports helpers.py
    assert sys.modules["helpers_ipynb"].__name__ == "helpers_ipynb"
    assert run_notebook(odd).L.__module__ == "_01_my_layer__copy_"


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["x = 1", "import math\ny = 1 / 0"],
         "bad.ipynb: cell 2 raised ZeroDivisionError: division by zero (line 2: y = 1 / 0)"),
        (["def f():\n    return {}['key']", ("markdown", "m"), "f()"],
         "bad.ipynb: cell 3 raised KeyError: 'key' (cell 1, line 2: return {}['key'])"),
        (["x = 1", "def f(:\n    pass"],
         "bad.ipynb: cell 2 has a syntax error at line 1: invalid syntax: def f(:"),
        (["raise ValueError('two\\nlines')"], "bad.ipynb: cell 1 raised ValueError: two lines"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("clean_modules")
def test_a_cell_that_raises_is_one_line_naming_the_cell(
    tmp_path: Path, cells: list[str | tuple[str, str]], message: str
) -> None:
    path = write_notebook(tmp_path / "bad.ipynb", cells)
    with pytest.raises(NotebookError) as info:
        run_notebook(path)
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text
    assert "bad" not in sys.modules  # a failed notebook leaves no half-made module


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"cells": [', "x.ipynb is not a notebook: not JSON (Expecting value at line 1"),
        ("[1, 2]", "x.ipynb is not a notebook: no list of cells in it"),
        ('{"nbformat": 3, "worksheets": []}', "x.ipynb is in notebook format 3, not 4"),
        ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": 5}]}',
         "x.ipynb: cell 1 has no source text"),
    ],
)  # fmt: skip
def test_what_is_not_a_notebook_is_a_notebook_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    with pytest.raises(NotebookError, match="^" + message.replace("(", r"\(")):
        run_notebook(path)


@pytest.mark.usefixtures("clean_modules")
def test_system_exit_from_a_cell_is_not_caught(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "quits.ipynb", ["import sys\nsys.exit(3)"])
    with pytest.raises(SystemExit) as info:
        run_notebook(path)
    assert info.value.code == 3 and "quits" not in sys.modules


# ---------------------------------------------------------------------------------------
# The command line: python -m crosscheck --layer NOTEBOOK.ipynb:TimeRNN


def test_cli_passes_the_example_notebook() -> None:
    out = cli("--layer", "examples/my_layer.ipynb:TimeRNN", "--backend", "numeric", "--cases", "6")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS: examples/my_layer.ipynb:TimeRNN agrees with numeric" in out.stdout


def test_cli_report_lists_the_notebook_lines_it_did_not_run() -> None:
    out = cli("--layer", "examples/my_layer.ipynb:TimeRNN", "--backend", "numeric", "--cases", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    for note in EXAMPLE_SKIPPED:
        assert out.stdout.count(note[:40]) == 1


def test_cli_fails_a_notebook_whose_layer_is_wrong(tmp_path: Path) -> None:
    wrong = layer_cell().replace(BUG, FIX_LINE)
    assert wrong != layer_cell()
    write_notebook(tmp_path / "wrong.ipynb", ["%matplotlib inline", "import numpy as np", wrong])
    out = cli("--layer", "wrong.ipynb:TimeRNN", "--backend", "numeric", "--cases", "6",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL: wrong.ipynb:TimeRNN is wrong on" in out.stdout
    assert "dh is not carried back" in out.stdout  # the diagnosis


def test_cli_names_the_notebook_cell_where_the_layer_raised(tmp_path: Path) -> None:
    line = "raise NotImplementedError('homework')"
    raising = layer_cell().replace("dt = dh_next * (1 - h_next**2)", line)
    lineno = [ln.strip() for ln in raising.split("\n")].index(line) + 1
    write_notebook(tmp_path / "raises.ipynb", ["import numpy as np", raising])
    out = cli("--layer", "raises.ipynb:TimeRNN", "--backend", "numeric", "--cases", "3",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "backward raised NotImplementedError: homework" in " ".join(out.stdout.split())
    assert f"(at raises.ipynb cell 2:{lineno}: {line})" in " ".join(out.stdout.split())


def test_cli_a_cell_that_raises_is_a_one_line_load_error(tmp_path: Path) -> None:
    write_notebook(tmp_path / "broken.ipynb", [
        "import numpy as np", layer_cell(), ("markdown", "Load the trained weights:"),
        "Wx = np.load('trained_weights.npy')",
    ])  # fmt: skip
    out = cli("--layer", "broken.ipynb:TimeRNN", "--backend", "numeric", "--cases", "2",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "crosscheck: error: broken.ipynb: cell 4 raised FileNotFoundError: [Errno 2] No such "
        "file or directory: 'trained_weights.npy' (line 1: Wx = np.load('trained_weights.npy'))"
    ]


def test_cli_a_cell_that_exits_fails_the_layer(tmp_path: Path) -> None:
    write_notebook(tmp_path / "exits.ipynb", ["import numpy as np", layer_cell(), "exit()"])
    out = cli("--layer", "exits.ipynb:TimeRNN", "--backend", "numeric", "--cases", "2",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "called exit() with exit code 0 while it was being imported" in out.stdout


# ---------------------------------------------------------------------------------------
# report_html: a self-contained fragment


class Page(HTMLParser):
    """What a reader sees: text per element class, tables as rows of cell texts, images;
    and whether every element that was opened was closed."""

    VOID = frozenset({"br", "img", "hr", "meta", "input"})

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.images: list[dict[str, str | None]] = []
        self.classes: dict[str, str] = {}
        self.pre: list[str] = []
        self.tags: set[str] = set()
        self.text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        if tag in self.VOID:
            return
        self.stack.append((tag, dict(attrs).get("class") or ""))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
        elif tag == "pre":
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        tags = [t for t, _ in self.stack]
        if "td" in tags or "th" in tags:
            self.tables[-1][-1][-1] += data
        if "pre" in tags:
            self.pre[-1] += data
        for _, cls in self.stack:
            if cls:
                self.classes[cls] = self.classes.get(cls, "") + data


def assert_self_contained(page: Page) -> None:
    assert not page.stack  # everything closed
    assert not page.tags & {"script", "link", "iframe", "style"}
    for img in page.images:
        assert (img.get("src") or "").startswith("data:image/png;base64,")


def test_html_escapes_what_the_layer_printed_and_skips_pictures_without_matplotlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = verify(TimeRNN, cases=[SMALL_CASES[2]], backends=["numeric"], isolate=False)
    report.output = "[stdout, 40 bytes]\n<script>alert('x')</script> & more"

    def no_matplotlib(*_: Any) -> Any:
        raise PlotUnavailable("no matplotlib")

    monkeypatch.setattr(cc_html, "write_plots", no_matplotlib)
    page = Page(cc_html.report_html(report))
    assert_self_contained(page)
    assert page.classes["crosscheck-verdict"].startswith("PASS")
    assert page.pre[-1].endswith("<script>alert('x')</script> & more")  # text, not markup
    assert "No pictures: matplotlib is not installed" in page.text
    assert "The layer ran in this process, not isolated (isolate=False)" in page.text


def test_html_with_nothing_to_draw_says_so() -> None:
    big = parse_case("f64:N6:D10:H10:small:stateless:64z:5")
    report = verify(TimeRNN, cases=[big], backends=["numeric"], isolate=False)
    page = Page(cc_html.report_html(report))
    assert_self_contained(page)
    assert page.classes["crosscheck-verdict"].startswith("INCONCLUSIVE")
    assert "No pictures: the report kept no case that an oracle could recompute." in page.text


def test_html_of_a_layer_that_was_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "exits.ipynb", ["import numpy as np", layer_cell(), "exit(4)"])
    report = verify("exits.ipynb:TimeRNN", cases=2, backends=["numeric"], jobs=1)
    page = Page(cc_html.report_html(report, pictures=False))
    assert_self_contained(page)
    assert page.classes["crosscheck-verdict"].startswith("FAIL")
    stopped = (
        "Stopped: The layer's module called exit() with exit code 4 while it was being imported."
    )
    assert stopped in page.text and "2 cases were not run after that." in page.text
    failures = next(t for t in page.tables if t[0][1:2] == ["largest error"])
    assert failures[1][0] == "import" and failures[1][3] == "before any case"
    assert "Where it ran: the code cells of" in page.text


def test_long_output_is_shortened() -> None:
    text = "\n".join(f"line {i}" for i in range(30)) + "\n" + "x" * 300
    short = cc_html.shorten_output(text).splitlines()
    assert short[:2] == ["line 0", "line 1"] and short[6] == "[... 19 lines ...]"
    assert len(short) == 13 and short[-1] == "x" * 97 + "..."


# ---------------------------------------------------------------------------------------
# A real kernel: verify(...) in a notebook, the report displayed as HTML


def kernel_cells() -> list[str | tuple[str, str]]:
    """A notebook that defines a right and a wrong layer, checks both and shows the reports."""
    wrong = layer_cell().replace(BUG, FIX_LINE).replace("class TimeRNN", "class WrongTimeRNN")
    return [
        "%matplotlib inline",
        "import numpy as np\nfrom crosscheck import parse_case, verify\n"
        f"CASES = [parse_case(i) for i in {CASE_IDS!r}]",
        layer_cell(),
        wrong,
        'report = verify(TimeRNN, cases=CASES, backends=["numeric"])\nreport',
        "from IPython.display import HTML\nfrom crosscheck.html import report_html\n"
        "HTML(report_html(report))",
        'wrong = verify(WrongTimeRNN, cases=CASES, backends=["numeric"])\nHTML(report_html(wrong))',
        "wrong",
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The outputs of each code cell of kernel_cells(), run in one real ipykernel."""
    with warnings.catch_warnings():  # Jupyter's own deprecation warnings are not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        nbclient = pytest.importorskip("nbclient")
        nbformat = pytest.importorskip("nbformat")
        pytest.importorskip("ipykernel")
        nb = nbformat.reads(notebook_json(kernel_cells()), as_version=4)
        workdir = tmp_path_factory.mktemp("kernel")
        client = nbclient.NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": workdir}}
        )
        # The kernel imports the crosscheck under test, wherever it runs.
        client.execute(env={**os.environ, "PYTHONPATH": str(ROOT)})
    return [cell.outputs for cell in nb.cells]


def html_of(outputs: list[Any]) -> str:
    data = [
        o["data"] for o in outputs if o.get("output_type") in ("execute_result", "display_data")
    ]
    assert data and "text/html" in data[-1], outputs
    return str(data[-1]["text/html"])


def summary_table(page: Page) -> list[list[str]]:
    return next(t for t in page.tables if t and t[0][1:2] == ["vs numeric"])


def test_a_passing_report_shows_as_html_in_a_notebook(executed: list[Any]) -> None:
    page = Page(html_of(executed[5]))
    assert_self_contained(page)
    assert (
        page.classes["crosscheck-verdict"]
        == "PASS__main__:TimeRNN agrees with numeric on all 2 cases"
    )
    table = summary_table(page)
    assert [row[0] for row in table[1:]] == ["hs", "h", "dxs", "dWx", "dWh", "db", "dh", "cases"]
    for row in table[1:-1]:  # "1.1e-07 ≤ 3.0e-05"
        error, sign, threshold = row[1].split()
        assert sign == "≤" and float(error) <= float(threshold)
    assert table[-1][1] == "2"
    assert "not isolated" in page.text  # a class from a cell runs in the kernel
    assert len(page.images) == 2 and "Pictures of the longest case" in page.text
    for img in page.images:
        png = base64.b64decode((img["src"] or "").partition(",")[2])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_report_shows_the_failures_the_cause_and_a_rerun(executed: list[Any]) -> None:
    page = Page(html_of(executed[6]))
    assert_self_contained(page)
    assert page.classes["crosscheck-verdict"].startswith(
        "FAIL__main__:WrongTimeRNN is wrong on 2 of 2 cases"
    )
    failing = [row[0] for row in summary_table(page)[1:] if ">" in row[1]]
    assert failing == ["dxs", "dWx", "dWh", "db", "dh"]
    failures = next(t for t in page.tables if t[0][1:2] == ["largest error"])
    assert [row[0] for row in failures[1:]] == failing
    assert failures[1][3].startswith(CASE_IDS[0])
    assert "Likely cause" in page.text and "dh is not carried back" in page.text
    assert "Smallest failing case" in page.text
    # A class defined in a cell cannot be rerun from a shell: the rerun is a verify call.
    assert any(p.startswith("from crosscheck import parse_case, verify\nverify(WrongTimeRNN,")
               for p in page.pre)  # fmt: skip
    assert any("layer " in p and "reference " in p for p in page.pre)  # the numbers
    assert len(page.images) == 2 and "Pictures of the first failing case" in page.text


def test_the_report_object_itself_displays_as_html(executed: list[Any]) -> None:
    for cell, word in ((4, "PASS"), (7, "FAIL")):
        page = Page(html_of(executed[cell]))
        assert page.classes["crosscheck-verdict"].startswith(word)
        assert summary_table(page)


def test_a_notebook_that_calls_verify_at_top_level_is_told_where_the_call_belongs(
    tmp_path: Path,
) -> None:
    cells = [layer_cell(), "from crosscheck import verify\nverify(TimeRNN, cases=2)"]
    write_notebook(tmp_path / "eager.ipynb", cells)
    out = cli("--layer", "eager.ipynb:TimeRNN", "--backend", "numeric", "--cases", "2",
              cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "if __name__ == '__main__':" in out.stderr and "cell 2" in out.stderr
