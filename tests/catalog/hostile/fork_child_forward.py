"""Harmless (if the checker copes): forward forks a child that sleeps for an hour.

At its first forward in a process, the layer forks. The child keeps every file
descriptor it inherited (the stdout and stderr pipes, any private channel) open and
sleeps 3600 s, then leaves with os._exit(0) (it never returns into the caller's code).
The parent returns correct values, and the child's pid is left in `TimeRNN.forked`.

A checker that waits for EOF on a pipe the layer's process wrote to, or for every
process of the layer's process group, waits an hour.

Expected: PASS (the values are right), within the checker's usual time; the checker must
neither hang on the child nor blame the layer for it. Ideally it also kills the child.
The lines that misbehave carry `# HOSTILE:`.
"""

import os
import time
import warnings

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    forked = None  # the child's pid, after the first forward

    def forward(self, xs):
        if TimeRNN.forked is None:
            with warnings.catch_warnings():  # Python 3.12+ warns about fork with threads
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()  # HOSTILE: in forward
            if pid == 0:  # the child
                try:
                    time.sleep(3600)  # HOSTILE: holds the inherited descriptors open
                finally:
                    os._exit(0)
            TimeRNN.forked = pid
        return super().forward(xs)
