"""Hostile (crash): the layer sends itself SIGKILL in backward.

The correct layer, except that backward runs `os.kill(os.getpid(), signal.SIGKILL)`
after computing its gradients. SIGKILL cannot be caught, blocked or ignored: the
process running the layer disappears at once, with no exception, no report and no
flush of its buffers (the parent sees a return code of -9).

Expected: FAIL, saying that the layer's process was killed by a signal (SIGKILL) in
backward. The line that misbehaves carries `# HOSTILE:`.
"""

import os
import signal

from tests.catalog.correct_book_dtype import TimeRNN as _Correct


class TimeRNN(_Correct):
    def backward(self, dhs):
        super().backward(dhs)
        os.kill(os.getpid(), signal.SIGKILL)  # HOSTILE: in backward
