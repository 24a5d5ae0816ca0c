"""Hostile (exit): `sys.exit(0)` at import.

The correct layer (`correct_book_dtype.py`), except that at import it calls
`sys.exit(0)`, which raises SystemExit(0): exit code 0 unless something catches it. A
checker that ran the layer in its own process would end there, with exit code 0 (the
code of a PASS) and no report.

Expected: FAIL, saying that the layer exited, with code 0, at import. The line
that misbehaves carries `# HOSTILE:`.
"""

import sys

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

sys.exit(0)  # HOSTILE: at import


class TimeRNN(_Correct):
    """Never reached: the module ends its process above."""
