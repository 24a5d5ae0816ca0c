"""Plain NumPy models of the layer kinds, one module each (rnn, lstm, gru).

Each computes what a layer of its kind gives on a case, written from the formulas and
sharing no code with the layers judged: the float32 twin of a careful layer, and for
the gated kinds also the variants that make one known mistake (`MISTAKES`, `simulate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def sigmoid(a: NDArray[Any]) -> NDArray[Any]:
    """σ(a) = 1 / (1 + exp(-a)), the book's formula, in a's dtype."""
    with np.errstate(over="ignore"):  # exp(-a) = inf for a very negative a: σ(a) = 0
        out: NDArray[Any] = 1 / (1 + np.exp(-a))
    return out
