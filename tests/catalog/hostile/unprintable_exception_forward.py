"""Hostile (crash): forward raises an exception that cannot be printed, repr'd or pickled.

The correct layer, except that forward raises `UnprintableError`, whose `__str__` and
`__repr__` raise (another UnprintableError, so a fallback `str()` of that error fails
too) and whose `__reduce__` raises, so it cannot be pickled to another process either.
Its type name is all that can be told of it.

Expected: FAIL, naming UnprintableError in forward, and no traceback of the checker's
own. The line that misbehaves carries `# HOSTILE:`.
"""

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class UnprintableError(Exception):
    def __str__(self):
        raise UnprintableError

    def __repr__(self):
        raise UnprintableError

    def __reduce__(self):
        raise UnprintableError


class TimeRNN(_Correct):
    def forward(self, xs):
        raise UnprintableError  # HOSTILE: in forward
