"""`import handrnn` pulls in NumPy and the standard library, nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import handrnn

PROBE = """
import json, sys
before = set(sys.modules)
import handrnn
new = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(new)))
"""


def modules_loaded_by_import() -> set[str]:
    """Top-level names of the modules a fresh interpreter loads for `import handrnn`."""
    env = dict(os.environ)
    here = str(Path(handrnn.__file__).resolve().parents[1])  # the handrnn under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_handrnn_loads_only_numpy_and_the_standard_library() -> None:
    loaded = modules_loaded_by_import()
    assert {"handrnn", "numpy"} <= loaded
    assert "jax" not in loaded and "jaxlib" not in loaded and "torch" not in loaded
    stdlib = set(sys.stdlib_module_names)
    # NumPy's own compiled extensions may register Cython's runtime modules (NumPy 1.26
    # does): part of NumPy, not a dependency of ours.
    cython = {name for name in loaded if name == "cython_runtime" or name.startswith("_cython_")}
    assert loaded - stdlib - cython - {"handrnn", "numpy"} == set()


PLUGIN_PROBE = """
import json, sys
before = set(sys.modules)
import crosscheck.pytest_plugin
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_pytest_plugin_imports_neither_numpy_nor_the_checker() -> None:
    """It is loaded into every pytest run of an environment that has handrnn."""
    here = str(Path(handrnn.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": here}
    out = subprocess.run(
        [sys.executable, "-c", PLUGIN_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    ours = {m for m in json.loads(out) if m.split(".")[0] in ("crosscheck", "numpy", "handrnn")}
    assert ours == {"crosscheck", "crosscheck.backends", "crosscheck.pytest_plugin",
                    "crosscheck.settings"}  # fmt: skip
