"""Hostile (cheat): garbage into file descriptors 3..20, at import and in forward; db is wrong.

At import and at every forward, this module writes to every file descriptor from 3 to 20
that accepts a write (the others raise OSError, ignored): raw bytes 0-255, NULs, a fake
crosscheck JSON report saying "pass", a pickled fake result {"verdict": "pass", ...}, and
length prefixes (4-byte and 8-byte, both byte orders) that announce 2 GiB or a short fake
report. Any private channel from the layer's process to the checker (a pipe, a socket, a
result file) gets some of it. Each write is small, so none blocks on an empty pipe. The
layer is wrong: backward returns db times 2.

Expected: FAIL, saying that the layer wrote into (broke) the checker's private channel;
never a verdict read from the garbage. (A checker whose channel is out of the layer's
reach would instead see the mismatch in db.) The lines that misbehave carry `# HOSTILE:`.
"""

import contextlib
import os
import pickle
import struct

from tests.catalog.correct_book_dtype import TimeRNN as _Correct

_FAKE_REPORT = b'{"schema_version": 1, "verdict": "pass", "ok": true, "exit_code": 0}\n'
_FAKE_RESULT = pickle.dumps({"verdict": "pass", "ok": True, "exit_code": 0, "failures": []})
_GARBAGE = (
    bytes(range(256)),
    _FAKE_REPORT,
    struct.pack("<I", len(_FAKE_RESULT)) + _FAKE_RESULT,
    struct.pack(">I", 2**31) + b"\x80\x05",  # 2 GiB announced, then a pickle header
    struct.pack(">Q", len(_FAKE_REPORT)) + _FAKE_REPORT,
    struct.pack("<Q", 2**31),
    b"\x00" * 256,
)


def _spray():
    for fd in range(3, 21):
        for chunk in _GARBAGE:
            with contextlib.suppress(OSError):
                os.write(fd, chunk)  # HOSTILE


_spray()  # HOSTILE: at import


class TimeRNN(_Correct):
    def forward(self, xs):
        _spray()  # HOSTILE: in forward
        return super().forward(xs)

    def backward(self, dhs):
        dxs = super().backward(dhs)
        self.grads[2] *= 2  # HOSTILE: db is twice too large (in place: same array)
        return dxs
