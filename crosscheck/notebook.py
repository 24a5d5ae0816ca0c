"""Run a Jupyter notebook's code cells as a module, for a worker to find the layer in.

    module = run_notebook(Path("my_work.ipynb"))   # in a worker: the cells have run
    module.TimeRNN                                 # what the cells defined
    module.__crosscheck_skipped__                  # ["cell 2: %matplotlib inline", ...]

Standard library only: a notebook is JSON (nbformat 4), and Jupyter is not needed to
run its code. The code cells run in order, as Jupyter's "Run All" would, in one fresh
module namespace named after the notebook (my_work.ipynb: module `my_work`, registered
in sys.modules, so classes get `__module__ == "my_work"`; `my_work_ipynb` if that name
is already a module, such as a my_work.py beside the notebook). While they run, the
current directory is the notebook's (as in Jupyter), the notebook's directory is first
on sys.path, and sys.argv is [the notebook's path].

What IPython would not run as Python is not run, and is recorded, one entry per line
or cell, in `__crosscheck_skipped__` (and by `read_notebook`, without running anything):
line magics (`%matplotlib inline`), shell lines (`!pip install ...`, `files = !ls`),
help lines (`np.dot?`) and cell magics (`%%bash`, `%%writefile`: the whole cell). The
magics whose code IPython runs in the notebook's namespace lose only the magic:
`%%time` and `%%capture` cells and `%time STATEMENT` lines run their code. Each skipped
line becomes a `pass` at its indentation, so the cell's line numbers stay the same.

Differences from Jupyter, on purpose:
- `__name__` is the module's name, not "__main__": code under
  `if __name__ == "__main__":` runs in Jupyter and NOT here. That is the place for the
  notebook's own training loop, plots and verify() calls, which a check must not rerun.
- A cell's last expression is not displayed; `display(...)` prints its arguments' repr.
- Everything else runs: a cell that trains for minutes trains here too, and all cells
  share the worker's import time limit (3 x --timeout, at least 10 s; then the layer
  fails: "ran past the time limit ... while its module was being imported"). Each
  worker process (--jobs) runs the notebook once.

A notebook that is not JSON, not nbformat 4, or whose cell raises an exception (a
syntax error included) raises NotebookError, whose message is one line naming the cell
(its position among all cells, markdown included, counting from 1). SystemExit,
KeyboardInterrupt and other BaseExceptions from a cell propagate unchanged.
"""

from __future__ import annotations
import __future__

import functools
import io
import json
import linecache
import operator
import os
import re
import sys
import tokenize
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

SKIPPED_ATTR = "__crosscheck_skipped__"
# Cell magics whose body IPython runs as Python in the notebook's namespace.
PYTHON_CELL_MAGICS = frozenset({"time", "capture"})
NOTE_WIDTH = 80  # characters of a skipped line quoted in a note
MESSAGE_WIDTH = 300  # characters of an exception's message in a NotebookError

_HELP = re.compile(r"\s*(\?{1,2}[\w.]+|[\w.]+\?{1,2})\s*")  # obj? obj?? ?obj ??obj
_ASSIGNED = re.compile(r"\s*[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[!%]")  # x = !ls
_TIME = re.compile(r"(\s*)%time\s+(\S.*)")  # %time STATEMENT: the statement runs
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, f).compiler_flag for f in __future__.all_feature_names), 0
)


class NotebookError(Exception):
    """The notebook cannot be read or its code cells raised."""


@dataclass(frozen=True)
class CodeCell:
    """One code cell. number: its position among all cells, from 1; source: the Python
    to run (skipped lines replaced by `pass`); skipped: what was not run, as notes."""

    number: int
    source: str
    skipped: tuple[str, ...]


def read_notebook(path: Path) -> list[CodeCell]:
    """The notebook's code cells, ready to run; runs nothing. Raises NotebookError."""
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise NotebookError(f"cannot read the notebook {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise NotebookError(f"{name} is not a notebook: it is not UTF-8 text") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{name} is not a notebook: not JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        raise NotebookError(f"{name} is not a notebook: no list of cells in it")
    version = nb.get("nbformat", 4)
    if "cells" not in nb or version != 4:
        raise NotebookError(
            f"{name} is in notebook format {version}, not 4: open it in Jupyter and save "
            "it to convert it"
        )
    cells = []
    for number, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise NotebookError(f"{name}: cell {number} has no source text")
        python, skipped = python_source(source)
        cells.append(CodeCell(number, python, tuple(f"cell {number}: {s}" for s in skipped)))
    return cells


def python_source(source: str) -> tuple[str, list[str]]:
    """One cell's text as IPython would run it as Python, and what was left out.

    Returns (python, skipped): python has as many lines as `source`; each entry of
    skipped quotes a line (or the cell magic) that does not run.
    """
    lines = source.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    skipped: list[str] = []
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()
        word = magic[2:].split(maxsplit=1)[0] if magic[2:].strip() else ""
        if word not in PYTHON_CELL_MAGICS:
            return "\n".join("" for _ in lines), [f"{_quote(magic)} (the whole cell)"]
        skipped.append(f"{_quote(magic)} (the magic only: the cell's code ran)")
        lines[first] = ""
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        candidate = stripped[:1] in ("%", "!") or _HELP.fullmatch(line) or _ASSIGNED.match(line)
        if not candidate or not _at_statement_start(out):
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        timed = _TIME.fullmatch(line.rstrip("\r"))
        if timed:
            out.append(timed[1] + timed[2])
            skipped.append(f"{_quote(stripped)} (the magic only: the statement ran)")
        else:
            out.append(f"{indent}pass")
            skipped.append(_quote(stripped))
    return "\n".join(out), skipped


def _at_statement_start(lines: list[str]) -> bool:
    """Whether the code so far ends between statements (not inside brackets, a string
    or a backslash continuation), so that the next line starts a statement."""
    readline = io.StringIO("\n".join([*lines, ""])).readline
    try:
        for _ in tokenize.generate_tokens(readline):
            pass
    except tokenize.TokenError:
        return False
    except SyntaxError:  # the cell's own indentation error: compile will report it
        return True
    return True


def _quote(line: str) -> str:
    return line if len(line) <= NOTE_WIDTH else line[: NOTE_WIDTH - 3] + "..."


def module_name(path: Path) -> str:
    """The notebook's stem as a module name: not one that is already a module."""
    name = re.sub(r"\W", "_", path.stem) or "notebook"
    if name[0].isdigit():
        name = f"_{name}"
    try:
        taken = name in sys.modules or find_spec(name) is not None
    except (ImportError, ValueError):
        taken = True
    return f"{name}_ipynb" if taken else name


def run_notebook(path: Path) -> types.ModuleType:
    """Run the code cells of the notebook at `path` in a new module; return it.

    Raises NotebookError if the notebook cannot be read or a cell raises an Exception
    (its message: one line, naming the cell); other BaseExceptions propagate.
    """
    path = Path(path).resolve()
    cells = read_notebook(path)
    with _like_jupyter(path):
        name = module_name(path)
        module = types.ModuleType(name, f"The code cells of {path.name}.")
        module.__dict__["display"] = _display
        sys.modules[name] = module
        try:
            _run_cells(path, cells, module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    setattr(module, SKIPPED_ATTR, [note for c in cells for note in c.skipped])
    return module


@contextmanager
def _like_jupyter(path: Path) -> Iterator[None]:
    """The notebook's directory as the current directory and first on sys.path, and
    sys.argv = [the notebook], while the cells run (sys.path keeps the entry)."""
    cwd, argv = os.getcwd(), sys.argv
    folder = str(path.parent)
    if folder not in sys.path[:1]:
        sys.path.insert(0, folder)
    sys.argv = [str(path)]
    try:
        os.chdir(folder)
        yield
    finally:
        sys.argv = argv
        os.chdir(cwd)


def _run_cells(path: Path, cells: list[CodeCell], module: types.ModuleType) -> None:
    flags = 0  # `from __future__ import ...` in a cell holds for the later cells, as in IPython
    namespace = module.__dict__
    files = {}
    for cell in cells:
        filename = f"{path.name} cell {cell.number}"
        files[filename] = cell.number
        lines = [ln + "\n" for ln in cell.source.split("\n")]
        linecache.cache[filename] = (len(cell.source), None, lines, filename)
        try:
            code = compile(cell.source, filename, "exec", flags=flags, dont_inherit=True)
        except SyntaxError as exc:
            raise NotebookError(_syntax_error(path, cell, exc)) from None
        except ValueError as exc:  # null bytes in the source
            raise NotebookError(
                f"{path.name}: cell {cell.number} cannot be compiled: {_one_line(exc)}"
            ) from None
        flags |= code.co_flags & _FUTURE_FLAGS
        try:
            exec(code, namespace)
        except Exception as exc:
            raise NotebookError(_raised(path, cell, exc, files)) from None


def _syntax_error(path: Path, cell: CodeCell, exc: SyntaxError) -> str:
    kind = type(exc).__name__.replace("Error", " error").lower()  # "syntax error"
    text = (exc.text or "").strip()
    where = f" at line {exc.lineno}" if exc.lineno else ""
    return f"{path.name}: cell {cell.number} has a {kind}{where}: {exc.msg}" + (
        f": {_quote(text)}" if text else ""
    )


def _raised(path: Path, cell: CodeCell, exc: Exception, files: dict[str, int]) -> str:
    """'my.ipynb: cell 4 raised ValueError: bad (line 3: x = f())', one line."""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        number = files.get(frame.filename)
        if number is not None:
            at = "" if number == cell.number else f"cell {number}, "
            code = (frame.line or "").strip()
            where = f" ({at}line {frame.lineno}" + (f": {_quote(code)})" if code else ")")
            break
    message = _one_line(exc)
    head = f"{path.name}: cell {cell.number} raised {type(exc).__name__}"
    return head + (f": {message}" if message else "") + where


def _one_line(x: object) -> str:
    try:
        text = " ".join(str(x).split())
    except Exception:
        return "<its message cannot be shown: str() of it raised>"
    return text if len(text) <= MESSAGE_WIDTH else text[: MESSAGE_WIDTH - 3] + "..."


def _display(*objs: Any, **_: Any) -> None:
    """Jupyter's display(), without a screen: each object's repr, printed."""
    for obj in objs:
        print(repr(obj))
