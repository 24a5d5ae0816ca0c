"""An oracle process: one backend's oracles, computing references for the judge.

    python -m crosscheck.oracles.service FD_IN FD_OUT

crosscheck.references starts one per backend, so that the frameworks' global settings
(JAX's x64 mode and compilation cache, torch's TF32 flags, thread pools) live and die
here and never in the caller's process. It rebuilds every case from its id, as the
judge does, and answers in crosscheck.wire frames:

    {"op": "load", "backend": "jax"}
        -> {"op": "oracles", "oracles": [{name, accuracy, kinds}]}
           or {"op": "error", "message": ...}
    {"op": "refs", "cases": [CASE_ID, ...]}
        -> {"op": "refs", "values": {name: [segments or None, one per case]}}
"""

from __future__ import annotations

import contextlib
import os
import sys

from crosscheck.cases import KINDS, parse_case
from crosscheck.codec import values_to_wire
from crosscheck.oracles import BackendUnavailable, load_backend, reference
from crosscheck.wire import FrameReader, receive, send


def serve(fd_in: int, fd_out: int) -> None:
    reader = FrameReader()
    hello = receive(fd_in, reader)
    if not isinstance(hello, dict) or hello.get("op") != "load":
        return
    try:
        oracles = load_backend(str(hello["backend"]))
    except (BackendUnavailable, ValueError, ImportError) as exc:
        send(fd_out, {"op": "error", "message": str(exc)})
        return
    infos = [
        {"name": o.name, "accuracy": o.accuracy, "kinds": list(getattr(o, "kinds", KINDS))}
        for o in oracles
    ]
    send(fd_out, {"op": "oracles", "oracles": infos})
    while (request := receive(fd_in, reader)) is not None:
        cases = [parse_case(i) for i in request["cases"]]
        values = {
            o.name: [None if r is None else values_to_wire(r) for r in reference(o, cases)]
            for o in oracles
        }
        send(fd_out, {"op": "refs", "values": values})


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):  # the judge has gone
        serve(int(sys.argv[1]), int(sys.argv[2]))
    sys.stdout.flush()
    os._exit(0)
