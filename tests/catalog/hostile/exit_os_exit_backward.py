"""Hostile (exit): `os._exit(0)` in backward.

The correct layer (`correct_book_dtype.py`), except that in backward it calls
`os._exit(0)`, which ends the process at once with exit code 0: no exception, no finally
blocks, no atexit handlers, no flush of sys.stdout; nothing in the process can catch it.
A checker that ran the layer in its own process would end there, with exit code 0 (the
code of a PASS) and no report.

Expected: FAIL, saying that the layer exited, with code 0, in backward. The line
that misbehaves carries `# HOSTILE:`.
"""

import os

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def backward(self, dhs):
        super().backward(dhs)
        os._exit(0)  # HOSTILE: in backward
