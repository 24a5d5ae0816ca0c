"""The oracle backends by name, and whether their framework is installed (standard library
only: asking imports no framework, and not even NumPy)."""

from __future__ import annotations

import importlib.util

# backend name -> (module of its oracles, framework it imports, what installs it)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "jax": ("crosscheck.oracles.jax_scan", "jax", "pip install jax"),
    "torch": ("crosscheck.oracles.torch_oracles", "torch",
              "pip install torch (a CPU build is enough; tested with torch 2.13.0)"),
    "numeric": ("crosscheck.oracles.numeric", "numpy", "pip install numpy"),
}  # fmt: skip


class BackendUnavailable(RuntimeError):
    """The framework behind a backend is not installed; the message says how to get it."""


def available_backends() -> list[str]:
    """The backends whose framework is importable, without importing it."""
    return [
        name for name, (_, fw, _) in BACKENDS.items() if importlib.util.find_spec(fw) is not None
    ]


def check_backend(name: str) -> None:
    """Raise BackendUnavailable (or ValueError for an unknown name) unless `name` can load."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}")
    _, framework, how = BACKENDS[name]
    if importlib.util.find_spec(framework) is None:
        raise BackendUnavailable(
            f"backend {name!r} needs {framework}, which is not installed: {how}"
        )
