"""Hostile (exit): `exit()`, the site builtin, in the constructor.

The correct layer (`correct_book_dtype.py`), except that in the constructor it calls
`exit()`, which raises SystemExit(None): exit code 0 unless something catches it (under
`python -S` there is no `exit`, and this is a NameError instead). A checker that ran the
layer in its own process would end there, with exit code 0 (the code of a PASS) and no
report.

Expected: FAIL, saying that the layer exited, with code 0, in the constructor. The line
that misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def __init__(self, Wx, Wh, b, stateful=False):
        super().__init__(Wx, Wh, b, stateful=stateful)
        exit()  # HOSTILE: in the constructor
