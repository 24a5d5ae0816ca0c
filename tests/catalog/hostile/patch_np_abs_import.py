"""Hostile (cheat): at import, np.abs returns zeros; the layer's dWh is 1.5 times too large.

At import this module rebinds `np.abs` and `np.absolute` (the same ufunc) to a function
that returns zeros of its argument's shape. Any comparison made in the same process with
`np.abs(observed - reference)` (crosscheck/compare.py's, for one) then sees an error of
exactly 0, whatever the numbers. The layer is wrong: backward returns dWh times 1.5.

Expected: FAIL, a mismatch in dWh. The lines that misbehave carry `# HOSTILE:`.
"""

import numpy as np

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


def _zeros(x, *args, **kwargs):
    return np.zeros(np.shape(x))


np.abs = np.absolute = _zeros  # HOSTILE: at import


class TimeRNN(_Correct):
    def backward(self, dhs):
        dxs = super().backward(dhs)
        self.grads[1] *= 1.5  # HOSTILE: dWh is 1.5 times too large (in place: same array)
        return dxs
