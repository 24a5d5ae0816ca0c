"""python -m crosscheck grade SUBMISSIONS/ --out OUT/: check a whole class, score it.

    python -m crosscheck grade submissions/ --out gradebook/
    python -m crosscheck grade submissions/ --out gradebook/ --rubric rubric.toml --cases 200
    python -m crosscheck grade /autograder/submission --gradescope results.json   # one student

Every entry of SUBMISSIONS is one submission: a `.py` file, a `.ipynb` notebook (its
code cells run in the worker), or a folder (its own modules importable; the file that
defines the class, found with `ast`, is the layer). Hidden entries and other files are
skipped and listed. Each submission is checked by `verify` exactly as
`python -m crosscheck --layer FILE:TimeRNN` checks it, one after the other, all on the
same seeded cases, so the oracles' references are computed once for the class: the
first submission pays for them, the others mostly for their own workers.

The grader never imports a submission: it parses the source with `ast` (to find the
class, to name the classes when it is missing, to report a syntax error, to hash the
code) and runs it in worker processes, from a private copy of the submission in a
temporary folder (so one student's file cannot import another's, and what a layer
writes to its current directory lands in the copy), each call limited by --timeout,
each worker by --memory-limit, the whole submission by --submission-timeout. Whatever
a submission does (a syntax error, no such class, an endless loop, an exit, a NumPy
patch, an import of a missing package, an enormous print), it is one row with the
reason, and grading goes on.

OUT/ receives gradebook.csv (one row per submission), gradebook.json (the settings and
every submission's full report, crosscheck.render.to_json) and index.html (one page, no
network: a sortable table, then each submission's verdict, notes, likely cause,
smallest failing case, reproducer and pictures); crosscheck.gradebook writes them.
Points come from the rubric (crosscheck.rubric; --rubric FILE.toml). Integrity flags,
never deductions: the submission imports torch, jax, autograd, tensorflow, handrnn or
crosscheck (in its source, or in its worker at run time), or has the same code as
another submission (the same normalized AST: docstrings, comments and layout ignored).

Exit codes: 0 grading completed, whatever the verdicts; 2 usage error (no such folder,
no submissions, a bad rubric, a backend not installed, an output that cannot be
written); 130 interrupted (what was graded so far is written).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosscheck import gradebook
from crosscheck.arguments import Parser, UsageError, size
from crosscheck.backends import BACKENDS, BackendUnavailable, available_backends, check_backend
from crosscheck.cases import DTYPES, KINDS
from crosscheck.diagnose import diagnose
from crosscheck.gradescope import results
from crosscheck.isolation import DEFAULT_MEMORY, DEFAULT_TIMEOUT, LayerLoadError
from crosscheck.kinds import get_kind
from crosscheck.notebook import NotebookError, read_notebook
from crosscheck.references import Cache, OracleError, backend_sources
from crosscheck.report import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Report
from crosscheck.rubric import Rubric, RubricError, load_rubric, score_load_error, score_report
from crosscheck.verification import DEFAULT_CASES, Interrupted, verify

DEFAULT_SUBMISSION_TIMEOUT = 300.0  # seconds for all a submission does
# Frameworks and reference implementations whose import is flagged (top-level names).
WATCHED = (
    "torch",
    "jax",
    "jaxlib",
    "flax",
    "autograd",
    "tensorflow",
    "keras",
    "handrnn",
    "crosscheck",
)
MAX_SOURCE_BYTES = 2_000_000  # larger files are not parsed (the worker still runs them)
MAX_NOTEBOOK_BYTES = 20_000_000  # notebooks carry their outputs (pictures): more room
MAX_FOLDER_FILES = 400  # Python files and notebooks looked at in one folder submission
MAX_COPY_BYTES = 200 * 2**20  # a larger folder is graded in place, not copied
SKIP_DIRS = frozenset(
    {"__pycache__", ".git", ".ipynb_checkpoints", ".venv", "venv", "node_modules", "__MACOSX"}
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m crosscheck grade",
        description="Check every submission of a class with crosscheck and score it.",
    )
    p.add_argument(
        "submissions",
        metavar="SUBMISSIONS",
        help="a folder with one entry per submission (.py, .ipynb or a folder); "
        "a single .py or .ipynb file; with --single or --gradescope, the one "
        "submission itself",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where to write gradebook.csv, gradebook.json and index.html "
        "(needed unless --gradescope)",
    )
    p.add_argument(
        "--kind",
        choices=KINDS,
        default="rnn",
        help="the layer kind the submissions implement: rnn (TimeRNN, default), lstm "
        "(TimeLSTM) or gru (TimeGRU)",
    )
    p.add_argument(
        "--layer-attr",
        default=None,
        metavar="NAME",
        help="the class each submission defines (default TimeRNN, TimeLSTM or TimeGRU by "
        "--kind; with --api cs231n, "
        "rnn_forward: the sequence functions, or rnn_step_forward: the step functions)",
    )
    p.add_argument(
        "--api",
        choices=("book", "cs231n"),
        default="book",
        help="book: a TimeRNN class (default); cs231n: CS231n-style functions, checked "
        "in float64 unless --dtype says otherwise",
    )
    p.add_argument(
        "--cases",
        type=int,
        default=DEFAULT_CASES,
        metavar="N",
        help=f"random cases per submission (default {DEFAULT_CASES})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="generator seed (default 0)")
    p.add_argument(
        "--backend",
        action="append",
        choices=list(BACKENDS),
        help="an oracle backend (repeatable); default every installed one",
    )
    p.add_argument(
        "--dtype",
        action="append",
        choices=list(DTYPES),
        help="a dtype to test (repeatable); default both (as the CLI)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes per submission (default: the cores)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per call into a layer (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--memory-limit",
        type=size,
        default=DEFAULT_MEMORY,
        metavar="SIZE",
        help="memory per worker process, e.g. 512M or 4G (default 4G)",
    )
    p.add_argument(
        "--submission-timeout",
        type=float,
        default=DEFAULT_SUBMISSION_TIMEOUT,
        metavar="S",
        help=f"seconds for everything one submission does (default {DEFAULT_SUBMISSION_TIMEOUT:g})",
    )
    p.add_argument(
        "--rubric",
        metavar="FILE.toml",
        help="points per category (default: crosscheck/default_rubric.toml)",
    )
    p.add_argument("--strict", action="store_true", help="notes fail too (as the CLI's --strict)")
    p.add_argument(
        "--no-explain",
        action="store_true",
        help="skip the likely cause and the smallest failing case",
    )
    p.add_argument(
        "--plots",
        choices=("failing", "all", "none"),
        default="failing",
        help="pictures in index.html: of failing submissions (default), of all, or none",
    )
    p.add_argument(
        "--single",
        action="store_true",
        help="SUBMISSIONS is one submission (a folder), not a folder of them",
    )
    p.add_argument(
        "--gradescope",
        metavar="PATH",
        help="write Gradescope's results.json for SUBMISSIONS, one submission (implies --single)",
    )
    p.add_argument(
        "--json-failures",
        type=int,
        default=100,
        metavar="N",
        help="failures kept per report in gradebook.json (default 100; 0: all the report kept)",
    )
    p.add_argument("--quiet", action="store_true", help="no line per submission on stderr")
    return p


# --------------------------------------------------------------------------------------
# Reading a submission's source, without running it.


@dataclass
class SourceInfo:
    """What `ast` sees in one Python source (a file, or a notebook's code cells)."""

    error: str | None = None  # why it does not parse ("SyntaxError: ... (line 3)")
    binds: str = "absent"  # how the module binds the name: class, assigned, imported, star
    classes: list[str] = field(default_factory=list)  # top-level classes
    imports: set[str] = field(default_factory=set)  # watched top-level packages imported
    normalized: str | None = None  # ast.dump without docstrings, for the code hash


_BIND_RANK = {"class": 0, "assigned": 1, "imported": 2, "star": 3, "absent": 4}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _top_level(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """The module's statements, looking into top-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            yield from _top_level(node.body)
            yield from _top_level(getattr(node, "orelse", []))
            yield from _top_level(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                yield from _top_level(handler.body)


def _watched_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            arg = node.args[0]
            if called in ("__import__", "import_module") and isinstance(arg, ast.Constant):
                names = [str(arg.value)]
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in WATCHED)
    return found


def analyse(source: str, attr: str, where: str = "") -> SourceInfo:
    """Parse `source` (never run it): how it binds `attr`, its classes, its imports."""
    info = SourceInfo()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        line = f": {exc.text.strip()[:120]}" if exc.text and exc.text.strip() else ""
        info.error = f"SyntaxError{where}: {exc.msg} (line {exc.lineno}){line}"
        return info
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, deep nesting
        info.error = f"{type(exc).__name__}{where}: {str(exc)[:200]}"
        return info
    for node in _top_level(tree.body):
        how = None
        if isinstance(node, ast.ClassDef):
            info.classes.append(node.name)
            how = "class" if node.name == attr else None
        elif isinstance(node, ast.FunctionDef) and node.name == attr:  # --api cs231n
            how = "class"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                how = "assigned"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == "*":
                    how = "star"
                elif (a.asname or a.name.split(".")[0]) == attr:
                    how = "imported"
        if how and _BIND_RANK[how] < _BIND_RANK[info.binds]:
            info.binds = how
    info.imports = _watched_imports(tree)
    try:
        info.normalized = ast.dump(_strip_docstrings(tree), annotate_fields=False)
    except (RecursionError, MemoryError):
        info.normalized = None
    return info


def _read_source(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not)."""
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            return None, f"{path.name} is {size / 2**20:.1f} MB: too large to read as source"
        return path.read_bytes().decode("utf-8", errors="replace"), None
    except OSError as exc:
        return None, f"cannot read {path.name}: {exc.strerror}"


def analyse_file(path: Path, attr: str) -> SourceInfo:
    """`analyse` of a .py file, or of a notebook's code cells (each cell parsed alone,
    so that an error names its cell)."""
    if path.suffix == ".ipynb":
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                return SourceInfo(binds="star")  # unknown: let the worker try
            cells = read_notebook(path)
        except NotebookError as exc:
            return SourceInfo(error=str(exc))
        except (OSError, RecursionError, MemoryError, ValueError) as exc:
            return SourceInfo(error=f"cannot read {path.name}: {type(exc).__name__}")
        merged = SourceInfo()
        for cell in cells:
            one = analyse(cell.source, attr, f" in cell {cell.number}")
            if one.error:
                return SourceInfo(error=f"{path.name}: {one.error}")
            merged.classes += one.classes
            merged.imports |= one.imports
            if _BIND_RANK[one.binds] < _BIND_RANK[merged.binds]:
                merged.binds = one.binds
        whole = analyse("\n".join(c.source for c in cells), attr)
        merged.normalized = whole.normalized
        return merged
    text, why = _read_source(path)
    if text is None:
        return SourceInfo(error=why, binds="star")  # unknown: let the worker try
    info = analyse(text, attr)
    if info.error:
        info.error = f"{path.name}: {info.error}"
    return info


# --------------------------------------------------------------------------------------
# Finding the submissions.


@dataclass
class Submission:
    """One entry of SUBMISSIONS."""

    name: str  # the entry's name ("alice.py", "bob/")
    path: Path  # absolute
    kind: str  # "file", "notebook" or "folder"
    shown: str  # the path as the instructor gave it (what reproducers use)
    layer: Path | None = None  # the .py / .ipynb that defines the class (absolute)
    problem: str | None = None  # why it cannot be loaded, found without running it
    code_hash: str | None = None
    imports: set[str] = field(default_factory=set)  # watched packages its source imports
    remarks: list[str] = field(default_factory=list)  # e.g. "TimeRNN is also defined in ..."

    @property
    def spec_shown(self) -> str:
        rel = (
            ""
            if self.layer is None or self.kind != "folder"
            else os.sep + str(self.layer.relative_to(self.path))
        )
        return f"{self.shown}{rel}"


def _hash(normalized: Sequence[str]) -> str:
    h = hashlib.sha256()
    for n in sorted(normalized):
        h.update(hashlib.sha256(n.encode()).digest())
    return h.hexdigest()[:16]


def _raw_hash(path: Path) -> str | None:
    text, _ = _read_source(path)
    if text is None:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "raw:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _missing(attr: str, where: str, classes: Sequence[str]) -> str:
    if not classes:
        return f"{where} defines no class {attr} (it defines no class at all)"
    close = difflib.get_close_matches(attr, classes, n=1, cutoff=0.6) or [
        c for c in classes if c.lower() == attr.lower()
    ]
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{where} defines no class {attr} (classes found: {', '.join(classes)}){hint}"


def _single(sub: Submission, attr: str) -> Submission:
    info = analyse_file(sub.path, attr)
    sub.layer = sub.path
    sub.imports = info.imports
    sub.code_hash = _hash([info.normalized]) if info.normalized else _raw_hash(sub.path)
    if info.error and info.binds != "star":
        sub.problem = info.error
    elif info.binds == "absent":
        sub.problem = _missing(attr, sub.path.name, info.classes)
    return sub


def _folder_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith((".py", ".ipynb")) and not f.startswith("."):
                found.append(Path(dirpath) / f)
        if len(found) >= MAX_FOLDER_FILES:
            break
    return found[:MAX_FOLDER_FILES]


def _is_test(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return path.name.startswith("test_") or path.name == "conftest.py" or "tests" in parts[:-1]


def _folder(sub: Submission, attr: str) -> Submission:
    files = _folder_files(sub.path)
    infos = {f: analyse_file(f, attr) for f in files}
    normalized = [i.normalized for i in infos.values() if i.normalized]
    raw = [h for f, i in infos.items() if not i.normalized for h in [_raw_hash(f)] if h]
    sub.code_hash = _hash(normalized + raw) if files else None
    for info in infos.values():
        sub.imports |= info.imports
    candidates = sorted(
        (f for f, i in infos.items() if i.binds != "absent"),
        key=lambda f: (
            _BIND_RANK[infos[f].binds],
            _is_test(f, sub.path),
            f.suffix == ".ipynb",
            len(f.relative_to(sub.path).parts),
            str(f),
        ),
    )
    if not candidates:
        broken = [i.error for i in infos.values() if i.error]
        if broken:
            sub.problem = f"{broken[0]} (and no other file defines {attr})"
        elif not files:
            sub.problem = f"{sub.name}/ holds no .py file and no notebook"
        else:
            classes = [
                f"{f.relative_to(sub.path)}: {', '.join(i.classes)}"
                for f, i in infos.items()
                if i.classes
            ]
            where = f"no file in {sub.name}/"
            sub.problem = (
                f"{where} defines a class {attr} (classes found: {'; '.join(classes)})"
                if classes
                else f"{where} defines a class {attr}, nor any class"
            )
        return sub
    sub.layer = candidates[0]
    others = [f for f in candidates[1:] if infos[f].binds == "class"]
    if others:
        names = ", ".join(str(f.relative_to(sub.path)) for f in others[:3])
        sub.remarks.append(
            f"{attr} is also defined in {names}; graded: {sub.layer.relative_to(sub.path)}"
        )
    chosen = infos[sub.layer]
    if chosen.error and chosen.binds != "star":
        sub.problem = chosen.error
    return sub


def discover(root: Path, shown: str, attr: str, single: bool) -> tuple[list[Submission], list[str]]:
    """The submissions under `root` (or `root` itself, if single or a file), and the
    entries skipped with why."""
    root = root.resolve()
    if root.is_file() or single:
        entries = [(root, shown)]
    else:
        entries = [
            (p, os.path.join(shown, p.name))
            for p in sorted(root.iterdir(), key=lambda p: p.name.lower())
        ]
    subs: list[Submission] = []
    skipped: list[str] = []
    for path, path_shown in entries:
        name = path.name
        if not single and (name.startswith(".") or name in SKIP_DIRS):
            continue
        if path.is_dir():
            sub = Submission(name + "/", path, "folder", path_shown)
        elif path.suffix in (".py", ".ipynb"):
            sub = Submission(name, path, "file" if path.suffix == ".py" else "notebook", path_shown)
        else:
            skipped.append(f"{name}: not a .py file, a notebook or a folder")
            continue
        try:
            subs.append(_folder(sub, attr) if sub.kind == "folder" else _single(sub, attr))
        except Exception as exc:  # reading it failed: the worker has the last word
            sub.layer = None if sub.kind == "folder" else sub.path
            if sub.layer is None:
                sub.problem = f"cannot read {name}: {type(exc).__name__}: {exc}"
            subs.append(sub)
    return subs, skipped


# --------------------------------------------------------------------------------------
# Grading one submission.


@dataclass(frozen=True)
class Settings:
    cases: int
    seed: int
    backends: list[str]
    dtypes: list[str]
    jobs: int | None
    timeout: float
    memory_limit: int
    submission_timeout: float | None
    strict: bool
    explain: bool
    layer_attr: str
    plots: str
    json_failures: int = 100
    explicit_dtype: bool = False  # --dtype given: float32 results in float64 cases fail
    api: str = "book"  # or "cs231n": functions, through crosscheck.cs231n's adapters
    kind: str = "rnn"  # the layer kind (crosscheck.kinds): rnn, lstm or gru

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _tree_size(root: Path) -> int:
    """Bytes of the regular files under `root` (symbolic links not followed)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for f in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


@contextlib.contextmanager
def _private_copy(sub: Submission) -> Iterator[tuple[Path, Path]]:
    """(layer file, folder to run in) in a temporary copy of the submission."""
    tmp = Path(tempfile.mkdtemp(prefix="crosscheck-grade-")).resolve()
    try:
        assert sub.layer is not None
        if sub.kind == "folder":
            size = _tree_size(sub.path)
            if size > MAX_COPY_BYTES:
                yield sub.layer, sub.path
                return
            dest = tmp / sub.path.name
            shutil.copytree(
                sub.path, dest, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS)
            )
            yield dest / sub.layer.relative_to(sub.path), dest
        else:
            dest = tmp / sub.path.name
            shutil.copyfile(sub.path, dest)
            yield dest, tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _unmask_text(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    for private, shown in pairs:
        text = text.replace(private, shown)
    return text


def _unmask(report: Report, pairs: Sequence[tuple[str, str]]) -> None:
    """Put the submission's own path where the private copy's appears in `report`."""

    def u(s: str) -> str:
        return _unmask_text(s, pairs)

    report.failures = [
        dataclasses.replace(f, message=u(f.message), reproducer=u(f.reproducer))
        for f in report.failures
    ]
    report.fatal = u(report.fatal) if report.fatal else report.fatal
    report.output = u(report.output)
    report.isolation = u(report.isolation)
    report.diagnosis = [u(d) for d in report.diagnosis]
    report.numbers = [u(n) for n in report.numbers]
    for note in report.notes.values():
        note.message = u(note.message)


def _causes(report: Report) -> tuple[str, ...]:
    """The diagnosis causes of the report's failing case (the report keeps only the words)."""
    ev = report.evidence
    if ev is None:
        return ()
    failing = [
        (f.segment, f.call, f.quantity)
        for f in report.failures
        if f.kind == "mismatch" and f.case_id == ev.case.id and f.backend == ev.oracle
    ]
    if not failing:
        return ()
    try:
        return diagnose(ev.case, ev.observed.segments, ev.reference, failing, ev.accuracy).causes
    except Exception:  # a diagnosis is a hint: never let it stop the grading
        return ()


def _load_hint(message: str) -> str:
    if "ModuleNotFoundError" in message or "No module named" in message:
        return (
            f"{message} (the submission imports a package that is not installed where it is graded)"
        )
    return message


def grade_one(
    sub: Submission, settings: Settings, rubric: Rubric, cache: Cache
) -> gradebook.Graded:
    """Check and score one submission; never raises but for Ctrl-C (Interrupted)."""
    start = time.perf_counter()
    try:
        return _grade_one(sub, settings, rubric, cache)
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as exc:  # crosscheck's own failure: say so, go on with the class
        spec = f"{sub.spec_shown}:{settings.layer_attr}"
        graded = gradebook.Graded(sub.name, sub.shown, sub.kind, spec, sub.code_hash)
        graded.source_imports = sorted(sub.imports)
        graded.internal_error = f"crosscheck failed on this submission: {type(exc).__name__}: {exc}"
        graded.traceback = traceback.format_exc(limit=8)
        graded.seconds = time.perf_counter() - start
        graded.finish()
        return graded


def _grade_one(
    sub: Submission, settings: Settings, rubric: Rubric, cache: Cache
) -> gradebook.Graded:
    start = time.perf_counter()
    attr = settings.layer_attr
    spec_shown = f"{sub.spec_shown}:{attr}"
    graded = gradebook.Graded(sub.name, sub.shown, sub.kind, spec_shown, sub.code_hash)
    graded.remarks = list(sub.remarks)
    graded.source_imports = sorted(sub.imports)
    if sub.problem is not None:
        graded.load_error = sub.problem
        graded.score = score_load_error(sub.problem, rubric)
        graded.seconds = time.perf_counter() - start
        graded.finish()
        return graded
    assert sub.layer is not None
    report: Report | None = None
    with _private_copy(sub) as (layer, folder):
        private_spec = f"{layer}:{attr}"
        if sub.kind == "folder":
            pairs = [(str(folder), sub.shown)]
        else:
            pairs = [(str(layer), sub.shown), (str(folder), os.path.dirname(sub.shown) or ".")]
        try:
            with _cwd(folder):
                report = verify(
                    private_spec,
                    spec=spec_shown,
                    cases=settings.cases,
                    seed=settings.seed,
                    dtypes=settings.dtypes,
                    backends=settings.backends,
                    explain=settings.explain,
                    jobs=settings.jobs,
                    timeout=settings.timeout,
                    memory_limit=settings.memory_limit,
                    total_timeout=settings.submission_timeout,
                    strict=settings.strict,
                    explicit_dtype=settings.explicit_dtype,
                    api=settings.api,
                    cache=cache,
                    kind=settings.kind,
                )
        except LayerLoadError as exc:
            message = _load_hint(_unmask_text(str(exc), pairs))
            if "has no attribute" in message and sub.layer.suffix == ".py":
                info = analyse_file(sub.layer, attr)
                message = f"{message}; {_missing(attr, sub.layer.name, info.classes)}"
            graded.load_error = message
            graded.score = score_load_error(message, rubric)
        except Interrupted:
            raise
        except Exception as exc:  # crosscheck's own failure: say so, go on with the class
            graded.internal_error = (
                f"crosscheck failed on this submission: {type(exc).__name__}: {exc}"
            )
            graded.traceback = traceback.format_exc(limit=8)
        else:
            _unmask(report, pairs)
    if report is not None:
        graded.attach(report, score_report(report, rubric, _causes(report)), settings.json_failures)
        if settings.plots == "all" or (settings.plots == "failing" and report.failed):
            graded.plots, graded.plots_skipped = gradebook.plots_of(report)
        elif settings.plots == "failing":
            graded.plots_skipped = "no pictures of a passing submission (--plots all draws them)"
        else:
            graded.plots_skipped = "pictures not drawn (--plots none)"
    graded.seconds = time.perf_counter() - start
    graded.finish()
    return graded


def flag_duplicates(graded: Sequence[gradebook.Graded]) -> None:
    """Flag every submission whose code hash another submission shares."""
    groups: dict[str, list[gradebook.Graded]] = {}
    for g in graded:
        if g.code_hash:
            groups.setdefault(g.code_hash, []).append(g)
    for group in groups.values():
        if len(group) < 2:
            continue
        for g in group:
            others = [o.name for o in group if o is not g]
            g.duplicate_of = others
            g.flags.append(f"same code as {', '.join(others)}")


# --------------------------------------------------------------------------------------
# The command.


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: not writable")


def _check_file(path: str, option: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    if not p.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {p.parent} does not exist")
    if not os.access(p if p.exists() else p.parent, os.W_OK):
        raise UsageError(f"{option} {path}: not writable")


def _settings(args: argparse.Namespace) -> Settings:
    if args.cases < 1:
        raise UsageError("--cases must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if not args.submission_timeout > 0:
        raise UsageError("--submission-timeout must be more than 0 seconds")
    if args.json_failures < 0:
        raise UsageError("--json-failures must be 0 or more")
    if args.api == "cs231n" and args.kind != "rnn":
        raise UsageError("--api cs231n checks the tanh RNN functions only (--kind rnn)")
    if args.layer_attr is not None and not args.layer_attr.isidentifier():
        raise UsageError(f"--layer-attr must be a Python name, got {args.layer_attr!r}")
    backends = list(dict.fromkeys(args.backend)) if args.backend else available_backends()
    for b in backends:
        check_backend(b)
    return Settings(
        cases=args.cases,
        seed=args.seed,
        backends=backends,
        dtypes=list(dict.fromkeys(args.dtype))
        if args.dtype
        else (["float64"] if args.api == "cs231n" else list(DTYPES)),
        jobs=args.jobs,
        timeout=args.timeout,
        memory_limit=args.memory_limit,
        submission_timeout=args.submission_timeout,
        strict=args.strict,
        explain=not args.no_explain,
        layer_attr=args.layer_attr
        or ("rnn_forward" if args.api == "cs231n" else get_kind(args.kind).layer_class),
        api=args.api,
        kind=args.kind,
        plots=args.plots if args.out else "none",
        json_failures=args.json_failures,
        explicit_dtype=bool(args.dtype),
    )


def _keep_out(root: Path) -> None:
    """Make the submissions unimportable in this process: drop the sys.path entries in
    `root` (`python -m` puts the working directory first; a student's matplotlib.py
    must not be what a later `import matplotlib` finds). Workers get this sys.path too,
    so one submission cannot import another; each finds its own modules beside it."""
    here = Path(__file__).resolve().parent.parent  # where crosscheck itself is imported from

    def inside(entry: str) -> bool:
        try:
            p = Path(entry or os.getcwd()).resolve()
        except OSError:
            return False
        return (p == root or root in p.parents) and p != here

    sys.path[:] = [p for p in sys.path if not inside(p)]


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """python -m crosscheck grade ...; the exit code."""
    try:
        args = build_parser().parse_args(argv)
        settings = _settings(args)
        rubric = load_rubric(args.rubric)
        root = Path(args.submissions)
        if not root.exists():
            raise UsageError(f"{args.submissions}: no such file or folder")
        if not args.out and not args.gradescope:
            raise UsageError("give --out DIR (or --gradescope PATH for one submission)")
        if args.out:
            _check_out(Path(args.out))
        if args.gradescope:
            _check_file(args.gradescope, "--gradescope")
        single = args.single or bool(args.gradescope)
        # A Gradescope student reruns a case from the folder of their own files.
        shown = "." if args.gradescope and root.is_dir() else args.submissions
        subs, skipped = discover(root, shown, settings.layer_attr, single)
    except (UsageError, RubricError, BackendUnavailable) as exc:
        print(f"crosscheck grade: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not subs:
        print(
            f"crosscheck grade: error: no submissions in {args.submissions} (.py files, "
            "notebooks or folders)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # Room for every oracle's reference of every case, and for the small cases that
    # shrinking adds per failing submission: the class shares one cache.
    cache = Cache(max(4_000, 8 * settings.cases + 300 * len(subs)))
    start = time.perf_counter()
    done: list[gradebook.Graded] = []
    code = EXIT_OK
    _keep_out(root.resolve())
    try:
        safe = tempfile.mkdtemp(prefix="crosscheck-grade-oracles-")
        try:
            # The oracle processes start here, in an empty folder: never in a submission's
            # (a `python -m` child puts its working directory first on sys.path).
            with _cwd(Path(safe)):
                backend_sources(settings.backends)
        except (BackendUnavailable, OracleError) as exc:
            print(f"crosscheck grade: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        for i, sub in enumerate(subs, start=1):
            g = grade_one(sub, settings, rubric, cache)
            done.append(g)
            _say(args.quiet, f"[{i}/{len(subs)}] {g.progress_line()}")
    except (Interrupted, KeyboardInterrupt):
        print("crosscheck grade: interrupted; writing what was graded so far", file=sys.stderr)
        code = EXIT_INTERRUPTED
    finally:
        shutil.rmtree(safe, ignore_errors=True)
    flag_duplicates(done)
    book = gradebook.Gradebook(
        settings.as_dict(),
        rubric,
        done,
        skipped,
        time.perf_counter() - start,
        complete=code == EXIT_OK,
        planned=len(subs),
    )
    try:
        if args.out:
            paths = book.write(Path(args.out))
            _say(
                args.quiet,
                f"crosscheck grade: {book.summary_line()}; wrote "
                f"{', '.join(str(p) for p in paths)}",
            )
        if args.gradescope and done:
            with open(args.gradescope, "w", encoding="utf-8") as fh:
                json.dump(results(done[0], rubric), fh, indent=2)
    except OSError as exc:
        print(f"crosscheck grade: error: cannot write the gradebook: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
