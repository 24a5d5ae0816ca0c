"""Is this process's NumPy, and crosscheck's tolerance, still what it was?

The judge never imports the layer under test. But a caller may have done so already, in
the same process (a test file that imports a student's module, a notebook), and a module
can patch NumPy or crosscheck's constants when it is imported. `tampering()` finds the
plain forms of that: a NumPy function the judge uses that is no longer NumPy's own, or a
tolerance constant that changed since crosscheck was imported. verify() then fails the
run rather than trust its own arithmetic. A process that runs nothing but crosscheck (the
CLI) needs none of this; in-process it is a best effort, and the README says so.
"""

from __future__ import annotations

import os
import types
from typing import Any

import numpy as np

from crosscheck import compare

try:  # NumPy 2
    from numpy._core import umath
except ImportError:  # NumPy 1.26
    from numpy.core import umath  # type: ignore[no-redef]

# The ufuncs and functions the judge computes with.
UFUNCS = ("abs", "absolute", "isnan", "isfinite", "tanh", "sinh", "cosh", "sqrt", "exp",
          "maximum", "minimum", "multiply", "add", "subtract", "divide", "matmul")  # fmt: skip
FUNCTIONS = ("max", "min", "sum", "argmax", "array_equal", "unravel_index", "flatnonzero",
             "allclose", "zeros", "zeros_like", "asarray", "ascontiguousarray", "tensordot",
             "einsum", "linalg")  # fmt: skip
_NUMPY_DIR = os.path.dirname(np.__file__)


def _defined_in_numpy(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        return os.path.dirname(getattr(obj, "__file__", "") or "").startswith(_NUMPY_DIR)
    code = getattr(obj, "__code__", None) or getattr(getattr(obj, "__wrapped__", None),
                                                     "__code__", None)  # fmt: skip
    if code is not None:
        return str(code.co_filename).startswith(_NUMPY_DIR)
    # A C function or a dispatcher: NumPy names itself as its module.
    return str(getattr(obj, "__module__", None) or "").startswith("numpy")


def tampering() -> str | None:
    """What was changed, in words, or None if nothing was."""
    for name in UFUNCS:
        if getattr(np, name, None) is not getattr(umath, name if name != "abs" else "absolute"):
            return f"numpy.{name} is not NumPy's own"
    for name in FUNCTIONS:
        if not _defined_in_numpy(getattr(np, name, None)):
            return f"numpy.{name} is not NumPy's own"
    now = (compare.FLOOR, compare.TWIN_FACTOR, tuple(sorted(compare.RTOL.items())))
    if now != compare.AS_DEFINED:
        return "crosscheck's tolerance constants (crosscheck.compare) were changed"
    return None
