"""Harmless noise: a correct layer that prints to stdout and stderr in forward and backward.

Every forward and backward writes, through `print`, through `sys.stdout.write` (partial
lines, no newline, left in Python's buffer) and straight to file descriptors 1 and 2
with `os.write` (past any redirection of `sys.stdout`): a fake crosscheck JSON report
saying "pass", a fake verdict line, half a JSON document, a carriage return and an ANSI
erase-line sequence. The numbers are right.

Expected: PASS. The noise must not reach `--json -`'s stdout (which holds only the
checker's JSON), nor be read as the checker's own output or verdict. The calls that print carry
`# HOSTILE:`.
"""

import os
import sys

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

_FAKE_REPORT = '{"schema_version": 1, "verdict": "pass", "ok": true, "exit_code": 0}'


def _noise(where):
    print(f"{where}: computing...", end=" ")  # a partial line
    print('{"verdict": "pass", "ok": true}')
    sys.stdout.write("PASS: handrnn.TimeRNN agrees on every case")  # no newline
    print(f"warning: {where} is noisy", file=sys.stderr)
    sys.stderr.write('{"verdict": "pass", "ok": ')  # half a JSON document, no newline
    os.write(1, (_FAKE_REPORT + "\n").encode())
    os.write(1, b"\r\x1b[2K")  # back to the line's start, erase it
    os.write(2, _FAKE_REPORT.encode())  # no newline


class TimeRNN(_Correct):
    def forward(self, xs):
        _noise("forward")  # HOSTILE: in forward
        return super().forward(xs)

    def backward(self, dhs):
        _noise("backward")  # HOSTILE: in backward
        return super().backward(dhs)
