"""Hostile (exit): `os._exit(0)` in the constructor.

The correct layer (`correct_book_dtype.py`), except that in the constructor it calls
`os._exit(0)`, which ends the process at once with exit code 0: no exception, no finally
blocks, no atexit handlers, no flush of sys.stdout; nothing in the process can catch it.
A checker that ran the layer in its own process would end there, with exit code 0 (the
code of a PASS) and no report.

Expected: FAIL, saying that the layer exited, with code 0, in the constructor. The line
that misbehaves carries `# HOSTILE:`.
"""

import os

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def __init__(self, Wx, Wh, b, stateful=False):
        super().__init__(Wx, Wh, b, stateful=stateful)
        os._exit(0)  # HOSTILE: in the constructor
