"""Speed of handrnn's TimeRNN, TimeLSTM and TimeGRU, and TimeRNN's memory: forward + backward,
float32, on this machine.

    python benchmarks/bench.py            # the full report (about four minutes)
    python benchmarks/bench.py --quick    # few repeats, a smaller GEMM probe: a smoke run

Compared at each size (N, T, D, H), on the same float32 weights and data:

- ours: `handrnn.TimeRNN`, `handrnn.TimeLSTM`, `handrnn.TimeGRU` (the last two are left
  out, and the book's is the reference, in a checkout that does not have them yet);
- book: the book's per-step layers (`benchmarks/book_time_rnn.py`, `book_time_lstm.py`,
  `book_time_gru.py`);
- torch: `torch.nn.RNN` (tanh) / `LSTM` / `GRU`, batch_first, on the CPU, with as many
  threads as NumPy's BLAS, loaded with our weights (the gates reordered). torch.nn.GRU
  computes another formula (r applied after the product, z weighing the other way): it
  is timed only, not checked;
- jax: a jitted `lax.scan` of the book's formulas (input projection hoisted) and its
  `vjp`, compile time excluded.

torch and jax are skipped if not installed. Every contestant runs forward + backward
(hs, dxs and the three weight gradients), and is first checked to compute the same
numbers as ours. Times are medians: all cells, sizes and contestants take turns in
blocks, in a shuffled order each round, each block after a short pause (so that one
library's spinning thread pool cannot slow down the next) and one untimed call.
GEMM-bound: the time 6*N*T*G*H*(D+H) flops (the matrix products of forward + backward,
G = 1, 4, 3 gates) take at this machine's measured float32 GEMM rate, over our time.

NumPy's BLAS kernel: threadpoolctl reports the one OpenBLAS picked (`pip install
threadpoolctl`; without it, OpenBLAS's own corename is asked). An environment that forces
a kernel (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE: torch and JAX do not read them) does not
time what a user's NumPy does: run from the command line, bench.py runs itself again with
both unset (--keep-blas-env: time the forced kernel), and says so in the report.

Peak memory: tracemalloc's peak during one forward + backward of TimeRNN, with the layer
and its inputs allocated before measuring (NumPy reports its array allocations to
tracemalloc).

The report is printed as Markdown and also written to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import glob
import importlib
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import book_time_gru
import book_time_lstm
import book_time_rnn

from handrnn import TimeRNN

Array = NDArray[Any]
Size = tuple[int, int, int, int]
Step = Callable[[], dict[str, Array]]  # one forward + backward -> {"hs", "dxs", "dWx", ...}

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # Wx is (D, G*H), Wh (H, G*H), b (G*H,)
TITLES = {"rnn": "TimeRNN", "lstm": "TimeLSTM", "gru": "TimeGRU"}
TORCH_NAMES = {"rnn": "torch.nn.RNN", "lstm": "torch.nn.LSTM", "gru": "torch.nn.GRU"}
# handrnn's layers: (module, class); the gated ones are newer than some checkouts.
OURS = {
    "rnn": ("handrnn", "TimeRNN"),
    "lstm": ("handrnn.lstm", "TimeLSTM"),
    "gru": ("handrnn.gru", "TimeGRU"),
}
BOOK = {
    "rnn": book_time_rnn.TimeRNN,
    "lstm": book_time_lstm.TimeLSTM,
    "gru": book_time_gru.TimeGRU,
}
# torch's gate blocks, as indices of ours (the book's): the LSTM's f, g, i, o are torch's
# i, f, g, o; the GRU's z, r, h-hat are torch's r, z, n.
TORCH_GATES = {"rnn": (0,), "lstm": (2, 0, 1, 3), "gru": (1, 0, 2)}
CHECKED_AGAINST_TORCH = {"rnn", "lstm"}  # torch.nn.GRU is another formula: timed only

SIZES: list[Size] = [
    (10, 5, 100, 100),
    (20, 35, 100, 100),
    (64, 100, 256, 256),
    (32, 1000, 128, 128),
    (20, 35, 650, 650),
]
GATED_SIZES: list[Size] = [(20, 35, 100, 100), (64, 100, 256, 256)]
MEMORY_SIZE: Size = (8, 2000, 256, 256)
BOOK_SPEEDUP_TARGETS = {
    "rnn": {(10, 5, 100, 100): 2.0, (20, 35, 100, 100): 2.2, (64, 100, 256, 256): 1.6},
    "lstm": dict.fromkeys(GATED_SIZES, 1.5),
    "gru": dict.fromkeys(GATED_SIZES, 1.5),
}
# Where ours should be faster than torch (and, for the RNN, the JAX scan).
TORCH_TARGETS = {"rnn": set(SIZES), "lstm": {(20, 35, 100, 100)}, "gru": set()}
JAX_TARGETS = {"rnn": set(SIZES), "lstm": set(), "gru": set()}
GEMM_BOUND_TARGETS = {"rnn": {(64, 100, 256, 256): 0.70, (20, 35, 650, 650): 0.70}}
MEMORY_TARGET_MIB = 80.0
MIB = 2**20
# What forces OpenBLAS's kernel choice; the bench runs without them (see the docstring).
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_NOTE = "HANDRNN_BENCH_UNSET"  # tells the re-run process what its parent unset


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


def without_blas_env(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(environ without BLAS_ENV, the BLAS_ENV variables it had): both go together."""
    kept = {k: v for k, v in environ.items() if k not in BLAS_ENV}
    removed = {k: environ[k] for k in BLAS_ENV if k in environ}
    return kept, removed


def rerun_with_native_kernel(argv: list[str]) -> None:
    """If the environment forces OpenBLAS's kernel, replace this process by a run of this
    script without BLAS_ENV (its own environment only); else return."""
    env, removed = without_blas_env(os.environ)
    if not removed:
        return
    note = " ".join(f"{k}={v}" for k, v in removed.items())
    print(f"running again without {note}: NumPy's own kernel ...", file=sys.stderr, flush=True)
    env[UNSET_NOTE] = note
    script = str(Path(__file__).resolve())
    os.execve(sys.executable, [sys.executable, script, *argv], env)


def _openblas_function(*names: str) -> Any | None:
    """The first of `names` exported by the OpenBLAS that NumPy's wheel ships, or None."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*"))
    for path in libs:
        if "openblas" in os.path.basename(path):
            lib = ctypes.CDLL(path)
            for name in names:
                if hasattr(lib, name):
                    return getattr(lib, name)
    return None


def blas_threads() -> int:
    """The thread count of NumPy's OpenBLAS, asked from the library; else the environment."""
    getter = _openblas_function(
        "scipy_openblas_get_num_threads64_",
        "openblas_get_num_threads64_",
        "openblas_get_num_threads",
    )
    if getter is not None:
        return int(getter())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def blas_kernel() -> str:
    """Which BLAS NumPy runs: internal_api, version, kernel (architecture), num_threads.

    From threadpoolctl; without it, OpenBLAS's corename. Call before torch or jax is
    imported, so that only NumPy's libraries are loaded.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        corename = _openblas_function(
            "scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"
        )
        if corename is None:
            return "unknown (threadpoolctl is not installed)"
        corename.restype = ctypes.c_char_p
        return f"OpenBLAS, {corename().decode()} kernel (threadpoolctl is not installed)"
    found = [
        f"{lib['internal_api']} {lib.get('version')}, "
        f"{lib.get('architecture') or lib.get('threading_layer') or 'unknown'} kernel, "
        f"{lib['num_threads']} threads (threadpoolctl)"
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return "; ".join(found) or "none found by threadpoolctl"


def blas_env_note(keep: bool) -> str:
    """What the environment did to the kernel choice: unset by the parent, kept, or none."""
    if os.environ.get(UNSET_NOTE):
        return (
            f"run with {os.environ[UNSET_NOTE]} unset (the calling environment set them; "
            "torch and JAX do not read them)"
        )
    _, forced = without_blas_env(os.environ)
    if forced:
        how = "kept (--keep-blas-env)" if keep else "set (bench.py imported, not re-run)"
        return " ".join(f"{k}={v}" for k, v in forced.items()) + f" {how}: a forced kernel"
    return "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: the kernel OpenBLAS picks for this CPU"


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
    """float32 weights (at torch's init scale, uniform within 1/sqrt(H)) and data for one size.

    gates: 1 for the tanh RNN, 4 for the LSTM, 3 for the GRU; Wx is (D, gates*H).
    """

    size: Size
    Wx: Array
    Wh: Array
    b: Array
    xs: Array
    dhs: Array

    @classmethod
    def make(cls, size: Size, seed: int = 0, gates: int = 1) -> Problem:
        N, T, D, H = size
        rng = np.random.default_rng(seed)
        k = 1 / np.sqrt(H)

        def uniform(*shape: int) -> Array:
            return rng.uniform(-k, k, shape).astype(np.float32)

        xs = rng.standard_normal((N, T, D), dtype=np.float32)
        dhs = rng.standard_normal((N, T, H), dtype=np.float32)
        G = gates * H
        return cls(size, uniform(D, G), uniform(H, G), uniform(G), xs, dhs)


def ours_class(cell: str) -> Any | None:
    """handrnn's layer for `cell` ("rnn", "lstm", "gru"), or None if this checkout lacks it."""
    module, name = OURS[cell]
    with contextlib.suppress(ImportError, AttributeError):
        return getattr(importlib.import_module("handrnn"), name, None) or getattr(
            importlib.import_module(module), name
        )
    return None


def numpy_step(layer_cls: Any, p: Problem) -> Step:
    """ours or the book: the same API."""
    layer = layer_cls(p.Wx, p.Wh, p.b)

    def step() -> dict[str, Array]:
        hs = layer.forward(p.xs)
        dxs = layer.backward(p.dhs)
        dWx, dWh, db = layer.grads
        return {"hs": hs, "dxs": dxs, "dWx": dWx, "dWh": dWh, "db": db}

    return step


def gate_blocks(a: Array, order: tuple[int, ...]) -> Array:
    """a's last axis in len(order) equal blocks, rearranged: block k of the result is a's
    block order[k]."""
    blocks = np.split(a, len(order), axis=-1)
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in order], axis=-1))


def inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    """The order that undoes gate_blocks(., order)."""
    return tuple(int(i) for i in np.argsort(order))


def torch_step(p: Problem, threads: int, cell: str = "rnn") -> Step:
    """torch.nn.RNN (tanh) / LSTM / GRU on the CPU, batch_first, loaded with our weights.

    torch computes its gates from x W_ih^T + b_ih + h W_hh^T + b_hh: W_ih = Wx^T and
    W_hh = Wh^T with the gate blocks in torch's order, b_ih = b, b_hh = 0. Its gradients
    are returned in our layout and gate order.
    """
    import torch

    torch.set_num_threads(threads)
    _, _, D, H = p.size
    if cell == "rnn":
        net: Any = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
    else:
        net = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](D, H, batch_first=True)
    order = TORCH_GATES[cell]
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(gate_blocks(p.Wx, order).T))
        net.weight_hh_l0.copy_(torch.from_numpy(gate_blocks(p.Wh, order).T))
        net.bias_ih_l0.copy_(torch.from_numpy(gate_blocks(p.b, order)))
        net.bias_hh_l0.zero_()
    xs = torch.from_numpy(p.xs).requires_grad_(True)
    dhs = torch.from_numpy(p.dhs)
    back = inverse(order)

    def step() -> dict[str, Array]:
        xs.grad = None
        net.zero_grad(set_to_none=True)
        hs, _ = net(xs)
        hs.backward(dhs)
        assert xs.grad is not None
        return {
            "hs": hs.detach().numpy(),
            "dxs": xs.grad.numpy(),
            "dWx": gate_blocks(net.weight_ih_l0.grad.numpy().T, back),
            "dWh": gate_blocks(net.weight_hh_l0.grad.numpy().T, back),
            "db": gate_blocks(net.bias_ih_l0.grad.numpy(), back),
        }

    return step


def jax_cell(cell: str, Wh: Any) -> tuple[Callable[[Any, Any], tuple[Any, Any]], bool]:
    """One step of the book's formulas for lax.scan, (carry, x_t Wx + b) -> (carry, h_t),
    and whether the carry is (h, c) rather than h."""
    import jax
    import jax.numpy as jnp

    H = Wh.shape[0]
    sigmoid = jax.nn.sigmoid

    def rnn(h: Any, a: Any) -> tuple[Any, Any]:
        h = jnp.tanh(a + h @ Wh)
        return h, h

    def lstm(hc: Any, a: Any) -> tuple[Any, Any]:
        h, c = hc
        A = a + h @ Wh  # the gates f, g, i, o
        f, g = sigmoid(A[:, :H]), jnp.tanh(A[:, H : 2 * H])
        i, o = sigmoid(A[:, 2 * H : 3 * H]), sigmoid(A[:, 3 * H :])
        c = f * c + g * i
        h = o * jnp.tanh(c)
        return (h, c), h

    def gru(h: Any, a: Any) -> tuple[Any, Any]:
        zr = h @ Wh[:, : 2 * H]  # the gates z, r, then the candidate from r * h
        z, r = sigmoid(a[:, :H] + zr[:, :H]), sigmoid(a[:, H : 2 * H] + zr[:, H:])
        h_hat = jnp.tanh(a[:, 2 * H :] + (r * h) @ Wh[:, 2 * H :])
        h = (1 - z) * h + z * h_hat
        return h, h

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell], cell == "lstm"


def jax_step(p: Problem, cell: str = "rnn") -> Step:
    """A jitted scan over time of the book's formulas (input projection hoisted) and its vjp."""
    import jax
    import jax.numpy as jnp

    def forward(params: tuple[Any, Any, Any], xs: Any) -> Any:
        Wx, Wh, b = params
        proj = jnp.einsum("ntd,dg->tng", xs, Wx) + b
        step, with_c = jax_cell(cell, Wh)
        h0 = jnp.zeros((xs.shape[0], Wh.shape[0]), xs.dtype)
        _, hs = jax.lax.scan(step, (h0, h0) if with_c else h0, proj)
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


Key = tuple[str, Size, str]  # (cell, size, contestant)


def time_in_turns(steps: dict[Key, Step], s: Settings) -> dict[Key, float]:
    """Median seconds per call of each step, over `s.rounds` rounds of turns.

    In each round every step (every cell, size and contestant) runs one block of calls,
    about s.budget / s.rounds seconds (at least 3 calls), after a pause of s.pause seconds
    and one untimed call; the order is shuffled each round (fixed seed). Spreading each
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
    cell: str
    size: Size
    reference: str  # "ours", or "book" where this checkout has no handrnn layer for the cell
    diffs: dict[str, float]  # largest relative difference from the reference, per contestant
    times: dict[str, float] = field(default_factory=dict)  # median seconds per contestant


def contestants(
    cell: str, size: Size, frameworks: list[str], threads: int
) -> tuple[dict[str, Step], Row]:
    """The steps of one cell at one size, and a Row with how far each is from the reference."""
    p = Problem.make(size, gates=GATES[cell])
    steps: dict[str, Step] = {}
    ours = ours_class(cell)
    if ours is not None:
        steps["ours"] = numpy_step(ours, p)
    steps["book"] = numpy_step(BOOK[cell], p)
    if "torch" in frameworks:
        steps["torch"] = torch_step(p, threads, cell)
    if "jax" in frameworks:
        steps["jax"] = jax_step(p, cell)
    reference = "ours" if ours is not None else "book"
    ref = {k: v.copy() for k, v in steps[reference]().items()}
    diffs = {}
    for name in (n for n in steps if n != reference):
        got = steps[name]()
        if name == "torch" and cell not in CHECKED_AGAINST_TORCH:  # timed only
            assert all(got[k].shape == v.shape for k, v in ref.items()), name
        else:
            diffs[name] = max_rel_diff(ref, got)
    return steps, Row(cell, size, reference, diffs)


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


Target = tuple[str, str, bool | None]  # (what, what we got, met; None: cannot be judged)


def size_str(size: Size) -> str:
    return "(" + ", ".join(map(str, size)) + ")"


def ms(t: float | None) -> str:
    return "-" if t is None else f"{t * 1e3:.3f}" if t < 0.01 else f"{t * 1e3:.2f}"


def ratio(other: float | None, ours: float | None) -> str:
    return "-" if other is None or ours is None else f"{other / ours:.2f}x"


def gemm_bound(cell: str, size: Size, seconds: float, rate: float) -> float:
    N, T, D, H = size
    return 6 * N * T * GATES[cell] * H * (D + H) / rate / seconds


def row_targets(row: Row, rate: float) -> list[Target]:
    """The targets at one row's cell and size: the book's speed-up, torch, JAX, GEMM-bound."""
    cell, where, t = row.cell, f"{TITLES[row.cell]} {size_str(row.size)}", row.times
    ours = t.get("ours")
    wanted: list[tuple[str, str, float]] = []  # (what, contestant, least speed-up)
    if row.size in BOOK_SPEEDUP_TARGETS[cell]:
        least = BOOK_SPEEDUP_TARGETS[cell][row.size]
        wanted.append((f"{least}x the book", "book", least))
    if row.size in TORCH_TARGETS[cell]:
        wanted.append((f"faster than {TORCH_NAMES[cell]}", "torch", 1.0))
    if row.size in JAX_TARGETS[cell]:
        wanted.append(("faster than the JAX scan", "jax", 1.0))
    targets: list[Target] = []
    for what, name, least in wanted:
        other = t.get(name)
        if other is not None:
            met = None if ours is None else other / ours >= least
            targets.append((f"{where}: {what}", ratio(other, ours), met))
    want = GEMM_BOUND_TARGETS.get(cell, {}).get(row.size)
    if want is not None and ours is not None:
        bound = gemm_bound(cell, row.size, ours, rate)
        targets.append((f"{where}: {want:.0%} GEMM-bound", f"{bound:.0%}", bound >= want))
    return targets


def speed_table(cell: str, rows: list[Row], rate: float) -> list[str]:
    """One cell's speed table and its agreement line."""
    lines = [
        "| size (N, T, D, H) | ours ms | book ms | vs book | torch ms | vs torch "
        "| jax ms | vs jax | GEMM-bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        t = row.times
        ours, book, tch, jx = t.get("ours"), t["book"], t.get("torch"), t.get("jax")
        bound = "-" if ours is None else f"{gemm_bound(cell, row.size, ours, rate):.0%}"
        cells = [size_str(row.size), ms(ours), ms(book), ratio(book, ours), ms(tch)]
        cells += [ratio(tch, ours), ms(jx), ratio(jx, ours), bound]
        lines.append("| " + " | ".join(cells) + " |")

    reference = rows[0].reference if rows else "ours"
    diffs = "; ".join(
        size_str(r.size) + ": " + ", ".join(f"{n} {d:.1e}" for n, d in r.diffs.items())
        for r in rows
    )
    unchecked = "" if cell in CHECKED_AGAINST_TORCH else f" ({TORCH_NAMES[cell]}: timed only)"
    lines += [
        "",
        f"Largest relative difference from {reference} over hs, dxs, dWx, dWh, db: "
        f"{diffs}{unchecked}.",
    ]
    return lines


def memory_table(
    memory: dict[str, tuple[float, float]], size: Size
) -> tuple[list[str], list[Target]]:
    """TimeRNN's peak memory table, and its target."""
    N, T, _, H = size
    lines = [
        f"Peak memory of one forward + backward at {size_str(size)}, float32, by "
        "tracemalloc (NumPy reports its array allocations to it); the layer, xs and dhs are "
        'allocated before measuring, the returned hs and dxs count, and "kept" is what the '
        f"layer still holds once the caller drops them. One (N, T, H) array is "
        f"{N * T * H * 4 / MIB:.1f} MiB.",
        "",
        "| | peak MiB | kept MiB |",
        "|---|---:|---:|",
        *(f"| {name} | {peak:.1f} | {kept:.1f} |" for name, (peak, kept) in memory.items()),
    ]
    targets: list[Target] = []
    if size == MEMORY_SIZE:
        peak = memory["ours"][0]
        what = f"TimeRNN {size_str(size)}: peak memory under {MEMORY_TARGET_MIB:.0f} MiB"
        targets.append((what, f"{peak:.1f} MiB", peak < MEMORY_TARGET_MIB))
    return lines, targets


CELL_NOTES = {
    "rnn": "",
    "lstm": (
        "The book's gates f, g, i, o; torch.nn.LSTM gets them in its order i, f, g, o "
        "(b_hh = 0) and is checked against ours."
    ),
    "gru": (
        "The book's GRU: h_hat = tanh(x Wxh + (r * h) Whh + bh), h' = (1 - z) h + z h_hat; "
        "the JAX scan computes the same. torch.nn.GRU computes another formula "
        "(n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) n + z h): it is given "
        "the same weights and timed only, not checked."
    ),
}


def report(
    header: list[str],
    rows: list[Row],
    rate: float,
    memory: dict[str, tuple[float, float]] | None,
    memory_size: Size,
) -> list[str]:
    """The Markdown report: per cell a speed table and agreement, TimeRNN's memory, targets."""
    lines = list(header)
    targets: list[Target] = []
    for cell in CELLS:
        cell_rows = [r for r in rows if r.cell == cell]
        if not cell_rows:
            continue
        table = speed_table(cell, cell_rows, rate)
        title = f"### {TITLES[cell]}: ours vs the book, {TORCH_NAMES[cell]}, a JAX scan"
        if cell_rows[0].reference != "ours":
            title += f" (handrnn.{TITLES[cell]} is not in this checkout: the book is the reference)"
        lines += ["", title, ""]
        if CELL_NOTES[cell]:
            lines += [CELL_NOTES[cell], ""]
        lines += table
        targets += [target for row in cell_rows for target in row_targets(row, rate)]
        if cell == "rnn" and memory is not None:
            mem_lines, mem_targets = memory_table(memory, memory_size)
            lines += ["", *mem_lines]
            targets += mem_targets

    verdict = {True: "PASS", False: "MISS", None: "n/a (no handrnn layer)"}
    lines += ["", "### Targets", "", "| target | ours | |", "|---|---:|---|"]
    lines += [f"| {what} | {got} | {verdict[ok]} |" for what, got, ok in targets]
    if not targets:
        lines.append("| (no target sizes in this run) | | |")
    return lines


def run_header(args: argparse.Namespace, s: Settings, info: dict[str, Any]) -> list[str]:
    """The report's title and its lines about the machine, the libraries and the method."""
    threads, versions, frameworks, rates = (
        info[k] for k in ("threads", "versions", "frameworks", "rates")
    )
    n = s.gemm_n
    header = [
        "## handrnn: forward + backward, float32",
        "",
        f"- numpy {np.__version__} ({blas_name()}, {threads} BLAS threads); "
        f"torch {versions['torch']}"
        + (f" ({threads} threads, set to match)" if "torch" in frameworks else "")
        + f"; jax {versions['jax']}"
        + (" (XLA CPU, its default threads)" if "jax" in frameworks else "")
        + f"; Python {platform.python_version()}",
        f"- NumPy's BLAS kernel: {info['kernel']}; " + blas_env_note(args.keep_blas_env),
        f"- CPU: {cpu_model()}, {os.cpu_count()} CPUs; float32 GEMM rate {max(rates) / 1e9:.1f} "
        f"GFLOP/s: the best of {2 * s.gemm_reps} ({n}, {n}) @ ({n}, {n}) products, half at "
        f"the start and half at the end ({rates[0] / 1e9:.1f} and {rates[1] / 1e9:.1f})",
        f"- medians over {s.rounds} rounds in which every cell, size and contestant takes a "
        f"turn{' (--quick)' if args.quick else ''}; "
        '"vs": the other\'s time / ours (above 1: ours is faster); GEMM-bound: the time of '
        "6*N*T*G*H*(D+H) flops (G gates: 1, 4, 3) at the GEMM rate / our time",
    ]
    others = info["others"]
    if others is not None:
        warning = ": the times are unreliable" if others > 0.05 else ""
        header.append(f"- other processes used {others:.0%} of the CPUs during the run{warning}")
    return header


def main(argv: list[str] | None = None, rerun: bool = False) -> int:
    """Run the bench; rerun=True (the command line) first drops a forced BLAS kernel."""
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the report here (default: benchmarks/results.md, except with "
        "--quick, whose rough numbers must not replace the published run)",
    )
    ap.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    ap.add_argument("--sizes", nargs="+", type=parse_size, default=SIZES, metavar="N,T,D,H")
    ap.add_argument(
        "--gated-sizes",
        nargs="+",
        type=parse_size,
        default=GATED_SIZES,
        metavar="N,T,D,H",
        help="the sizes of the LSTM and GRU tables",
    )
    ap.add_argument("--memory-size", type=parse_size, default=MEMORY_SIZE, metavar="N,T,D,H")
    ap.add_argument("--no-frameworks", action="store_true", help="skip torch and JAX")
    ap.add_argument(
        "--keep-blas-env",
        action="store_true",
        help=f"time with {' and '.join(BLAS_ENV)} as the environment sets them (default: "
        "run again without them, so NumPy uses the kernel OpenBLAS picks for this CPU)",
    )
    args = ap.parse_args(argv)
    if rerun and not args.keep_blas_env:
        rerun_with_native_kernel(argv)  # returns only if nothing forces the kernel
    args.sizes = list(dict.fromkeys(args.sizes))  # each size once
    args.gated_sizes = list(dict.fromkeys(args.gated_sizes))

    cpu = CpuShare()
    s = Settings.of(args.quick)
    info: dict[str, Any] = {"threads": blas_threads(), "kernel": blas_kernel()}
    versions = {"torch": "not installed", "jax": "not installed"}
    if not args.no_frameworks:
        for name in versions:
            with contextlib.suppress(ImportError):
                versions[name] = __import__(name).__version__
    frameworks = [n for n, v in versions.items() if v != "not installed"]
    info.update(versions=versions, frameworks=frameworks)

    rates = [gemm_rate(s.gemm_n, s.gemm_reps)]
    steps: dict[Key, Step] = {}
    rows = []
    for cell in args.cells:
        for size in args.sizes if cell == "rnn" else args.gated_sizes:
            print(f"setting up {TITLES[cell]} {size_str(size)} ...", file=sys.stderr, flush=True)
            cell_steps, row = contestants(cell, size, frameworks, info["threads"])
            steps.update(((cell, size, name), step) for name, step in cell_steps.items())
            rows.append(row)
    times = time_in_turns(steps, s)
    for row in rows:
        row.times = {n: t for (c, size, n), t in times.items() if (c, size) == (row.cell, row.size)}
    del steps
    memory = None
    if "rnn" in args.cells:
        print(f"peak memory at {size_str(args.memory_size)} ...", file=sys.stderr, flush=True)
        p = Problem.make(args.memory_size)
        memory = {"ours": peak_mib(TimeRNN, p), "book": peak_mib(book_time_rnn.TimeRNN, p)}
        del p
    rates.append(gemm_rate(s.gemm_n, s.gemm_reps))
    info.update(rates=rates, others=cpu.others())

    lines = report(run_header(args, s, info), rows, max(rates), memory, args.memory_size)
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
    raise SystemExit(main(rerun=True))
