"""python -m crosscheck: parse arguments, call verify, render, pick the exit code.

Exit codes: 0 the layer agrees on every case; 1 a mismatch, or the layer exited, hung,
crashed or ran out of memory; 2 usage error, layer not importable or backend not
installed (one line, no traceback); 3 inconclusive (the oracles disagreed with each
other, so the layer was not blamed); 130 interrupted with Ctrl-C (no failure so far).

This process never imports the layer: workers do (crosscheck.isolation).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from crosscheck import cs231n
from crosscheck.arguments import Parser, UsageError, size
from crosscheck.cases import DTYPES, KINDS, parse_case
from crosscheck.grade import main as grade_main
from crosscheck.gradescope import bundle_main
from crosscheck.isolation import DEFAULT_MEMORY, DEFAULT_TIMEOUT, LayerLoadError
from crosscheck.kinds import get_kind
from crosscheck.oracles import BACKENDS, BackendUnavailable
from crosscheck.plots import PlotError, PlotUnavailable, require_matplotlib, write_plots
from crosscheck.render import dump_json, render_text, to_json, verdict
from crosscheck.report import EXIT_INTERRUPTED, EXIT_USAGE, Report
from crosscheck.verification import DEFAULT_CASES, Interrupted, verify


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m crosscheck",
        description="Check a hand-written TimeRNN (or TimeLSTM, TimeGRU) against JAX, PyTorch "
        "and finite differences.",
    )
    p.add_argument(
        "--layer",
        default=None,
        metavar="MODULE:ATTR",
        help="the layer class, built as ATTR(Wx, Wh, b, stateful=...); MODULE is "
        "importable from the current directory (default: handrnn's layer of --kind, "
        "handrnn:TimeRNN). With --api "
        "cs231n: MODULE or FILE.py, or one part of it, MODULE:rnn_forward or "
        "MODULE:rnn_step_forward",
    )
    p.add_argument(
        "--kind",
        choices=list(KINDS),
        default=None,
        help="the layer kind: rnn (the book's tanh TimeRNN, default), lstm (TimeLSTM: Wx "
        "(D, 4H), gates f, g, i, o; set_state(h, c)) or gru (TimeGRU: Wx (D, 3H), gates z, r, "
        "h); --case ids carry their own",
    )
    p.add_argument(
        "--api",
        choices=["book", "cs231n"],
        default="book",
        help="book: a TimeRNN class (default); cs231n: a module of CS231n-style functions "
        "rnn_forward, rnn_backward, rnn_step_forward, rnn_step_backward, checked as two "
        "parts (the sequence functions, the step functions)",
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
        help="a dtype to test (repeatable); default both. Given explicitly, a float64 check "
        "fails a layer that computes in float32",
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
                   "per time step, gradient norms through time (needs matplotlib)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--strict", action="store_true",
                   help="notes (float32 only, tuples, a backward that reads the returned hs, "
                   "...) fail too")  # fmt: skip
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes for the layer (default: the cores)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help="seconds each call into the layer may take "
                   f"(default {DEFAULT_TIMEOUT:g})")  # fmt: skip
    p.add_argument("--memory-limit", type=size, default=DEFAULT_MEMORY, metavar="SIZE",
                   help="memory for each worker process, e.g. 512M or 4G (default 4G)")  # fmt: skip
    return p


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


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before the run, not after it, when an output cannot be written."""
    if args.json and args.json != "-":
        path = Path(args.json)
        if path.is_dir():
            raise UsageError(f"--json {args.json} is a directory; give a file name")
        if not path.parent.is_dir():
            raise UsageError(f"--json {args.json}: the directory {path.parent} does not exist")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise UsageError(f"--json {args.json}: not writable")
    if args.plot:
        require_matplotlib()
        plot = Path(args.plot)
        if plot.exists() and not plot.is_dir():
            raise UsageError(f"--plot {args.plot} is a file; give a directory for the PNGs")
        try:
            plot.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--plot {args.plot}: cannot create it ({exc.strerror})") from None
        if not os.access(plot, os.W_OK):
            raise UsageError(f"--plot {args.plot}: not writable")


def _validate(args: argparse.Namespace) -> Any:
    if args.cases < 1:
        raise UsageError("--cases must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    _check_outputs(args)
    try:
        cases = [parse_case(c) for c in args.case] if args.case else args.cases
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.case:
        kinds = sorted({c.kind for c in cases})
        if len(kinds) > 1 or (args.kind and kinds != [args.kind]):
            raise UsageError(
                f"--case ids of kind {' and '.join(kinds)}"
                + (f" with --kind {args.kind}" if args.kind else "")
                + ": one run checks one layer kind"
            )
        args.kind = kinds[0]
    if args.api == "cs231n" and (args.kind or "rnn") != "rnn":
        raise UsageError("--api cs231n checks the tanh RNN functions only (--kind rnn)")
    return cases


def _specs(args: argparse.Namespace) -> list[str]:
    """The layer specs to check: one, or with --api cs231n one per part asked for."""
    if args.api == "book":
        return [args.layer or f"handrnn:{get_kind(args.kind or 'rnn').layer_class}"]
    if not args.layer:
        raise UsageError("--api cs231n needs --layer MODULE (or FILE.py) with the functions")
    where, sep, part = args.layer.rpartition(":")
    if sep and part in cs231n.PARTS:
        return [args.layer]
    if sep and where and not part.endswith(".py"):
        raise UsageError(
            f"--layer {args.layer}: with --api cs231n, name the module alone or one part of "
            f"it, {where}:rnn_forward or {where}:rnn_step_forward"
        )
    return [f"{args.layer}:{p}" for p in cs231n.PARTS]


def _run(args: argparse.Namespace) -> list[Report]:
    cases = _validate(args)
    reports = []
    for spec in _specs(args):
        try:
            reports.append(_run_one(args, spec, cases))
        except Interrupted as exc:
            print("crosscheck: interrupted", file=sys.stderr)
            reports.append(exc.report)
            break
    return reports


def _run_one(args: argparse.Namespace, spec: str, cases: Any) -> Report:
    bar = ProgressBar(sys.stderr)
    show = sys.stderr.isatty() and not args.quiet and not args.no_progress
    try:
        return verify(
            spec,
            cases=cases,
            seed=args.seed,
            # CS231n's own checks are float64 and its code allocates with np.zeros (float64):
            # a float32 check is asked for with --dtype float32.
            dtypes=args.dtype or (("float64",) if args.api == "cs231n" else DTYPES),
            backends=list(dict.fromkeys(args.backend)) if args.backend else None,
            explain=not args.no_explain,
            progress=bar if show else None,
            jobs=args.jobs,
            timeout=args.timeout,
            memory_limit=args.memory_limit,
            strict=args.strict,
            explicit_dtype=bool(args.dtype),
            api=args.api,
            kind=args.kind,
        )
    finally:
        bar.close()


def _overall(reports: list[Report], args: argparse.Namespace) -> tuple[int, str]:
    """The exit code and verdict line of a check made of several parts (--api cs231n)."""
    code = cs231n.exit_code([r.exit_code for r in reports])
    word = {0: "PASS", 1: "FAIL", 130: "INTERRUPTED"}.get(code, "INCONCLUSIVE")
    said = "; ".join(
        f"{' and '.join(cs231n.FUNCTIONS.get(r.name('forward'), ('?',)))}: {r.verdict_word}"
        for r in reports
    )
    return code, f"{word}: {args.layer} (--api cs231n): {said}"


def _emit(reports: list[Report], args: argparse.Namespace) -> int:
    """Write the reports where they were asked for; the exit code."""
    if len(reports) == 1:
        return _emit_one(reports[0], args, args.plot, args.json)
    code, line = _overall(reports, args)
    for r in reports:
        plot = str(Path(args.plot) / r.name("forward")) if args.plot else None
        _emit_one(r, args, plot, None)
        if args.json != "-" and not args.quiet:
            print()
    parts = [to_json(r) for r in reports]
    whole = {"schema_version": parts[0]["schema_version"], "api": "cs231n",
             "layer": args.layer, "verdict": line.split(":", 1)[0].lower(),
             "ok": code == 0, "exit_code": code, "parts": parts}  # fmt: skip
    if args.json == "-":
        print(json.dumps(whole, indent=2))
        print(line, file=sys.stderr)
        return code
    print(line)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(whole, indent=2) + "\n")
        except OSError as exc:
            print(f"crosscheck: error: cannot write --json {args.json}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    return code


def _emit_one(
    report: Report, args: argparse.Namespace, plot: str | None, json_path: str | None
) -> int:
    """Write the report where it was asked for; the exit code. With json_path None and
    --json - (a part of several), stdout is left to the caller."""
    if plot:
        try:
            Path(plot).mkdir(parents=True, exist_ok=True)
            plots = write_plots(report, plot)
        except PlotError as exc:
            print(f"crosscheck: cannot plot: {exc}", file=sys.stderr)
        else:
            if not args.quiet:
                print(f"crosscheck: plots of the {plots.why} {plots.case.id} in {plot}",
                      file=sys.stderr)  # fmt: skip
    if args.json == "-":
        if json_path:
            print(dump_json(report))  # stdout is for the machine: the verdict goes to stderr
        print(verdict(report), file=sys.stderr)
        return report.exit_code
    print(verdict(report) if args.quiet else render_text(report))
    if json_path:
        try:
            with open(json_path, "w", encoding="utf-8") as fh:
                fh.write(dump_json(report) + "\n")
        except OSError as exc:
            print(f"crosscheck: error: cannot write --json {args.json}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["grade"]:  # python -m crosscheck grade SUBMISSIONS/ --out OUT/
        return grade_main(given[1:])
    if given[:1] == ["gradescope-bundle"]:  # python -m crosscheck gradescope-bundle OUT.zip
        return bundle_main(given[1:])
    reports: list[Report] = []
    try:
        args = build_parser().parse_args(given)
        reports = _run(args)
        return _emit(reports, args)
    except (UsageError, BackendUnavailable, PlotUnavailable, LayerLoadError) as exc:
        print(f"crosscheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("crosscheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): say nothing more, on a stdout that is gone.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return cs231n.exit_code([r.exit_code for r in reports]) if reports else EXIT_USAGE
