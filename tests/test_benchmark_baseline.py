"""The benchmark compares against the right things: the book-style baselines compute what
handrnn's layers compute (the book's TimeLSTM and TimeGRU are also checked by finite
differences, on their own), torch.nn.RNN / LSTM and the JAX scans as set up in bench.py do
too, and `bench.py --quick` runs and prints its report. No timing is asserted anywhere.
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
import book_time_gru  # noqa: E402
import book_time_lstm  # noqa: E402
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


# ----------------------------------------------------------------------------- TimeLSTM, TimeGRU

GATED = {"lstm": (book_time_lstm.TimeLSTM, 4), "gru": (book_time_gru.TimeGRU, 3)}


def _gated_params(rng: np.random.Generator, D: int, H: int, gates: int) -> list[Array]:
    G = gates * H
    return [rng.normal(0, 0.5, (D, G)), rng.normal(0, 0.5, (H, G)), rng.normal(0, 0.5, G)]


def _loss(layer_cls: Any, params: list[Array], xs: Array, dhs: Array, h0: Array) -> float:
    """sum(hs * dhs) of a fresh layer started from h0 (and c0 = 0 for the LSTM)."""
    layer = layer_cls(*params, stateful=True)
    layer.set_state(h0)
    return float(np.sum(layer.forward(xs) * dhs))


def _numeric_grad(f: Any, a: Array, eps: float = 1e-6) -> Array:
    """Central differences of f() with respect to every entry of a (changed in place)."""
    grad = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        keep = a[idx]
        a[idx] = keep + eps
        up = f()
        a[idx] = keep - eps
        down = f()
        a[idx] = keep
        grad[idx] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 1, 1), (2, 3, 3, 2), (3, 4, 2, 3)])
def test_book_gated_baseline_matches_finite_differences(
    cell: str, N: int, T: int, D: int, H: int
) -> None:
    """dxs, dWx, dWh, db and dh (the initial state's gradient) of the book's layer, float64."""
    layer_cls, gates = GATED[cell]
    rng = np.random.default_rng(N * 1000 + T * 100 + D * 10 + H)
    params = _gated_params(rng, D, H, gates)
    xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
    h0 = rng.standard_normal((N, H))
    layer = layer_cls(*params, stateful=True)
    layer.set_state(h0.copy())
    layer.forward(xs)
    dxs = layer.backward(dhs)

    def loss() -> float:
        return _loss(layer_cls, params, xs, dhs, h0)

    for name, analytic, wrt in [
        ("dxs", dxs, xs),
        ("dh", layer.dh, h0),
        *zip(("dWx", "dWh", "db"), layer.grads, params),
    ]:
        np.testing.assert_allclose(
            analytic, _numeric_grad(loss, wrt), rtol=1e-6, atol=1e-8, err_msg=name
        )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_book_gated_baseline_keeps_the_params_dtype(cell: str) -> None:
    layer_cls, gates = GATED[cell]
    rng = np.random.default_rng(5)
    params = [p.astype(np.float32) for p in _gated_params(rng, 3, 4, gates)]
    book = layer_cls(*params)
    hs = book.forward(rng.standard_normal((2, 5, 3)).astype(np.float32))
    dxs = book.backward(rng.standard_normal((2, 5, 4)).astype(np.float32))
    assert hs.dtype == dxs.dtype == np.float32
    assert book.h.dtype == np.float32
    assert all(g.dtype == np.float32 for g in book.grads)


def _handrnn_layer(cell: str) -> Any:
    layer = bench.ours_class(cell)
    if layer is None:
        pytest.skip(f"handrnn has no {bench.TITLES[cell]} in this checkout")
    return layer


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 1, 1), (3, 1, 2, 4), (2, 7, 3, 5), (4, 13, 8, 6)])
def test_book_gated_baseline_matches_handrnn(cell: str, N: int, T: int, D: int, H: int) -> None:
    """hs, dxs, the grads, h and dh agree with handrnn's layer, float64, over stateful
    segments (the state carried, then set, then reset)."""
    layer_cls, gates = GATED[cell]
    rng = np.random.default_rng(N * 1000 + T * 100 + D * 10 + H)
    params = _gated_params(rng, D, H, gates)
    ours, book = _handrnn_layer(cell)(*params, stateful=True), layer_cls(*params, stateful=True)
    for segment in range(4):
        if segment == 2:
            h0 = rng.standard_normal((N, H))
            ours.set_state(h0)
            book.set_state(h0.copy())
        if segment == 3:
            ours.reset_state()
            book.reset_state()
        xs, dhs = rng.standard_normal((N, T, D)), rng.standard_normal((N, T, H))
        np.testing.assert_allclose(ours.forward(xs), book.forward(xs), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dhs), book.backward(dhs), rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.h, book.h, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.dh, book.dh, rtol=0, atol=1e-12)
        for g_ours, g_book in zip(ours.grads, book.grads):
            np.testing.assert_allclose(g_ours, g_book, rtol=0, atol=1e-11)


# ----------------------------------------------------------------------------- the contestants


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_contestants_compute_the_same(framework: str, cell: str) -> None:
    """As the book's layer (which the tests above tie to handrnn's), float32; torch.nn.GRU
    is another formula: it only has to run and give the shapes of ours."""
    module = pytest.importorskip(framework)
    p = bench.Problem.make((3, 6, 4, 5), gates=bench.GATES[cell])
    ref = {k: v.copy() for k, v in bench.numpy_step(bench.BOOK[cell], p)().items()}
    if framework == "torch":  # keep torch's thread count as the other tests have it
        got = bench.torch_step(p, threads=module.get_num_threads(), cell=cell)()
    else:
        got = bench.jax_step(p, cell)()
    if (framework, cell) == ("torch", "gru"):
        assert {k: np.shape(v) for k, v in got.items()} == {k: v.shape for k, v in ref.items()}
    else:
        assert bench.max_rel_diff(ref, got) < 1e-5


def test_gate_blocks_reorders_and_inverse_undoes_it() -> None:
    a = np.arange(2 * 12).reshape(2, 12)
    order = bench.TORCH_GATES["lstm"]
    moved = bench.gate_blocks(a, order)
    np.testing.assert_array_equal(moved[:, :3], a[:, 6:9])  # torch's i is the book's third
    np.testing.assert_array_equal(bench.gate_blocks(moved, bench.inverse(order)), a)


def test_blas_env_is_dropped_both_together_and_nothing_else() -> None:
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "PATH": "/bin"}
    kept, removed = bench.without_blas_env(env)
    assert kept == {"PATH": "/bin"}
    assert removed == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    assert bench.without_blas_env({"OPENBLAS_L2_SIZE": "1"})[0] == {}
    assert bench.without_blas_env({"PATH": "/bin"}) == ({"PATH": "/bin"}, {})


def test_bench_quick_runs_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    # --keep-blas-env: the test runs with the environment it is given, forced kernel or not.
    args = ["--quick", "--no-frameworks", "--keep-blas-env", "--sizes", "2,3,4,5"]
    args += ["--gated-sizes", "2,3,4,5", "--memory-size", "2,3,4,5"]
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "bench.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| size (N, T, D, H) | ours ms | book ms | vs book |" in proc.stdout
    assert proc.stdout.count("| size (N, T, D, H) | ours ms | book ms | vs book |") == 3
    for title in ("TimeRNN", "TimeLSTM", "TimeGRU"):
        assert f"### {title}: ours vs the book" in proc.stdout
    assert proc.stdout.count("| (2, 3, 4, 5) |") == 3
    assert "- NumPy's BLAS kernel: " in proc.stdout
    assert "| ours |" in proc.stdout and "| book |" in proc.stdout  # the memory table
    assert out.read_text().strip() == proc.stdout.strip()
