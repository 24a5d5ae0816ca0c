"""python -m crosscheck: parse arguments, call verify, render, pick the exit code.

Exit codes: 0 the layer agrees on every case; 1 a mismatch; 2 usage error, layer not
importable or backend not installed (one line, no traceback); 3 inconclusive (the
oracles disagreed with each other, so the layer was not blamed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from crosscheck.cases import DTYPES, parse_case
from crosscheck.oracles import BACKENDS, BackendUnavailable
from crosscheck.plots import PlotError, PlotUnavailable, require_matplotlib, write_plots
from crosscheck.render import dump_json, render_text, verdict
from crosscheck.report import EXIT_USAGE
from crosscheck.verification import DEFAULT_CASES, verify


class UsageError(Exception):
    """A mistake on the command line or in --layer: reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see python -m crosscheck --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m crosscheck",
        description="Check a hand-written TimeRNN against JAX, PyTorch and finite differences.",
    )
    p.add_argument(
        "--layer",
        default="handrnn:TimeRNN",
        metavar="MODULE:ATTR",
        help="the layer class, built as ATTR(Wx, Wh, b, stateful=...); MODULE is "
        "importable from the current directory (default: handrnn:TimeRNN)",
    )
    p.add_argument(
        "--backend",
        action="append",
        choices=list(BACKENDS),
        help="an oracle backend (repeatable); default: every installed one",
    )
    p.add_argument(
        "--cases",
        type=int,
        default=DEFAULT_CASES,
        metavar="N",
        help=f"how many random cases (default {DEFAULT_CASES})",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="generator seed (default 0)")
    p.add_argument(
        "--dtype",
        action="append",
        choices=list(DTYPES),
        help="a dtype to test (repeatable); default both",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="ID",
        help="run exactly this case (repeatable), as printed in a report",
    )
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument(
        "--no-explain",
        action="store_true",
        help="on a failure, skip the diagnosis and the shrinking to the smallest failing case",
    )
    p.add_argument("--plot", metavar="DIR",
                   help="also write PNGs of one case (the first failing, else the longest): error "
                   "per time step, gradient norms through time (needs handrnn[plot])")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_layer(spec: str) -> Any:
    """'module:Attr' -> the object; UsageError with one clear line otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"--layer must look like MODULE:ATTR (e.g. mymodule:TimeRNN), got {spec!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise UsageError(
                f"module {module_name!r} not found (looked in the current directory "
                f"{os.getcwd()} and on sys.path)"
            ) from None
        raise UsageError(f"importing {module_name!r} failed: ModuleNotFoundError: {exc}") from None
    except Exception as exc:
        raise UsageError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(
            f"{spec} is not callable: it must build a layer as {attr}(Wx, Wh, b, stateful=...)"
        )
    return obj


class ProgressBar:
    """A one-line bar on a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.shown = stream, False

    def __call__(self, stage: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stream.write(f"\r{stage:<26} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.cases < 1:
            raise UsageError("--cases must be at least 1")
        if args.plot:
            require_matplotlib()  # fail before the run, not after it
        layer = load_layer(args.layer)
        try:
            cases: Any = [parse_case(c) for c in args.case] if args.case else args.cases
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        bar = ProgressBar(sys.stderr)
        show = sys.stderr.isatty() and not args.quiet and not args.no_progress
        try:
            report = verify(
                layer,
                cases=cases,
                seed=args.seed,
                dtypes=args.dtype or DTYPES,
                backends=args.backend,
                spec=args.layer,
                explain=not args.no_explain,
                progress=bar if show else None,
            )
        finally:
            bar.close()
    except (UsageError, BackendUnavailable, PlotUnavailable) as exc:
        print(f"crosscheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.plot:
        try:
            plots = write_plots(report, layer, args.plot, backends=args.backend)
        except PlotError as exc:
            print(f"crosscheck: error: cannot plot: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not args.quiet:
            print(f"crosscheck: plots of the {plots.why} {plots.case.id} in {args.plot}",
                  file=sys.stderr)  # fmt: skip
    if args.json == "-":
        print(dump_json(report))  # stdout is for the machine: the verdict goes to stderr
        print(verdict(report), file=sys.stderr)
        return report.exit_code
    print(verdict(report) if args.quiet else render_text(report))
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(dump_json(report) + "\n")
        except OSError as exc:
            print(f"crosscheck: error: cannot write --json {args.json}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    return report.exit_code
