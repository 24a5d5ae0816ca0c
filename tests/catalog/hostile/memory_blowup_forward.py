"""Hostile (memory): forward allocates ever more memory, and keeps it.

The correct layer, except that forward appends `np.ones(size)` to a module-level list
in an endless loop, doubling `size` from 2**20 up to 2**28 float64 (2 GiB) per array.
`np.ones` writes every element, so the memory is resident, not just reserved: within
seconds the process holds all the memory it may have. Without a memory cap it takes the
machine's (and the kernel's OOM killer picks a victim); with RLIMIT_AS it gets a
MemoryError, which it does not catch; the list is module-level, so the memory stays
taken after the exception, and whatever reports the error must do so with almost none.

Expected: FAIL, saying that the layer ran out of its memory limit in forward. Never run
it without a cap (e.g. `ulimit -v 4000000` in a subshell). The line that misbehaves
carries `# HOSTILE:`.
"""

import numpy as np

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

_HOARD = []


class TimeRNN(_Correct):
    def forward(self, xs):
        size = 2**20
        while True:
            _HOARD.append(np.ones(size))  # HOSTILE: in forward, never freed
            size = min(2 * size, 2**28)
