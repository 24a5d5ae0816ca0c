"""Hostile (crash): a segmentation fault in forward.

The correct layer, except that forward reads the C string at address 0 with
`ctypes.string_at(0)`: strlen(NULL), a SIGSEGV in C code. No Python `except` sees it;
the process dies (return code -11; with faulthandler on it first prints a C-level
traceback to stderr).

Expected: FAIL, saying that the layer's process died of a signal (SIGSEGV) in forward.
The line that misbehaves carries `# HOSTILE:`.
"""

import ctypes

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        ctypes.string_at(0)  # HOSTILE: in forward, reads address 0
        return super().forward(xs)
