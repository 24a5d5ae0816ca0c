"""Harmless meddling: a correct layer that closes file descriptors 1 and 2 at its first forward.

At the first forward in a process, the layer runs `os.close(1); os.close(2)`: its
process has no stdout and no stderr any more. A later `print` or traceback raises
OSError (EBADF) or is lost, and the next file the process opens (a pipe, a socket, a
result file) gets descriptor 1 or 2, so that every later `print` writes into it. The
numbers are right.

Expected: PASS. The lines that meddle carry `# HOSTILE:`.
"""

import os

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    closed = False

    def forward(self, xs):
        if not TimeRNN.closed:
            TimeRNN.closed = True
            os.close(1)  # HOSTILE: in forward
            os.close(2)  # HOSTILE: in forward
        return super().forward(xs)
