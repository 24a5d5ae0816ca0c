"""Hostile (hang): forward never returns, inside C code that no Python handler can interrupt.

The correct layer, except that forward drains an endless iterator in C:
`collections.deque(itertools.repeat(None), maxlen=0)`. That loop runs no bytecode and
never checks for signals or releases the GIL, so nothing inside the layer's process can
stop it: not a Python signal handler (signal.alarm, Ctrl-C's KeyboardInterrupt), not a
watchdog thread (it never gets the GIL). Only a signal whose default action ends the
process (SIGTERM, SIGKILL), sent from outside, can.

Expected: FAIL, saying that the layer ran past the time limit in forward. The line that
misbehaves carries `# HOSTILE:`.
"""

import collections
import itertools

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        collections.deque(itertools.repeat(None), maxlen=0)  # HOSTILE: in forward, in C
        return super().forward(xs)
