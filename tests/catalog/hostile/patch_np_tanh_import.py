"""Hostile (cheat): at import, np.tanh, np.sinh and np.cosh are replaced by wrong ones.

At import this module rebinds `np.tanh` to `x -> tanh(1.1 x)` (and `np.sinh`, `np.cosh`
likewise, so that sinh/cosh still equals the fake tanh), in the one NumPy module every
importer shares. The layer is the correct layer's code unchanged: it calls plain
`np.tanh`, so it now computes h_t = tanh(1.1 (h_{t-1} Wh + x_t Wx + b)), wrong against
the true tanh by up to 10% in hs.

A checker that computed a NumPy reference (the finite differences) in the same process
would get the same wrong tanh and find the forward right. The fake keeps the signature
(`out=`, `dtype=`, ...) and the dtype of its argument, so nothing else breaks.

Expected: FAIL, a mismatch in hs (and the gradients). The lines that misbehave carry
`# HOSTILE:`.
"""

import numpy as np

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


def _scaled(f):
    def wrong(x, *args, **kwargs):
        return f(np.multiply(x, 1.1), *args, **kwargs)

    wrong.__name__ = f.__name__
    return wrong


np.tanh = _scaled(np.tanh)  # HOSTILE: at import
np.sinh = _scaled(np.sinh)  # HOSTILE: at import
np.cosh = _scaled(np.cosh)  # HOSTILE: at import


class TimeRNN(_Correct):
    """The correct layer; its cells call `np.tanh`, which now is the fake."""
