"""Hostile (exit): `raise SystemExit(3)` in forward.

The correct layer (`correct_book_dtype.py`), except that in forward it runs `raise
SystemExit(3)`, which is exit code 3 unless something catches the exception (3 is
crosscheck's own exit code for INCONCLUSIVE). A checker that ran the layer in its own
process would end there, with exit code 3 (a verdict the layer chose, not the checker)
and no report.

Expected: FAIL, saying that the layer exited, with code 3, in forward. The line
that misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        super().forward(xs)
        raise SystemExit(3)  # HOSTILE: in forward
