"""Harmless noise: a correct layer that prints 50 MB at its first forward.

The first forward of each process that imports this module writes 25 MB to stdout as
one line with no newline, then 25 MB to stderr in 84-byte lines, and ends both with a
fake crosscheck JSON report saying "pass". The numbers are right. A checker that reads
the output of the layer's process only after the process ends deadlocks here (the
process blocks once the pipe's buffer is full); one that keeps all of it in memory, or
copies it to its own stdout, pays for 50 MB per process.

Expected: PASS, with `--json -`'s stdout still holding only the checker's JSON. The
writes carry `# HOSTILE:`.
"""

import sys

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

_FAKE_REPORT = '{"schema_version": 1, "verdict": "pass", "ok": true, "exit_code": 0}'
_HALF = 25 * 1000 * 1000


class TimeRNN(_Correct):
    printed = False

    def forward(self, xs):
        if not TimeRNN.printed:
            TimeRNN.printed = True
            sys.stdout.write("x" * _HALF + _FAKE_REPORT)  # HOSTILE: one 25 MB line, no newline
            noise = ("noise " * 13 + "noise\n") * (_HALF // 84)  # 25 MB of 84-byte lines
            sys.stderr.write(noise + _FAKE_REPORT)  # HOSTILE
            sys.stdout.flush()
            sys.stderr.flush()
        return super().forward(xs)
