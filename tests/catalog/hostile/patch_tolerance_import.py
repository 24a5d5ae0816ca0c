"""Hostile (cheat): at import, crosscheck's tolerances are set to 1e9; dxs is twice too large.

At import this module imports `crosscheck.compare`, where the one tolerance model lives,
and sets RTOL to 1e9 for both dtypes and the scale floor FLOOR to 1e9: a checker that
compared in the same process would accept any finite number. (Without crosscheck
installed, the module imports all the same.) The layer is wrong: backward returns dxs
times 2.

Expected: FAIL, a mismatch in dxs. The lines that misbehave carry `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

try:
    import crosscheck.compare as _compare
except ImportError:
    pass
else:
    _compare.RTOL.update(float32=1e9, float64=1e9)  # HOSTILE: at import
    _compare.FLOOR = 1e9  # HOSTILE: at import


class TimeRNN(_Correct):
    def backward(self, dhs):
        return 2 * super().backward(dhs)  # HOSTILE: dxs is twice too large
