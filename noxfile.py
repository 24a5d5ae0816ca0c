"""Sessions: `nox` runs tests, lint and typecheck; `nox -s verify` is the main job.

Sessions that need PyTorch use pip (nox's default backend) with the pinned CPU build.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

PY = "3.11"  # the Python that the pinned CPU torch build exists for
COMPAT_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
FRAMEWORKS = ".[test,frameworks,plot,notebook]"
# The tests of the layer itself: NumPy only.
# crosscheck.cases.KINDS (nox's own environment does not import the project).
KINDS = ("rnn", "lstm", "gru")
HANDRNN_TESTS = sorted(
    str(p)
    for pattern in (
        "test_time_rnn_*.py",
        "test_time_lstm.py",
        "test_time_gru.py",
        "test_gated_contract.py",
        "test_rnn_cell.py",
        "test_errors.py",
        "test_training.py",
        "test_imports.py",
    )
    for p in Path("tests").glob(pattern)
)


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """The test suite: handrnn, crosscheck and every oracle. Pass pytest args after --."""
    session.install("-e", FRAMEWORKS)
    session.run("pytest", *session.posargs)


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PY)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over handrnn and crosscheck."""
    # With the frameworks installed, so mypy sees their real types.
    session.install("-e", FRAMEWORKS, "mypy>=1.10")
    session.run("mypy", *session.posargs)


@nox.session(python=COMPAT_PYTHONS, default=False)
@nox.parametrize("numpy", ["1.26", "2"])
def compat(session: nox.Session, numpy: str) -> None:
    """handrnn's NumPy-only tests across Python 3.10-3.13 and NumPy 1.26 / 2.x."""
    if numpy == "1.26" and session.python == "3.13":
        session.skip("NumPy 1.26 has no build for Python 3.13")
    session.install(".[test]", f"numpy=={numpy}.*")
    session.run("pytest", *HANDRNN_TESTS, *session.posargs)


@nox.session(python=PY, default=False)
def verify(session: nox.Session) -> None:
    """The main job: handrnn's TimeRNN, TimeLSTM and TimeGRU, each against every oracle of
    its kind (JAX, PyTorch's autograd loop and torch.nn.RNN / torch.nn.LSTM, finite
    differences), both dtypes. Posargs replace the default arguments of each run."""
    session.install("-e", FRAMEWORKS)
    for kind in KINDS:
        args = session.posargs or ["--cases", "240", "--strict"]
        session.run("python", "-m", "crosscheck", "--kind", kind, *args)


@nox.session(python=PY, default=False)
@nox.parametrize("backend", ["jax", "torch", "numeric"])
def verify_backend(session: nox.Session, backend: str) -> None:
    """The main job against a single backend (jax, torch or numeric), every layer kind."""
    extra = {"jax": "jax", "torch": "torch", "numeric": "test"}[backend]
    session.install("-e", f".[{extra}]")
    for kind in KINDS:
        args = session.posargs or ["--cases", "240", "--strict"]
        session.run("python", "-m", "crosscheck", "--kind", kind, "--backend", backend, *args)


@nox.session(python=PY, default=False)
def soak(session: nox.Session) -> None:
    """Per layer kind (rnn, lstm, gru), random cases of six correct layers written
    differently (the book's cells, hoisted products, einsums, time-major, float64 inside,
    handrnn): zero false alarms expected; per layer and quantity, the largest error as a
    fraction of its threshold (soak_<kind>.md). Posargs replace the default arguments."""
    session.install("-e", FRAMEWORKS)
    for kind in KINDS:
        args = ["--cases", "10000", "--seed", "777", "--out", f"soak_{kind}.md"]
        session.run("python", "benchmarks/soak.py", "--kind", kind, *(session.posargs or args))


@nox.session(python=PY, default=False)
def bench(session: nox.Session) -> None:
    """Speed and memory tables: handrnn's TimeRNN, TimeLSTM, TimeGRU vs the book's way,
    torch.nn.RNN / LSTM / GRU and JAX scans. threadpoolctl reports NumPy's BLAS kernel;
    bench.py runs itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (its own process
    only) unless given --keep-blas-env."""
    session.install("-e", ".[frameworks]", "threadpoolctl")
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(python=PY, default=False)
def bench_crosscheck(session: nox.Session) -> None:
    """How long crosscheck takes: default verify, a student's 30-case run, the soak."""
    session.install("-e", ".[frameworks]")
    session.run("python", "benchmarks/bench_crosscheck.py", *session.posargs)
