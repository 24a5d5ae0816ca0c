"""Hostile (crash): `raise KeyboardInterrupt` in forward.

The correct layer, except that forward raises KeyboardInterrupt, as if the user had
pressed Ctrl-C. It is a BaseException, not an Exception: `except Exception` does not
catch it, and a checker that ran the layer in its own process would stop as if its
user had interrupted it (exit code 130 or a traceback), with no report.

Expected: FAIL, naming KeyboardInterrupt in forward, as the layer's doing (the user
did not press Ctrl-C). The line that misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        raise KeyboardInterrupt  # HOSTILE: in forward
