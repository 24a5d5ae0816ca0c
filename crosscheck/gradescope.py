"""Gradescope: the results of one submission, and a ready autograder bundle.

    python -m crosscheck grade SUBMISSION/ --gradescope results.json   # one submission
    python -m crosscheck gradescope-bundle autograder.zip               # the bundle to upload

`results(graded, rubric)` is Gradescope's results format
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): the total `score`, the
`execution_time`, the report as `output`, and one test per rubric category
(`name`, `score`, `max_score`, `output`, `visibility`), plus the note deductions; the
integrity flags go in a test of 0 points that only the staff see (visibility "hidden").

The bundle (a zip, uploaded as the assignment's autograder) holds

    setup.sh        run once when Gradescope builds the image: installs Python's venv if
                    needed, and crosscheck with the chosen backends' frameworks into
                    /opt/crosscheck (from the wheel, or the source tree, in the zip)
    run_autograder  run for every submission, in a container of its own: grades
                    $AUTOGRADER_ROOT/submission (default /autograder/submission) into
                    $AUTOGRADER_ROOT/results/results.json; never leaves without writing it
    rubric.toml     the rubric (the default one unless --rubric)
    handrnn-*.whl   or handrnn-src/: crosscheck itself
    README.txt      what is where

Environment of run_autograder: AUTOGRADER_ROOT (default /autograder) and
CROSSCHECK_PYTHON (default /opt/crosscheck/bin/python), so that a test can run it
against a fake tree in a temporary folder. Gradescope runs each submission in its own
container, so a class of thousands is graded in parallel by Gradescope's machines;
within a container, crosscheck still runs the layer in worker processes with limits.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import handrnn
from crosscheck.arguments import Parser, UsageError
from crosscheck.backends import BACKENDS
from crosscheck.cases import KINDS
from crosscheck.gradebook import Graded
from crosscheck.isolation import parse_size
from crosscheck.kinds import get_kind
from crosscheck.rubric import CATEGORIES, DEFAULT_RUBRIC_FILE, Rubric, RubricError, load_rubric

MAX_OUTPUT = 30_000  # characters of the report in results.json
# backend -> the extra of the handrnn package that installs its framework
EXTRAS = {"jax": "jax", "torch": "torch", "numeric": ""}
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # CPU builds: far smaller images
DEFAULT_BUNDLE_BACKENDS = ("torch", "numeric")


def _clip(text: str, limit: int = MAX_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def results(graded: Graded, rubric: Rubric) -> dict[str, Any]:
    """Gradescope's results.json for one graded submission."""
    tests: list[dict[str, Any]] = []
    if graded.score is not None:
        for c in graded.score.categories:
            what = CATEGORIES[c.name][1]
            if c.lost:
                body = "Points lost:\n" + "\n".join(f"- {x}" for x in c.lost)
            else:
                body = "Right in every case compared."
            tests.append(
                {
                    "name": f"{c.title} ({what})",
                    "score": c.points,
                    "max_score": c.max_points,
                    "output": _clip(body, 5_000),
                    "visibility": "visible",
                }
            )
        for kind, pts in graded.score.deductions:
            note = graded.notes.get(kind, {})
            tests.append(
                {
                    "name": f"Note: {kind} (-{pts:g})",
                    "score": -pts,
                    "max_score": 0,
                    "output": f"The layer {note.get('meaning', kind)}.",
                    "visibility": "visible",
                }
            )
    if graded.flags:
        tests.append(
            {
                "name": "Integrity flags (for the staff; no points)",
                "score": 0,
                "max_score": 0,
                "output": "\n".join(graded.flags),
                "visibility": "hidden",
            }
        )
    if graded.load_error is not None:
        output = (
            f"Your layer could not be loaded, so it was not checked:\n{graded.load_error}\n\n"
            f"Check it yourself with: python -m crosscheck --layer {graded.spec}"
        )
    elif graded.internal_error is not None:
        output = f"{graded.internal_error}\nThis is not your fault: please tell the course staff."
    else:
        output = graded.text
    return {
        "score": graded.total,
        "execution_time": round(graded.seconds),
        "output": _clip(output),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


# --------------------------------------------------------------------------------------
# The bundle.

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image: it installs
# crosscheck, with the frameworks of the chosen backends, into /opt/crosscheck.
set -euo pipefail
SOURCE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${{CROSSCHECK_PREFIX:-/opt/crosscheck}}"
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv python3-pip
fi
python3 -m venv "$PREFIX"
"$PREFIX/bin/python" -m pip install --upgrade pip
{torch}"$PREFIX/bin/python" -m pip install "$SOURCE/{package}{extras}" \\
    'tomli; python_version < "3.11"'
"$PREFIX/bin/python" -c "import crosscheck.grade"   # the build fails here if anything is missing
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission, in a container of its own. The student's
# files are in $ROOT/submission; the results go to $ROOT/results/results.json, which is
# always written (a fallback with 0 points if crosscheck itself could not run).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{CROSSCHECK_PYTHON:-/opt/crosscheck/bin/python}}"
SOURCE="$ROOT/source"
RESULTS="$ROOT/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.json"
cd "$RESULTS"
"$PYTHON" -m crosscheck.grade "$ROOT/submission" --gradescope "$RESULTS/results.json" \\
    --rubric "$SOURCE/rubric.toml" {args}
status=$?
if [ ! -s "$RESULTS/results.json" ]; then
    cat > "$RESULTS/results.json" <<EOF
{{"score": 0, "tests": [], "output": "The autograder could not grade this submission \\
(crosscheck grade exited with status $status). This is not your fault: please tell the \\
course staff."}}
EOF
fi
exit 0
"""

README_TXT = """crosscheck autograder bundle for Gradescope
===========================================

Upload this zip as the assignment's autograder ("Zip file upload"). Gradescope runs
setup.sh once when it builds the image, then run_autograder for every submission, each
in a container of its own.

Students submit their layer as a .py file (with class {attr}), a Jupyter notebook, or
several files (the one that defines {attr} is found automatically).

run_autograder runs:
    {command}

rubric.toml holds the points (see the comments in it); change it and rebuild the zip
with: python -m crosscheck gradescope-bundle OUT.zip --rubric rubric.toml

Test it on your machine without Gradescope (after installing crosscheck):
    mkdir -p /tmp/ag/submission /tmp/ag/results && unzip -o OUT.zip -d /tmp/ag/source
    cp my_layer.py /tmp/ag/submission/
    AUTOGRADER_ROOT=/tmp/ag CROSSCHECK_PYTHON=python3 bash /tmp/ag/source/run_autograder
    cat /tmp/ag/results/results.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m crosscheck gradescope-bundle",
        description="Write a Gradescope autograder zip that grades with crosscheck.",
    )
    p.add_argument("out", metavar="OUT.zip", help="the zip to write")
    p.add_argument("--rubric", metavar="FILE.toml", help="the rubric (default: the default one)")
    p.add_argument(
        "--backend",
        action="append",
        choices=list(BACKENDS),
        help="an oracle backend (repeatable); default: torch and numeric",
    )
    p.add_argument("--cases", type=int, default=100, metavar="N", help="cases (default 100)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="generator seed (default 0)")
    p.add_argument(
        "--kind",
        choices=KINDS,
        default="rnn",
        help="the layer kind students implement: rnn (default), lstm or gru",
    )
    p.add_argument(
        "--layer-attr",
        default=None,
        metavar="NAME",
        help="the class students define (default TimeRNN, TimeLSTM or TimeGRU by --kind)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds per call into the layer (default 10)",
    )
    p.add_argument(
        "--memory-limit", default="2G", metavar="SIZE", help="memory per worker (default 2G)"
    )
    p.add_argument(
        "--submission-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds for everything a submission does (default 600)",
    )
    p.add_argument("--strict", action="store_true", help="notes fail too")
    p.add_argument("--wheel", metavar="WHL", help="put this crosscheck wheel in the bundle")
    p.add_argument(
        "--source",
        action="store_true",
        help="put crosscheck's source tree in the bundle instead of building a "
        "wheel (setup.sh then builds it)",
    )
    return p


def project_root() -> Path | None:
    """The checkout crosscheck runs from (its pyproject.toml names handrnn), if any."""
    root = Path(__file__).resolve().parent.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "handrnn"' in text else None


def _copy_package(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


_MINIMAL_PYPROJECT = """[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "handrnn"
version = "{version}"
requires-python = ">=3.10"
dependencies = ["numpy>=1.26"]

[project.optional-dependencies]
jax = ["jax>=0.4.30"]
torch = ["torch==2.13.0"]
plot = ["matplotlib>=3.7"]

[tool.hatch.build.targets.wheel]
packages = ["handrnn", "crosscheck"]
"""


def source_tree(dest: Path) -> Path:
    """Copy what builds crosscheck into `dest` (the checkout's files, or the installed
    packages with a minimal pyproject.toml); `dest`."""
    dest.mkdir(parents=True)
    root = project_root()
    if root is not None:
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copyfile(root / name, dest / name)
        for pkg in ("handrnn", "crosscheck"):
            _copy_package(root / pkg, dest / pkg)
        return dest
    try:
        version = importlib.metadata.version("handrnn")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    _copy_package(Path(handrnn.__file__).parent, dest / "handrnn")
    _copy_package(Path(__file__).resolve().parent, dest / "crosscheck")
    (dest / "pyproject.toml").write_text(_MINIMAL_PYPROJECT.format(version=version))
    (dest / "README.md").write_text("handrnn and crosscheck\n")
    return dest


def build_wheel(tmp: Path) -> Path:
    """Build crosscheck's wheel from its source tree (pip wheel --no-deps) in `tmp`."""
    src = source_tree(tmp / "src")
    out = tmp / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(src), "-w", str(out)],
        capture_output=True,
        text=True,
    )
    wheels = sorted(out.glob("*.whl")) if out.is_dir() else []
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UsageError(
            "building the wheel failed (pip wheel: " + " / ".join(tail) + "); use --source to "
            "bundle the source tree, or --wheel WHL"
        )
    return wheels[0]


def grade_args(args: argparse.Namespace, backends: Sequence[str]) -> list[str]:
    """The options run_autograder passes to crosscheck grade."""
    out = [
        "--cases",
        str(args.cases),
        "--seed",
        str(args.seed),
        "--kind",
        args.kind,
        "--layer-attr",
        args.layer_attr or get_kind(args.kind).layer_class,
        "--timeout",
        f"{args.timeout:g}",
        "--memory-limit",
        str(args.memory_limit),
        "--submission-timeout",
        f"{args.submission_timeout:g}",
    ]
    for b in backends:
        out += ["--backend", b]
    if args.strict:
        out.append("--strict")
    return out


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build_bundle(args: argparse.Namespace) -> list[str]:
    """Write the zip args.out; the names in it."""
    backends = list(dict.fromkeys(args.backend or DEFAULT_BUNDLE_BACKENDS))
    rubric_path = Path(args.rubric) if args.rubric else DEFAULT_RUBRIC_FILE
    load_rubric(rubric_path)  # a bad rubric fails here, not on Gradescope
    extras = sorted({EXTRAS[b] for b in backends if EXTRAS[b]})
    extra = f"[{','.join(extras)}]" if extras else ""
    torch = (
        f'"$PREFIX/bin/python" -m pip install "torch==2.13.0" --index-url {TORCH_INDEX}\n'
        if "torch" in backends
        else ""
    )
    grade = grade_args(args, backends)
    command = (
        "python -m crosscheck.grade /autograder/submission --gradescope "
        "/autograder/results/results.json --rubric /autograder/source/rubric.toml "
        + " ".join(shlex.quote(a) for a in grade)
    )
    with tempfile.TemporaryDirectory(prefix="crosscheck-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        files: list[tuple[str, Path]] = []
        if args.wheel:
            wheel = Path(args.wheel)
            if not wheel.is_file() or wheel.suffix != ".whl":
                raise UsageError(f"--wheel {args.wheel}: not a wheel file")
            package = wheel.name
            files.append((package, wheel))
        elif args.source:
            src = source_tree(tmp / "handrnn-src")
            package = "handrnn-src"
            files += [
                (f"handrnn-src/{p.relative_to(src).as_posix()}", p)
                for p in sorted(src.rglob("*"))
                if p.is_file()
            ]
        else:
            wheel = build_wheel(tmp)
            package = wheel.name
            files.append((package, wheel))
        names = []
        with zipfile.ZipFile(args.out, "w") as zf:
            texts = [
                ("setup.sh", SETUP_SH.format(torch=torch, package=package, extras=extra), True),
                (
                    "run_autograder",
                    RUN_AUTOGRADER.format(args=" ".join(shlex.quote(a) for a in grade)),
                    True,
                ),
                ("rubric.toml", rubric_path.read_text(encoding="utf-8"), False),
                (
                    "README.txt",
                    README_TXT.format(
                        attr=args.layer_attr or get_kind(args.kind).layer_class, command=command
                    ),
                    False,
                ),
            ]
            for name, text, executable in texts:
                _add(zf, name, text.encode("utf-8"), executable)
                names.append(name)
            for name, path in files:
                _add(zf, name, path.read_bytes())
                names.append(name)
    return names


def bundle_main(argv: list[str]) -> int:
    """python -m crosscheck gradescope-bundle OUT.zip ...; the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.wheel and args.source:
            raise UsageError("give --wheel or --source, not both")
        if args.cases < 1:
            raise UsageError("--cases must be at least 1")
        try:
            parse_size(args.memory_limit)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        out = Path(args.out)
        if out.is_dir() or not out.parent.is_dir():
            raise UsageError(f"{args.out}: give a file name in a folder that exists")
        names = build_bundle(args)
    except (UsageError, RubricError) as exc:
        print(f"crosscheck gradescope-bundle: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"crosscheck gradescope-bundle: error: {exc}", file=sys.stderr)
        return 2
    size = os.path.getsize(args.out)
    shown = ", ".join(n for n in names if "/" not in n)
    print(f"wrote {args.out} ({size / 1024:.0f} KiB): {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(bundle_main(sys.argv[1:]))
