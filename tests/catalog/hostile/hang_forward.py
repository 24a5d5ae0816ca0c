"""Hostile (hang): forward never returns (a busy loop).

The correct layer, except that forward spins in `while True: pass`, at 100% of a core.
The loop runs Python bytecode, so a Python signal handler (SIGALRM, SIGINT) can still
interrupt it; see `hang_in_c_forward.py` for one that cannot be interrupted.

Expected: FAIL, saying that the layer ran past the time limit in forward; the checker
itself must end within its limits. The line that misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        while True:  # HOSTILE: in forward, never ends
            pass
