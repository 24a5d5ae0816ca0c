"""The wire between the judge and its child processes: data frames, never pickle.

A frame is

    4 bytes  MAGIC, so that stray bytes on the channel are refused at once
    4 bytes  big-endian length L of the header
    L bytes  UTF-8 JSON header: {"body": <JSON value>, "arrays": [[dtype, shape], ...]}
    then     the raw bytes of each array, C order, in header order

where an array inside `body` is written as {"$array": i}. Only float32 and float64
arrays travel (as little-endian '<f4' / '<f8'), and the reader checks every size before
it allocates anything, so whatever a misbehaving child writes can at worst be refused
(`WireError`): it can never run code in the reader or exhaust its memory.
"""

from __future__ import annotations

import json
import os
import struct
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]

DTYPES: dict[str, np.dtype[Any]] = {"<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}
MAX_HEADER = 16 * 2**20  # bytes of JSON in one frame
MAX_PAYLOAD = 2 * 2**30  # bytes of arrays in one frame
MAX_ARRAYS = 100_000
_LEN = struct.Struct(">I")
Spec = tuple[np.dtype[Any], tuple[int, ...], int]  # dtype, shape, bytes of one array
MAGIC = b"CCW1"


class WireError(ValueError):
    """A frame that breaks the format: too large, bad JSON, an unknown dtype, ..."""


def encode(body: Any) -> bytes:
    """One frame holding `body`: JSON values, with float32/float64 ndarrays anywhere."""
    arrays: list[Array] = []

    def lift(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            arrays.append(np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")))
            return {"$array": len(arrays) - 1}
        if isinstance(x, dict):
            return {str(k): lift(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [lift(v) for v in x]
        return x

    lifted = lift(body)
    for a in arrays:
        if a.dtype.str not in DTYPES:
            raise WireError(f"only float32 and float64 arrays travel, not {a.dtype}")
    header = json.dumps(
        {"body": lifted, "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}
    ).encode()
    return MAGIC + _LEN.pack(len(header)) + header + b"".join(a.tobytes() for a in arrays)


def _array_specs(header: dict[str, Any]) -> list[Spec]:
    specs = header.get("arrays")
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise WireError("frame header has no valid 'arrays' list")
    out, total = [], 0
    for spec in specs:
        if not (isinstance(spec, list) and len(spec) == 2 and spec[0] in DTYPES):
            raise WireError(f"bad array spec {str(spec)[:80]}")
        shape = spec[1]
        if not (isinstance(shape, list) and len(shape) <= 8):
            raise WireError(f"bad array shape {str(shape)[:80]}")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise WireError(f"bad array shape {str(shape)[:80]}")
        dtype = DTYPES[spec[0]]
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.float64))
        total += nbytes
        if total > MAX_PAYLOAD:
            raise WireError("frame payload too large")
        out.append((dtype, tuple(int(n) for n in shape), nbytes))
    return out


def _lower(x: Any, arrays: list[Array]) -> Any:
    if isinstance(x, dict):
        if set(x) == {"$array"}:
            i = x["$array"]
            if not isinstance(i, int) or not 0 <= i < len(arrays):
                raise WireError("frame refers to an array it does not carry")
            return arrays[i]
        return {k: _lower(v, arrays) for k, v in x.items()}
    if isinstance(x, list):
        return [_lower(v, arrays) for v in x]
    return x


class FrameReader:
    """Collects bytes as they arrive (from a non-blocking pipe) and yields whole frames."""

    def __init__(self) -> None:
        self._buf = bytearray()
        # The header of the frame being read, its arrays' specs and their total size.
        self._need: tuple[dict[str, Any], list[Spec], int] | None = None
        self._header_len: int | None = None
        self.ready: deque[Any] = deque()  # whole frames `receive` has read but not returned

    def feed(self, data: bytes) -> Iterator[Any]:
        """Add `data`; yield the body of every frame it completes. Raises WireError."""
        self._buf += data
        while True:
            if self._header_len is None:
                if self._buf[:4] != MAGIC[: len(self._buf)]:
                    raise WireError("bytes that do not start a frame")
                if len(self._buf) < 8:
                    return
                (n,) = _LEN.unpack(self._buf[4:8])
                if n > MAX_HEADER:
                    raise WireError(f"frame header of {n} bytes is too large")
                self._header_len = n
                del self._buf[:4]
            if self._need is None:
                n = self._header_len
                if len(self._buf) < 4 + n:
                    return
                try:
                    header = json.loads(bytes(self._buf[4 : 4 + n]))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise WireError(f"frame header is not JSON: {exc}") from None
                if not isinstance(header, dict) or "body" not in header:
                    raise WireError("frame header has no body")
                specs = _array_specs(header)
                self._need = (header, specs, sum(s[2] for s in specs))
                del self._buf[: 4 + n]
            header, specs, size = self._need
            if len(self._buf) < size:
                return
            arrays, offset = [], 0
            for dtype, shape, nbytes in specs:
                chunk = bytes(self._buf[offset : offset + nbytes])
                flat = np.frombuffer(chunk, dtype=dtype)
                arrays.append(flat.reshape(shape).astype(dtype.newbyteorder("=")))
                offset += nbytes
            del self._buf[:size]
            self._need, self._header_len = None, None
            yield _lower(header["body"], arrays)


def send(fd: int, body: Any) -> None:
    """Write one frame to `fd` (blocking)."""
    data = memoryview(encode(body))
    while data:
        n = os.write(fd, data)
        data = data[n:]


def receive(fd: int, reader: FrameReader) -> Any:
    """Block until one whole frame has arrived on `fd`; None at end of file."""
    while not reader.ready:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        reader.ready.extend(reader.feed(chunk))
    return reader.ready.popleft()
