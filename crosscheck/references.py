"""Where the judge gets its float64 references: oracle processes, and a cache in front.

    refs = References(backend_sources(["jax", "numeric"]))
    refs.prefetch(cases)            # the oracle processes start computing
    ...                             # meanwhile the workers drive the layer
    got = refs.get(cases)           # [{oracle name: per-segment values or None}, ...]

Each named backend runs in a process of its own (crosscheck.oracles.service), kept
for the life of this process so that many verifications share its imports and compiled
functions, and so that the caller's JAX/torch settings are never touched. Oracles
given as objects (a test's fake oracle) run here, in this process. The cache is keyed
by (oracle, case id): checking many layers on the same cases pays for them once.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crosscheck.cases import KINDS, Case
from crosscheck.child import Child
from crosscheck.codec import values_from_wire
from crosscheck.oracles import BackendUnavailable, Oracle, check_backend, reference
from crosscheck.quantities import SegmentValues
from crosscheck.wire import FrameReader, WireError, send

Values = list[SegmentValues] | None  # one oracle's reference of one case (None: unsupported)


def _kinds(oracle: Oracle) -> tuple[str, ...]:
    return tuple(getattr(oracle, "kinds", KINDS))


class OracleError(RuntimeError):
    """An oracle process failed: a crosscheck or framework problem, never the layer's."""


@dataclass(frozen=True)
class OracleInfo:
    backend: str  # the --backend name that provides it
    name: str  # shown in reports
    accuracy: float  # the relative error its own results may carry
    kinds: tuple[str, ...] = KINDS  # the layer kinds it can recompute


class Source(Protocol):
    """One backend's oracles: asked for many cases at once, answered later."""

    infos: list[OracleInfo]

    def request(self, cases: Sequence[Case]) -> None: ...

    def collect(self) -> dict[str, list[Values]]: ...


class LocalSource:
    """Oracle objects run in this process (for oracles defined by a test or a caller)."""

    def __init__(self, backend: str, oracles: Sequence[Oracle]) -> None:
        self.oracles = list(oracles)
        self.infos = [OracleInfo(backend, o.name, o.accuracy, _kinds(o)) for o in self.oracles]
        self._cases: list[Case] = []

    def request(self, cases: Sequence[Case]) -> None:
        self._cases = list(cases)

    def collect(self) -> dict[str, list[Values]]:
        return {o.name: reference(o, self._cases) for o in self.oracles}


class ProcessSource:
    """A backend's oracles in their own process (crosscheck.oracles.service)."""

    def __init__(self, backend: str) -> None:
        check_backend(backend)
        self.backend = backend
        self.child = Child("crosscheck.oracles.service", _oracle_env(), _empty_dir())
        self.reader = FrameReader()
        self._pending: list[Case] | None = None
        send(self.child.to_child, {"op": "load", "backend": backend})
        answer = self._receive()
        if answer.get("op") == "error":
            self.child.close()
            raise BackendUnavailable(str(answer.get("message")))
        oracles = answer.get("oracles")
        if not isinstance(oracles, list):
            raise OracleError(f"the {backend} oracle process named no oracles")
        self.infos = [
            OracleInfo(backend, str(o["name"]), float(o["accuracy"]),
                       tuple(str(k) for k in o.get("kinds", KINDS)))
            for o in oracles
        ]  # fmt: skip

    def _receive(self) -> dict[str, object]:
        try:
            frame = self.child.next_frame(self.reader)
        except WireError as exc:
            frame = exc
        if not isinstance(frame, dict):
            self.child.stderr.drain()
            err = self.child.stderr.text().strip()[-1500:]
            raise OracleError(f"the {self.backend} oracle process failed"
                              + (f":\n{err}" if err else f" ({frame})"))  # fmt: skip
        return frame

    def request(self, cases: Sequence[Case]) -> None:
        assert self._pending is None, "collect() the previous request first"
        self._pending = list(cases)
        send(self.child.to_child, {"op": "refs", "cases": [c.id for c in cases]})

    def collect(self) -> dict[str, list[Values]]:
        cases, self._pending = self._pending or [], None
        values = self._receive().get("values")
        if not isinstance(values, dict):
            raise OracleError(f"the {self.backend} oracle process sent no values")
        try:
            return {
                info.name: [
                    None if v is None else values_from_wire(v, c)
                    for v, c in zip(values[info.name], cases, strict=True)
                ]
                for info in self.infos
            }
        except (KeyError, ValueError, WireError) as exc:
            raise OracleError(f"the {self.backend} oracle process sent bad values: {exc}") from exc

    def close(self) -> None:
        self.child.close()


_PROCESSES: dict[str, ProcessSource] = {}
_EMPTY: list[str] = []


def _empty_dir() -> str:
    """A fresh empty folder to start oracle processes in: `python -m` puts the working
    directory first on sys.path, and the caller's (a submission's folder, say) may hold a
    numpy.py or a torch.py that an oracle must never import."""
    if not _EMPTY:
        _EMPTY.append(tempfile.mkdtemp(prefix="crosscheck-oracles-"))
    return _EMPTY[0]


def _oracle_env() -> dict[str, str]:
    """This process's environment, with this crosscheck first on PYTHONPATH: started in
    an empty folder, the child must still find the very crosscheck of its judge."""
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


def backend_sources(backends: Sequence[str]) -> list[Source]:
    """A process per backend, started once per process of the caller and then reused.
    Raises BackendUnavailable if a backend's framework is not installed."""
    for b in backends:
        check_backend(b)
    out: list[Source] = []
    for b in dict.fromkeys(backends):
        src = _PROCESSES.get(b)
        if src is None or src.child.returncode(0) is not None:
            src = _PROCESSES[b] = ProcessSource(b)
        out.append(src)
    return out


@atexit.register
def close_processes() -> None:
    """Stop every oracle process (also run at exit)."""
    while _PROCESSES:
        _PROCESSES.popitem()[1].close()


class Cache:
    """References by (oracle name, case id), at most `limit` entries (then it starts over)."""

    def __init__(self, limit: int = 4_000) -> None:
        self.limit = limit
        self.entries: dict[tuple[str, str], Values] = {}

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.entries

    def put(self, key: tuple[str, str], value: Values) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[key] = value


DEFAULT_CACHE = Cache(int(os.environ.get("CROSSCHECK_REFERENCE_CACHE", "4000")))


class References:
    """The references of every chosen oracle, computed in the sources, cached.

    kind: only the oracles of that layer kind are asked and reported (None: all)."""

    def __init__(
        self, sources: Sequence[Source], cache: Cache = DEFAULT_CACHE, kind: str | None = None
    ) -> None:
        self.sources = list(sources)
        self.cache = cache
        self.kind = kind
        self.infos = [i for s in self.sources for i in s.infos if kind is None or kind in i.kinds]
        self._asked: list[tuple[Source, list[Case]]] = []

    def prefetch(self, cases: Sequence[Case]) -> None:
        """Start computing what the cache lacks for `cases` (collected by `get`)."""
        self._collect()
        for src in self.sources:
            mine = [i for i in src.infos if i in self.infos]
            missing = [c for c in cases if any((i.name, c.id) not in self.cache for i in mine)]
            if missing:
                src.request(missing)
                self._asked.append((src, missing))

    def _collect(self) -> dict[tuple[str, str], Values]:
        fresh: dict[tuple[str, str], Values] = {}
        for src, cases in self._asked:
            for name, values in src.collect().items():
                for c, v in zip(cases, values):
                    fresh[(name, c.id)] = v
                    self.cache.put((name, c.id), v)
        self._asked = []
        return fresh

    def get(self, cases: Sequence[Case]) -> list[dict[str, Values]]:
        """Per case, every oracle's reference (None where the oracle cannot check it)."""
        if not self._asked:
            self.prefetch(cases)
        fresh = self._collect()
        return [
            {
                i.name: fresh[(i.name, c.id)]
                if (i.name, c.id) in fresh
                else self.cache.entries[(i.name, c.id)]
                for i in self.infos
            }
            for c in cases
        ]
