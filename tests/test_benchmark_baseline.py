"""The benchmark compares against the right things: the book-style baseline computes what
handrnn.TimeRNN computes, torch.nn.RNN and the JAX scan as set up in bench.py do too, and
`bench.py --quick` runs and prints its report. No timing is asserted anywhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from handrnn import TimeRNN

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))

import bench  # noqa: E402
import book_time_rnn  # noqa: E402

Array = NDArray[Any]


def _params(rng: np.random.Generator, D: int, H: int) -> tuple[Array, Array, Array]:
    return rng.normal(0, 0.5, (D, H)), rng.normal(0, 0.5, (H, H)), rng.normal(0, 0.5, H)


def _assert_same(
    ours: TimeRNN, book: book_time_rnn.TimeRNN, hs: tuple[Array, Array], dxs: tuple[Array, Array]
) -> None:
    """hs, dxs (ours, book), the final state h, dh and the three weight gradients agree."""
    np.testing.assert_allclose(hs[0], hs[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(dxs[0], dxs[1], rtol=0, atol=1e-12)
    assert ours.h is not None and book.h is not None
    np.testing.assert_allclose(ours.h, book.h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.dh, book.dh, rtol=0, atol=1e-12)
    for g_ours, g_book in zip(ours.grads, book.grads):
        np.testing.assert_allclose(g_ours, g_book, rtol=0, atol=1e-11)


@pytest.mark.parametrize("N, T, D, H", [(1, 1, 1, 1), (3, 1, 2, 4), (2, 7, 3, 5), (4, 13, 8, 6)])
def test_book_baseline_matches_handrnn(N: int, T: int, D: int, H: int) -> None:
    rng = np.random.default_rng(N * 1000 + T * 100 + D * 10 + H)
    Wx, Wh, b = _params(rng, D, H)
    ours, book = TimeRNN(Wx, Wh, b), book_time_rnn.TimeRNN(Wx, Wh, b)
    for _ in range(2):  # a second call must not depend on the first
        xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
        hs = (ours.forward(xs), book.forward(xs))
        dxs = (ours.backward(dhs), book.backward(dhs))
        _assert_same(ours, book, hs, dxs)


def test_book_baseline_matches_handrnn_stateful() -> None:
    rng = np.random.default_rng(7)
    N, D, H = 3, 4, 5
    Wx, Wh, b = _params(rng, D, H)
    ours = TimeRNN(Wx, Wh, b, stateful=True)
    book = book_time_rnn.TimeRNN(Wx, Wh, b, stateful=True)
    h0 = rng.standard_normal((N, H))
    ours.set_state(h0)
    book.set_state(h0.copy())
    for T in (4, 1, 6):  # the state carries across segments of different lengths
        xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
        hs = (ours.forward(xs), book.forward(xs))
        dxs = (ours.backward(dhs), book.backward(dhs))
        _assert_same(ours, book, hs, dxs)
    ours.reset_state()
    book.reset_state()
    xs, dhs = rng.standard_normal((N, 3, D)), rng.standard_normal((N, 3, H))
    hs = (ours.forward(xs), book.forward(xs))
    _assert_same(ours, book, hs, (ours.backward(dhs), book.backward(dhs)))


def test_book_baseline_keeps_the_params_dtype() -> None:
    rng = np.random.default_rng(3)
    Wx, Wh, b = (p.astype(np.float32) for p in _params(rng, 3, 4))
    book = book_time_rnn.TimeRNN(Wx, Wh, b)
    hs = book.forward(rng.standard_normal((2, 5, 3)).astype(np.float32))
    dxs = book.backward(rng.standard_normal((2, 5, 4)).astype(np.float32))
    assert hs.dtype == dxs.dtype == np.float32
    assert all(g.dtype == np.float32 for g in book.grads)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_contestants_compute_the_same(framework: str) -> None:
    module = pytest.importorskip(framework)
    p = bench.Problem.make((3, 6, 4, 5))
    ours = {k: v.copy() for k, v in bench.numpy_step(TimeRNN, p)().items()}
    if framework == "torch":  # keep torch's thread count as the other tests have it
        step = bench.torch_step(p, threads=module.get_num_threads())
    else:
        step = bench.jax_step(p)
    assert bench.max_rel_diff(ours, step()) < 1e-5


def test_bench_quick_runs_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    args = ["--quick", "--no-frameworks", "--sizes", "2,3,4,5", "--memory-size", "2,3,4,5"]
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "bench.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| size (N, T, D, H) | ours ms | book ms | vs book |" in proc.stdout
    assert "| (2, 3, 4, 5) |" in proc.stdout
    assert "| ours |" in proc.stdout and "| book |" in proc.stdout  # the memory table
    assert out.read_text().strip() == proc.stdout.strip()
