"""Hostile (hang): importing the module never ends.

The module spins in `while True: pass` at import, before it defines TimeRNN: a checker
that imports the layer with no time limit hangs before it has checked anything.

Expected: FAIL, saying that importing the layer ran past the time limit. The line that
misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

while True:  # HOSTILE: at import, never ends
    pass


class TimeRNN(_Correct):
    """Never reached: the import above never ends."""
