"""Speed and memory of handrnn.TimeRNN: forward + backward, float32, on this machine.

    python benchmarks/bench.py            # the full table (a few minutes)
    python benchmarks/bench.py --quick    # fewer repeats, smaller GEMM probe: a smoke run

Compared, at each size (N, T, D, H), on the same float32 weights and data:

- ours: `handrnn.TimeRNN`;
- book: the book's per-step TimeRNN (`benchmarks/book_time_rnn.py`);
- torch: `torch.nn.RNN` (tanh, batch_first) on the CPU with as many threads as NumPy's BLAS;
- jax: a jitted `lax.scan` forward and its `vjp`, compile time excluded (if JAX is installed).

Every implementation runs forward + backward (hs, dxs and the three weight gradients).
Times are medians: implementations take turns in blocks, each block preceded by a short
pause (so another library's spinning thread pool cannot slow the next one down) and one
untimed call. The GEMM-bound fraction divides the time the matrix products alone would
take at this machine's measured float32 GEMM rate, 6*N*T*H*(D+H) flops, by our time.

Peak memory is tracemalloc's peak during one forward + backward, with the layer and its
inputs allocated before measuring; NumPy reports its array allocations to tracemalloc.
The table is printed as Markdown and also written to --out.
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import book_time_rnn  # noqa: E402

from handrnn import TimeRNN  # noqa: E402

Array = NDArray[Any]
Size = tuple[int, int, int, int]

SIZES: list[Size] = [(10, 5, 100, 100), (20, 35, 100, 100), (64, 100, 256, 256),
                     (32, 1000, 128, 128), (20, 35, 650, 650)]  # fmt: skip
MEMORY_SIZE: Size = (8, 2000, 256, 256)
BOOK_SPEEDUP_TARGETS = {(20, 35, 100, 100): 2.2, (10, 5, 100, 100): 2.0, (64, 100, 256, 256): 1.6}
GEMM_BOUND_TARGETS = {(64, 100, 256, 256): 0.70, (20, 35, 650, 650): 0.70}
MEMORY_TARGET_MIB = 80.0
MIB = 2**20


# ----------------------------------------------------------------------------- the machine


def blas_threads() -> int:
    """The thread count of NumPy's OpenBLAS, asked from the library; else the environment."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*"))
    names = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
             "openblas_get_num_threads")  # fmt: skip
    for path in libs:
        if "openblas" not in os.path.basename(path):
            continue
        lib = ctypes.CDLL(path)
        for name in names:
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
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gemm_rate(n: int, repeats: int) -> float:
    """Best float32 flop rate of `repeats` (n, n) @ (n, n) products, after one warm-up."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- the contestants


@dataclass
class Problem:
    """float32 weights (torch.nn.RNN's init scale) and data for one size."""

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


Step = Callable[[], dict[str, Array]]  # one forward + backward -> {"hs", "dxs", "dWx", ...}


def numpy_step(layer_cls: Any, p: Problem) -> Step:
    layer = layer_cls(p.Wx, p.Wh, p.b)

    def step() -> dict[str, Array]:
        hs = layer.forward(p.xs)
        dxs = layer.backward(p.dhs)
        dWx, dWh, db = layer.grads
        return {"hs": hs, "dxs": dxs, "dWx": dWx, "dWh": dWh, "db": db}

    return step


def torch_step(p: Problem, threads: int) -> Step:
    import torch

    torch.set_num_threads(threads)
    N, T, D, H = p.size
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():  # h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
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
        return {"hs": hs.detach().numpy(), "dxs": xs.grad.numpy(),  # type: ignore[union-attr]
                "dWx": rnn.weight_ih_l0.grad.numpy().T, "dWh": rnn.weight_hh_l0.grad.numpy().T,
                "db": rnn.bias_ih_l0.grad.numpy()}  # fmt: skip

    return step


def jax_step(p: Problem) -> Step:
    import jax
    import jax.numpy as jnp

    def forward(params: tuple[Any, Any, Any], xs: Any) -> Any:
        Wx, Wh, b = params
        proj = jnp.einsum("ntd,dh->tnh", xs, Wx) + b  # the input projection, hoisted

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

    args = ((jnp.asarray(p.Wx), jnp.asarray(p.Wh), jnp.asarray(p.b)), jnp.asarray(p.xs),
            jnp.asarray(p.dhs))  # fmt: skip
    jax.block_until_ready(forward_backward(*args))  # compile outside the timing

    def step() -> dict[str, Array]:
        return jax.block_until_ready(forward_backward(*args))  # type: ignore[no-any-return]

    return step


def max_rel_err(ref: dict[str, Array], got: dict[str, Array]) -> float:
    """Largest over outputs of max|got - ref| / max|ref| (a sanity check, not a test)."""
    errs = [float(np.max(np.abs(np.asarray(got[k]) - r)) / max(float(np.max(np.abs(r))), 1e-30))
            for k, r in ref.items()]  # fmt: skip
    return max(errs)


# ----------------------------------------------------------------------------- timing


@dataclass
class Timing:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float | None:
        s = self.samples.get(name)
        return statistics.median(s) if s else None


def time_interleaved(steps: dict[str, Step], rounds: int, budget: float, pause: float) -> Timing:
    """Medians over `rounds` rounds; in each round every step runs one block of calls.

    Each block starts after `pause` seconds and one untimed call, and lasts about
    budget / rounds seconds (at least 3 calls). The order of the steps rotates each round.
    """
    names = list(steps)
    per_call = {n: max(_timed(steps[n]), 1e-6) for n in names}  # also a warm-up
    timing = Timing({n: [] for n in names})
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(pause)
            steps[n]()
            reps = max(3, round(budget / rounds / per_call[n]))
            timing.samples[n].extend(_timed(steps[n]) for _ in range(reps))
    return timing


def peak_mib(layer_cls: Any, p: Problem) -> tuple[float, float]:
    """(peak, kept afterwards) in MiB of one forward + backward, by tracemalloc."""
    layer = layer_cls(p.Wx, p.Wh, p.b)
    gc.collect()
    tracemalloc.start()
    try:
        hs = layer.forward(p.xs)
        dxs = layer.backward(p.dhs)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del hs, dxs, layer
    return peak / MIB, current / MIB


# ----------------------------------------------------------------------------- the report


def fmt_ms(t: float | None) -> str:
    return "-" if t is None else f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}"


def ratio(other: float | None, ours: float | None) -> str:
    return "-" if other is None or ours is None else f"{other / ours:.2f}x"


def size_str(size: Size) -> str:
    return "(" + ", ".join(map(str, size)) + ")"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results.md",
                    help="also write the Markdown table here (default: benchmarks/results.md)")  # fmt: skip
    ap.add_argument("--sizes", nargs="+", type=_size, default=SIZES, metavar="N,T,D,H",
                    help="speed-table sizes (default: the five target sizes)")  # fmt: skip
    ap.add_argument("--memory-size", type=_size, default=MEMORY_SIZE, metavar="N,T,D,H",
                    help=f"size of the peak-memory run (default: {','.join(map(str, MEMORY_SIZE))})")  # fmt: skip
    ap.add_argument("--no-frameworks", action="store_true", help="skip torch and JAX")
    args = ap.parse_args(argv)

    rounds, budget, pause = (3, 0.3, 0.05) if args.quick else (7, 3.0, 0.3)
    gemm_n, gemm_reps = (1024, 3) if args.quick else (2048, 10)
    threads = blas_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    torch_mod = jax_mod = None
    if not args.no_frameworks:
        try:
            import torch as torch_mod
        except ImportError:
            pass
        try:
            import jax as jax_mod
        except ImportError:
            pass

    rate = gemm_rate(gemm_n, gemm_reps)
    lines = [
        "## handrnn.TimeRNN benchmark: forward + backward, float32",
        "",
        f"- numpy {np.__version__} ({blas_name()}, {threads} BLAS threads); "
        f"torch {torch_mod.__version__ if torch_mod else 'not installed'}"
        f"{f' ({threads} threads, set to match)' if torch_mod else ''}; "
        f"jax {jax_mod.__version__ if jax_mod else 'not installed'}"
        f"{' (XLA CPU, its default threads)' if jax_mod else ''}; Python {platform.python_version()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs; load average at start {load:.2f}",
        f"- float32 GEMM rate: {rate / 1e9:.1f} GFLOP/s "
        f"(best of {gemm_reps} ({gemm_n}, {gemm_n}) @ ({gemm_n}, {gemm_n}) products)",
        f"- times: medians of {rounds} interleaved rounds"
        f"{' (--quick)' if args.quick else ''}; ratios are the other's time / ours "
        "(above 1: ours is faster)",
        "",
        "| size (N, T, D, H) | ours ms | book ms | vs book | torch ms | vs torch "
        "| jax ms | vs jax | GEMM-bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if load > 0.5:
        lines.insert(4, f"- WARNING: the machine was busy (load {load:.2f}): times are unreliable")
    print("\n".join(lines), flush=True)

    targets: list[tuple[str, str, bool]] = []
    agreement: list[str] = []
    for size in args.sizes:
        p = Problem.make(size)
        N, T, D, H = size
        steps: dict[str, Step] = {
            "ours": numpy_step(TimeRNN, p),
            "book": numpy_step(book_time_rnn.TimeRNN, p),
        }
        if torch_mod is not None:
            steps["torch"] = torch_step(p, threads)
        if jax_mod is not None:
            steps["jax"] = jax_step(p)
        ref = {k: v.copy() for k, v in steps["ours"]().items()}
        errs = {n: max_rel_err(ref, steps[n]()) for n in steps if n != "ours"}
        agreement.append(
            f"{size_str(size)}: " + ", ".join(f"{n} {e:.1e}" for n, e in errs.items())
        )

        timing = time_interleaved(steps, rounds, budget, pause)
        ours, book, tch, jx = (timing.median(n) for n in ("ours", "book", "torch", "jax"))
        assert ours is not None and book is not None
        bound = 6 * N * T * H * (D + H) / rate / ours
        row = (f"| {size_str(size)} | {fmt_ms(ours)} | {fmt_ms(book)} | {ratio(book, ours)} "
               f"| {fmt_ms(tch)} | {ratio(tch, ours)} | {fmt_ms(jx)} | {ratio(jx, ours)} "
               f"| {bound:.0%} |")  # fmt: skip
        lines.append(row)
        print(row, flush=True)

        if size in BOOK_SPEEDUP_TARGETS:
            want = BOOK_SPEEDUP_TARGETS[size]
            got = book / ours
            targets.append((f"{size_str(size)}: at least {want}x the book", f"{got:.2f}x",
                            got >= want))  # fmt: skip
        if tch is not None and size in SIZES:
            targets.append((f"{size_str(size)}: faster than torch.nn.RNN", f"{tch / ours:.2f}x",
                            tch > ours))  # fmt: skip
        if size in GEMM_BOUND_TARGETS:
            want = GEMM_BOUND_TARGETS[size]
            targets.append((f"{size_str(size)}: at least {want:.0%} GEMM-bound", f"{bound:.0%}",
                            bound >= want))  # fmt: skip
        del steps, p
        gc.collect()

    mem = Problem.make(args.memory_size)
    ours_peak, ours_kept = peak_mib(TimeRNN, mem)
    book_peak, book_kept = peak_mib(book_time_rnn.TimeRNN, mem)
    del mem
    N, T, D, H = args.memory_size
    unit = N * T * H * 4 / MIB
    more = [
        "",
        f"Results agree with ours (max relative difference over hs, dxs, dWx, dWh, db): "
        + "; ".join(agreement),
        "",
        f"Peak memory of one forward + backward at {size_str(args.memory_size)}, float32 "
        "(tracemalloc, which NumPy reports its allocations to; layer, xs and dhs allocated "
        f"before measuring; the returned hs and dxs count; one (N, T, H) array is {unit:.1f} MiB):",
        "",
        "| | peak MiB | kept after backward MiB |",
        "|---|---:|---:|",
        f"| ours | {ours_peak:.1f} | {ours_kept:.1f} |",
        f"| book | {book_peak:.1f} | {book_kept:.1f} |",
    ]
    if args.memory_size == MEMORY_SIZE:
        targets.append((f"{size_str(MEMORY_SIZE)}: peak memory under {MEMORY_TARGET_MIB:.0f} MiB",
                        f"{ours_peak:.1f} MiB", ours_peak < MEMORY_TARGET_MIB))  # fmt: skip
    more += ["", "| target | measured | |", "|---|---:|---|"]
    more += [f"| {what} | {got} | {verdict(ok)} |" for what, got, ok in targets]
    if not targets:
        more.append("| (no target sizes in this run) | | |")
    print("\n".join(more), flush=True)
    lines += more

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        print(f"\n(written to {args.out})")
    return 0


def _size(text: str) -> Size:
    parts = tuple(int(v) for v in text.split(","))
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N,T,D,H (four positive integers), got {text!r}")
    return parts  # type: ignore[return-value]


if __name__ == "__main__":
    raise SystemExit(main())
