"""Hostile (hang): backward sleeps for an hour.

The correct layer, except that backward computes its gradients and then sleeps 3600 s,
using no CPU: a limit on CPU time alone (RLIMIT_CPU) would never fire; only a limit
on wall-clock time stops it.

Expected: FAIL, saying that the layer ran past the time limit in backward. The line
that misbehaves carries `# HOSTILE:`.
"""

import time

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def backward(self, dhs):
        dxs = super().backward(dhs)
        time.sleep(3600)  # HOSTILE: in backward
        return dxs
