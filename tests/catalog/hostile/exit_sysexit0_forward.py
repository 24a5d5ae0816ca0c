"""Hostile (exit): `sys.exit(0)` in forward.

The correct layer (`correct_book_dtype.py`), except that in forward it calls
`sys.exit(0)`, which raises SystemExit(0): exit code 0 unless something catches it. A
checker that ran the layer in its own process would end there, with exit code 0 (the
code of a PASS) and no report.

Expected: FAIL, saying that the layer exited, with code 0, in forward. The line
that misbehaves carries `# HOSTILE:`.
"""

import sys

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        super().forward(xs)
        sys.exit(0)  # HOSTILE: in forward
