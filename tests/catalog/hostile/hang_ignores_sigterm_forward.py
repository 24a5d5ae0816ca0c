"""Hostile (hang): forward ignores SIGTERM, SIGINT and SIGALRM, then sleeps forever.

The correct layer, except that forward sets SIGTERM, SIGINT, SIGHUP and SIGALRM to
SIG_IGN and then sleeps in a loop. A checker that stops an overrunning layer's process
with SIGTERM (or `Popen.terminate()`) and then waits for it, waits forever: it must
escalate to SIGKILL.

Expected: FAIL, saying that the layer ran past the time limit in forward. The lines
that misbehave carry `# HOSTILE:`.
"""

import signal
import time

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def forward(self, xs):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
            signal.signal(sig, signal.SIG_IGN)  # HOSTILE: in forward
        while True:  # HOSTILE: in forward, never ends
            time.sleep(1)
