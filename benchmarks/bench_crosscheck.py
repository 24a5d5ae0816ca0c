"""How long crosscheck takes: the "before/after" timing table of its three common uses.

What it measures, each command run as a subprocess in the checkout (cwd = --repo):

  verify   `python -m crosscheck --cases 240`: what `nox -s verify` runs (every backend)
  student  `python -m crosscheck --layer examples.student_layer:TimeRNN --cases 30`: a
           student's layer with a bug (exit 1 expected: the FAIL, its diagnosis and
           shrinking are part of what a student waits for)
  correct  `python -m crosscheck --layer handrnn:TimeRNN --cases 30`: the same, a correct layer
  soak     `python -m crosscheck --cases 10000 --seed 2026 --json SOAK` (+ `--jobs 2` when
           `--help` lists it): run once, after the others

For each: wall time of the whole command (time.perf_counter around the subprocess, so
process start and imports included), the checking time the report itself gives
(`elapsed_s` of its --json report; --json is added to the first three commands for
this), the CPU seconds of the child (user + sys, less sensitive to a busy machine than
wall time) and the 1-minute load average just before each run. verify, student and
correct each get one untimed warm-up run first (it fills the JAX compilation cache),
then --repeat timed runs, interleaved so a slow spell on a shared machine hits all of
them alike; the table gives median and min.

Run it with an interpreter that has the project installed ('.[frameworks]' at least):

    python benchmarks/bench_crosscheck.py --python .venv/bin/python --repeat 3 \
        --label after --out /tmp/crosscheck-timing.md
    python benchmarks/bench_crosscheck.py --repo /tmp/baseline \
        --python /tmp/baseline-venv/bin/python --skip-soak --label before

It prints the markdown table and, with --out, appends it to that file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE_REPO = Path(__file__).resolve().parent.parent


@dataclass
class Bench:
    key: str
    args: list[str]
    expect: int  # the exit code the command should give
    warm_up: bool = True
    json_path: str | None = None  # the command's own --json, else one is added
    walls: list[float] = field(default_factory=list)
    checks: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(bench: Bench, python: str, repo: Path, tmp: Path) -> None:
    """One timed run of the command; appends its numbers to bench."""
    args = list(bench.args)
    json_path = Path(bench.json_path) if bench.json_path else tmp / f"{bench.key}.json"
    if bench.json_path is None:
        args += ["--json", str(json_path)]
    json_path.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "crosscheck", *args], cwd=repo, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    check = float("nan")
    try:
        check = float(json.loads(json_path.read_text())["elapsed_s"])
    except (OSError, ValueError, KeyError):  # no JSON: the text header's "..., 2.7 s"
        m = re.search(r", ([0-9.]+) s\n", proc.stdout)
        check = float(m.group(1)) if m else check
    bench.walls.append(wall)
    bench.checks.append(check)
    bench.cpus.append(cpu)
    bench.loads.append(load)
    bench.exits.append(proc.returncode)
    print(
        f"  {bench.key:<8} wall {wall:7.2f} s  check {check:7.2f} s  cpu {cpu:7.2f} s  "
        f"exit {proc.returncode}  load {load:.2f}",
        file=sys.stderr,
    )
    if proc.returncode != bench.expect:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        print(
            f"  !! {bench.key}: exit {proc.returncode}, expected {bench.expect}:", file=sys.stderr
        )
        print("\n".join(f"     {line}" for line in tail), file=sys.stderr)


def describe(repo: Path, python: str) -> str:
    def out(*cmd: str) -> str:
        r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    commit = out("git", "rev-parse", "--short", "HEAD") or "?"
    # --no-optional-locks: do not refresh (write) the index of a repo others work in.
    dirty = out("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    versions = out(
        python,
        "-c",
        "import sys, numpy; print(f'Python {sys.version.split()[0]}, NumPy {numpy.__version__}')",
    )
    return (
        f"{repo} at {commit}{' + uncommitted changes' if dirty else ''}; {versions}; "
        f"{os.cpu_count()} cores; {platform.node()}; "
        f"{datetime.now().isoformat(timespec='minutes')}"
    )


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(values: list[float], how: str) -> str:
    good = [v for v in values if v == v]  # drop NaN (no checking time found)
    if not good:
        return "-"
    return f"{statistics.median(good) if how == 'median' else min(good):.2f}"


def table(label: str, about: str, benches: list[Bench]) -> str:
    rows = [
        f"### {label}",
        "",
        about,
        "",
        "| run | command | n | wall median s | wall min s | check median s | check min s "
        "| cpu median s | exit | load 1-min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for b in benches:
        if not b.walls:
            continue
        exits = ",".join(sorted({str(e) for e in b.exits}))
        ok = "" if set(b.exits) == {b.expect} else f" (expected {b.expect})"
        lo, hi = min(b.loads), max(b.loads)
        load = f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"
        cmd = " ".join(["python -m crosscheck", *b.args])
        rows.append(
            f"| {b.key} | `{cmd}` | {len(b.walls)} | {fmt(b.walls, 'median')} "
            f"| {fmt(b.walls, 'min')} | {fmt(b.checks, 'median')} | {fmt(b.checks, 'min')} "
            f"| {fmt(b.cpus, 'median')} | {exits}{ok} | {load} |"
        )
    return "\n".join(rows) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="Time crosscheck's verify, CLI and soak runs.")
    p.add_argument("--repo", type=Path, default=HERE_REPO, help="checkout to run in (cwd)")
    p.add_argument("--python", default=sys.executable, help="interpreter with the project")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each short command")
    p.add_argument("--skip-soak", action="store_true", help="leave out the 10,000-case soak")
    p.add_argument("--soak-json", default="/tmp/soak.json", help="the soak's --json report")
    p.add_argument("--label", default="crosscheck timing", help="heading of the table")
    p.add_argument("--out", type=Path, help="append the markdown table to this file")
    a = p.parse_args()
    repo = a.repo.resolve()

    benches = [
        Bench("verify", ["--cases", "240"], expect=0),
        Bench("student", ["--layer", "examples.student_layer:TimeRNN", "--cases", "30"], 1),
        Bench("correct", ["--layer", "handrnn:TimeRNN", "--cases", "30"], expect=0),
    ]
    if not a.skip_soak:
        help_text = subprocess.run(
            [a.python, "-m", "crosscheck", "--help"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        jobs = ["--jobs", "2"] if "--jobs" in help_text else []
        soak_args = ["--cases", "10000", "--seed", "2026", "--json", a.soak_json, *jobs]
        benches.append(Bench("soak", soak_args, 0, warm_up=False, json_path=a.soak_json))

    about, start_load = describe(repo, a.python), loadavg()
    print(about, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench_crosscheck_") as tmp_dir:
        tmp = Path(tmp_dir)
        short = [b for b in benches if b.warm_up]
        print("warm-up (not in the table):", file=sys.stderr)
        for b in short:
            run_once(b, a.python, repo, tmp)
            b.walls, b.checks, b.cpus, b.loads, b.exits = [], [], [], [], []
        for i in range(a.repeat):
            print(f"round {i + 1}/{a.repeat}:", file=sys.stderr)
            for b in short:
                run_once(b, a.python, repo, tmp)
        for b in benches:
            if not b.warm_up:
                print("once:", file=sys.stderr)
                run_once(b, a.python, repo, tmp)

    about += f"; load average {start_load} at the start, {loadavg()} at the end"
    text = table(a.label, about, benches)
    print(text)
    if a.out:
        with a.out.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0 if all(set(b.exits) <= {b.expect} for b in benches) else 1


if __name__ == "__main__":
    sys.exit(main())
