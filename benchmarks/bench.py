"""Speed and memory of handrnn.TimeRNN: forward + backward, float32, on this machine.

    python benchmarks/bench.py            # the full report (about two minutes)
    python benchmarks/bench.py --quick    # few repeats, a smaller GEMM probe: a smoke run

Compared at each size (N, T, D, H), on the same float32 weights and data:

- ours: `handrnn.TimeRNN`;
- book: the book's per-step TimeRNN (`benchmarks/book_time_rnn.py`);
- torch: `torch.nn.RNN` (tanh, batch_first) on the CPU, with as many threads as NumPy's BLAS;
- jax: a jitted `lax.scan` forward and its `vjp`, compile time excluded.

torch and jax are skipped if not installed. Every contestant runs forward + backward
(hs, dxs and the three weight gradients), and is first checked to compute the same
numbers as ours. Times are medians: all sizes and contestants take turns in blocks, in a
shuffled order each round, each block after a short pause (so that one library's spinning
thread pool cannot slow down the next) and one untimed call. GEMM-bound: the time
6*N*T*H*(D+H) flops (the matrix products of forward + backward) take at this machine's
measured float32 GEMM rate, over our time.

Peak memory: tracemalloc's peak during one forward + backward, with the layer and its
inputs allocated before measuring (NumPy reports its array allocations to tracemalloc).

The report is printed as Markdown and also written to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import glob
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import book_time_rnn

from handrnn import TimeRNN

Array = NDArray[Any]
Size = tuple[int, int, int, int]
Step = Callable[[], dict[str, Array]]  # one forward + backward -> {"hs", "dxs", "dWx", ...}

SIZES: list[Size] = [
    (10, 5, 100, 100),
    (20, 35, 100, 100),
    (64, 100, 256, 256),
    (32, 1000, 128, 128),
    (20, 35, 650, 650),
]
MEMORY_SIZE: Size = (8, 2000, 256, 256)
BOOK_SPEEDUP_TARGETS = {(10, 5, 100, 100): 2.0, (20, 35, 100, 100): 2.2, (64, 100, 256, 256): 1.6}
GEMM_BOUND_TARGETS = {(64, 100, 256, 256): 0.70, (20, 35, 650, 650): 0.70}
MEMORY_TARGET_MIB = 80.0
MIB = 2**20


@dataclass
class Settings:
    rounds: int  # turns each contestant takes
    budget: float  # seconds of timed calls per contestant and size
    pause: float  # seconds before each block
    gemm_n: int  # size of the GEMM-rate probe
    gemm_reps: int

    @classmethod
    def of(cls, quick: bool) -> Settings:
        return cls(3, 0.3, 0.05, 1024, 3) if quick else cls(7, 3.0, 0.3, 2048, 10)


# ----------------------------------------------------------------------------- the machine


def blas_threads() -> int:
    """The thread count of NumPy's OpenBLAS, asked from the library; else the environment."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*"))
    getters = (
        "scipy_openblas_get_num_threads64_",
        "openblas_get_num_threads64_",
        "openblas_get_num_threads",
    )
    for path in libs:
        if "openblas" in os.path.basename(path):
            lib = ctypes.CDLL(path)
            for name in getters:
                if hasattr(lib, name):
                    return int(getattr(lib, name)())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[func-returns-value]
        return f"{blas['name']} {blas['version']}"
    except Exception:
        return "unknown BLAS"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def gemm_rate(n: int, repeats: int) -> float:
    """Best float32 flop rate of `repeats` (n, n) @ (n, n) products, after one warm-up."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    return 2 * n**3 / min(timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))


class CpuShare:
    """How much CPU other processes used while we ran (from /proc/stat; None elsewhere)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # not idle/iowait
        own = sum(os.times()[:2])  # this process, all its threads
        return busy, own, time.monotonic()

    def others(self) -> float | None:
        """Other processes' CPU time since start, as a fraction of all the CPUs' time."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- the contestants


@dataclass
class Problem:
    """float32 weights (at torch.nn.RNN's init scale) and data for one size."""

    size: Size
    Wx: Array
    Wh: Array
    b: Array
    xs: Array
    dhs: Array

    @classmethod
    def make(cls, size: Size, seed: int = 0) -> Problem:
        N, T, D, H = size
        rng = np.random.default_rng(seed)
        k = 1 / np.sqrt(H)

        def uniform(*shape: int) -> Array:
            return rng.uniform(-k, k, shape).astype(np.float32)

        xs = rng.standard_normal((N, T, D), dtype=np.float32)
        dhs = rng.standard_normal((N, T, H), dtype=np.float32)
        return cls(size, uniform(D, H), uniform(H, H), uniform(H), xs, dhs)


def numpy_step(layer_cls: Any, p: Problem) -> Step:
    """ours or the book: the same API."""
    layer = layer_cls(p.Wx, p.Wh, p.b)

    def step() -> dict[str, Array]:
        hs = layer.forward(p.xs)
        dxs = layer.backward(p.dhs)
        dWx, dWh, db = layer.grads
        return {"hs": hs, "dxs": dxs, "dWx": dWx, "dWh": dWh, "db": db}

    return step


def torch_step(p: Problem, threads: int) -> Step:
    """torch.nn.RNN computes tanh(x W_ih^T + b_ih + h W_hh^T + b_hh): W_ih = Wx^T, b_hh = 0."""
    import torch

    torch.set_num_threads(threads)
    _, _, D, H = p.size
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(p.Wx.T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p.Wh.T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(p.b))
        rnn.bias_hh_l0.zero_()
    xs = torch.from_numpy(p.xs).requires_grad_(True)
    dhs = torch.from_numpy(p.dhs)

    def step() -> dict[str, Array]:
        xs.grad = None
        rnn.zero_grad(set_to_none=True)
        hs, _ = rnn(xs)
        hs.backward(dhs)
        assert xs.grad is not None
        return {
            "hs": hs.detach().numpy(),
            "dxs": xs.grad.numpy(),
            "dWx": rnn.weight_ih_l0.grad.numpy().T,
            "dWh": rnn.weight_hh_l0.grad.numpy().T,
            "db": rnn.bias_ih_l0.grad.numpy(),
        }

    return step


def jax_step(p: Problem) -> Step:
    """A jitted scan over time (input projection hoisted) and its vjp."""
    import jax
    import jax.numpy as jnp

    def forward(params: tuple[Any, Any, Any], xs: Any) -> Any:
        Wx, Wh, b = params
        proj = jnp.einsum("ntd,dh->tnh", xs, Wx) + b

        def cell(h: Any, p_t: Any) -> tuple[Any, Any]:
            h = jnp.tanh(p_t + h @ Wh)
            return h, h

        _, hs = jax.lax.scan(cell, jnp.zeros((xs.shape[0], Wh.shape[0]), xs.dtype), proj)
        return hs.transpose(1, 0, 2)

    @jax.jit
    def forward_backward(params: tuple[Any, Any, Any], xs: Any, dhs: Any) -> Any:
        hs, vjp = jax.vjp(forward, params, xs)
        (dWx, dWh, db), dxs = vjp(dhs)
        return {"hs": hs, "dxs": dxs, "dWx": dWx, "dWh": dWh, "db": db}

    params = (jnp.asarray(p.Wx), jnp.asarray(p.Wh), jnp.asarray(p.b))
    xs, dhs = jnp.asarray(p.xs), jnp.asarray(p.dhs)
    jax.block_until_ready(forward_backward(params, xs, dhs))  # compile outside the timing

    def step() -> dict[str, Array]:
        return jax.block_until_ready(forward_backward(params, xs, dhs))  # type: ignore[no-any-return]

    return step


def max_rel_diff(ref: dict[str, Array], got: dict[str, Array]) -> float:
    """Largest over the outputs of max|got - ref| / max|ref|: a sanity check, not a test."""
    return max(
        float(np.max(np.abs(np.asarray(got[k]) - r)) / max(float(np.max(np.abs(r))), 1e-30))
        for k, r in ref.items()
    )


# ----------------------------------------------------------------------------- measuring


Key = tuple[Size, str]  # (size, contestant)


def time_in_turns(steps: dict[Key, Step], s: Settings) -> dict[Key, float]:
    """Median seconds per call of each step, over `s.rounds` rounds of turns.

    In each round every step (every size and contestant) runs one block of calls, about
    s.budget / s.rounds seconds (at least 3 calls), after a pause of s.pause seconds and
    one untimed call; the order is shuffled each round (fixed seed). Spreading each
    step's blocks over the whole run keeps a slow spell of a shared machine from
    landing on one size or one contestant only.
    """
    keys = list(steps)
    per_call = {k: max(timed(steps[k]), 1e-6) for k in keys}  # also a warm-up
    samples: dict[Key, list[float]] = {k: [] for k in keys}
    order = np.random.default_rng(0)
    for r in range(s.rounds):
        print(f"round {r + 1} of {s.rounds} ...", file=sys.stderr, flush=True)
        for i in order.permutation(len(keys)):
            step = steps[keys[i]]
            time.sleep(s.pause)
            step()
            reps = max(3, round(s.budget / s.rounds / per_call[keys[i]]))
            samples[keys[i]].extend(timed(step) for _ in range(reps))
    return {k: statistics.median(v) for k, v in samples.items()}


@dataclass
class Row:
    size: Size
    times: dict[str, float]  # median seconds per contestant
    diffs: dict[str, float]  # largest relative difference from ours, per contestant


def contestants(size: Size, frameworks: list[str], threads: int) -> tuple[dict[str, Step], Row]:
    """The steps at one size, and a Row with how far each contestant is from ours."""
    p = Problem.make(size)
    steps = {"ours": numpy_step(TimeRNN, p), "book": numpy_step(book_time_rnn.TimeRNN, p)}
    if "torch" in frameworks:
        steps["torch"] = torch_step(p, threads)
    if "jax" in frameworks:
        steps["jax"] = jax_step(p)
    ref = {k: v.copy() for k, v in steps["ours"]().items()}
    diffs = {n: max_rel_diff(ref, step()) for n, step in steps.items() if n != "ours"}
    return steps, Row(size, {}, diffs)


def peak_mib(layer_cls: Any, p: Problem) -> tuple[float, float]:
    """(peak during, kept by the layer after) one forward + backward, in MiB, by tracemalloc.

    hs and dxs are alive until backward returns (as in training), so they count in the
    peak; "kept" is what is still allocated once the caller has dropped them.
    """
    layer = layer_cls(p.Wx, p.Wh, p.b)
    gc.collect()
    tracemalloc.start()
    try:
        hs = layer.forward(p.xs)
        dxs = layer.backward(p.dhs)
        peak = tracemalloc.get_traced_memory()[1]
        del hs, dxs
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return peak / MIB, kept / MIB


# ----------------------------------------------------------------------------- the report


def size_str(size: Size) -> str:
    return "(" + ", ".join(map(str, size)) + ")"


def ms(t: float | None) -> str:
    return "-" if t is None else f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}"


def ratio(other: float | None, ours: float) -> str:
    return "-" if other is None else f"{other / ours:.2f}x"


def gemm_bound(size: Size, seconds: float, rate: float) -> float:
    N, T, D, H = size
    return 6 * N * T * H * (D + H) / rate / seconds


def report(
    header: list[str],
    rows: list[Row],
    rate: float,
    memory: dict[str, tuple[float, float]],
    memory_size: Size,
) -> list[str]:
    """The Markdown report: speed table, agreement, memory table, targets."""
    lines = [
        *header,
        "",
        "| size (N, T, D, H) | ours ms | book ms | vs book | torch ms | vs torch "
        "| jax ms | vs jax | GEMM-bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    targets: list[tuple[str, str, bool]] = []
    for row in rows:
        t, where = row.times, size_str(row.size)
        ours, book, tch, jx = t["ours"], t["book"], t.get("torch"), t.get("jax")
        bound = gemm_bound(row.size, ours, rate)
        cells = [where, ms(ours), ms(book), ratio(book, ours), ms(tch), ratio(tch, ours)]
        cells += [ms(jx), ratio(jx, ours), f"{bound:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
        if row.size in BOOK_SPEEDUP_TARGETS:
            want = BOOK_SPEEDUP_TARGETS[row.size]
            targets.append((f"{where}: {want}x the book", ratio(book, ours), book / ours >= want))
        if tch is not None and row.size in SIZES:
            targets.append((f"{where}: faster than torch.nn.RNN", ratio(tch, ours), tch > ours))
        if row.size in GEMM_BOUND_TARGETS:
            want = GEMM_BOUND_TARGETS[row.size]
            targets.append((f"{where}: {want:.0%} GEMM-bound", f"{bound:.0%}", bound >= want))

    diffs = "; ".join(
        size_str(r.size) + ": " + ", ".join(f"{n} {d:.1e}" for n, d in r.diffs.items())
        for r in rows
    )
    lines += ["", f"Largest relative difference from ours over hs, dxs, dWx, dWh, db: {diffs}."]

    N, T, _, H = memory_size
    lines += [
        "",
        f"Peak memory of one forward + backward at {size_str(memory_size)}, float32, by "
        "tracemalloc (NumPy reports its array allocations to it); the layer, xs and dhs are "
        'allocated before measuring, the returned hs and dxs count, and "kept" is what the '
        f"layer still holds once the caller drops them. One (N, T, H) array is "
        f"{N * T * H * 4 / MIB:.1f} MiB.",
        "",
        "| | peak MiB | kept MiB |",
        "|---|---:|---:|",
        *(f"| {name} | {peak:.1f} | {kept:.1f} |" for name, (peak, kept) in memory.items()),
    ]
    if memory_size == MEMORY_SIZE:
        ours_peak = memory["ours"][0]
        what = f"{size_str(memory_size)}: peak memory under {MEMORY_TARGET_MIB:.0f} MiB"
        targets.append((what, f"{ours_peak:.1f} MiB", ours_peak < MEMORY_TARGET_MIB))

    lines += ["", "| target | ours | |", "|---|---:|---|"]
    lines += [f"| {what} | {got} | {'PASS' if ok else 'MISS'} |" for what, got, ok in targets]
    if not targets:
        lines.append("| (no target sizes in this run) | | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the report here (default: benchmarks/results.md, except with "
        "--quick, whose rough numbers must not replace the published run)",
    )
    ap.add_argument("--sizes", nargs="+", type=parse_size, default=SIZES, metavar="N,T,D,H")
    ap.add_argument("--memory-size", type=parse_size, default=MEMORY_SIZE, metavar="N,T,D,H")
    ap.add_argument("--no-frameworks", action="store_true", help="skip torch and JAX")
    args = ap.parse_args(argv)
    args.sizes = list(dict.fromkeys(args.sizes))  # each size once

    cpu = CpuShare()
    s = Settings.of(args.quick)
    threads = blas_threads()
    versions = {"torch": "not installed", "jax": "not installed"}
    if not args.no_frameworks:
        for name in versions:
            with contextlib.suppress(ImportError):
                versions[name] = __import__(name).__version__
    frameworks = [n for n, v in versions.items() if v != "not installed"]

    rates = [gemm_rate(s.gemm_n, s.gemm_reps)]
    steps: dict[Key, Step] = {}
    rows = []
    for size in args.sizes:
        print(f"setting up {size_str(size)} ...", file=sys.stderr, flush=True)
        size_steps, row = contestants(size, frameworks, threads)
        steps.update(((size, name), step) for name, step in size_steps.items())
        rows.append(row)
    times = time_in_turns(steps, s)
    for row in rows:
        row.times = {name: t for (size, name), t in times.items() if size == row.size}
    del steps
    print(f"peak memory at {size_str(args.memory_size)} ...", file=sys.stderr, flush=True)
    p = Problem.make(args.memory_size)
    memory = {"ours": peak_mib(TimeRNN, p), "book": peak_mib(book_time_rnn.TimeRNN, p)}
    del p
    rates.append(gemm_rate(s.gemm_n, s.gemm_reps))
    others = cpu.others()

    n = s.gemm_n
    header = [
        "## handrnn.TimeRNN: forward + backward, float32",
        "",
        f"- numpy {np.__version__} ({blas_name()}, {threads} BLAS threads); "
        f"torch {versions['torch']}"
        + (f" ({threads} threads, set to match)" if "torch" in frameworks else "")
        + f"; jax {versions['jax']}"
        + (" (XLA CPU, its default threads)" if "jax" in frameworks else "")
        + f"; Python {platform.python_version()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs; float32 GEMM rate {max(rates) / 1e9:.1f} "
        f"GFLOP/s: the best of {2 * s.gemm_reps} ({n}, {n}) @ ({n}, {n}) products, half at "
        f"the start and half at the end ({rates[0] / 1e9:.1f} and {rates[1] / 1e9:.1f})",
        f"- medians over {s.rounds} rounds in which every size and contestant takes a turn"
        f"{' (--quick)' if args.quick else ''}; "
        '"vs": the other\'s time / ours (above 1: ours is faster); GEMM-bound: the time of '
        "6*N*T*H*(D+H) flops at the GEMM rate / our time",
    ]
    if others is not None:
        warning = ": the times are unreliable" if others > 0.05 else ""
        header.append(f"- other processes used {others:.0%} of the CPUs during the run{warning}")

    lines = report(header, rows, max(rates), memory, args.memory_size)
    print("\n".join(lines))
    if args.out is None and not args.quick:
        args.out = Path(__file__).parent / "results.md"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        print(f"(written to {args.out})", file=sys.stderr)
    return 0


def parse_size(text: str) -> Size:
    """'8,2000,256,256' -> (8, 2000, 256, 256)."""
    parts = tuple(int(v) for v in text.split(","))
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N,T,D,H (four positive integers), got {text!r}")
    return parts  # type: ignore[return-value]


if __name__ == "__main__":
    raise SystemExit(main())
