"""The worker: a fresh interpreter that imports the layer under test and drives it.

    python -m crosscheck.worker FD_IN FD_OUT

The judge (crosscheck.isolation) starts it with the layer's stdout and stderr going to
pipes of their own, and talks to it over FD_IN / FD_OUT in crosscheck.wire frames:

    judge -> worker   {"op": "load", "target": {...}, "sys_path": [...], "memory_limit": n}
    worker -> judge   {"op": "call", "what": "import"}  then  {"op": "ready", "imported": [...],
                      "skipped": [what a notebook's loading left out]}
                      or {"op": "load_error", "message": ...}
    judge -> worker   {"op": "case", "id": CASE_ID}   (repeated; end of file: stop)
    worker -> judge   {"op": "call", "what": "forward", "segment": k, "call": j} ...
                      {"op": "result", "observed": {...}}

Everything here runs beside code that may do anything; nothing here decides a verdict.
The judge checks what arrives and computes the references itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import os
import random
import resource
import sys
from pathlib import Path
from typing import Any

from crosscheck import cs231n, notebook
from crosscheck.cases import parse_case
from crosscheck.codec import observed_to_wire
from crosscheck.drive import LayerFactory, drive
from crosscheck.wire import FrameReader, receive, send

# Frameworks and reference implementations whose import the report mentions (any other
# crosscheck module than the worker's own counts too: crosscheck.mistakes is a model).
WATCHED_IMPORTS = ("torch", "jax", "jaxlib", "autograd", "tensorflow", "keras", "flax",
                   "chainer", "cupy", "dezero", "handrnn")  # fmt: skip


class LoadError(Exception):
    """The layer cannot be loaded: no such module, file or attribute, or its import raised."""


def _import_module(target: dict[str, Any]) -> Any:
    kind = target.get("kind")
    if kind == "module":
        name = str(target["module"])
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(f"{exc.name}."):
                raise LoadError(
                    f"module {name!r} not found (looked in the current directory "
                    f"{os.getcwd()} and on sys.path)"
                ) from None
            raise LoadError(f"importing {name!r} failed: ModuleNotFoundError: {exc}") from None
    if kind == "file":
        path = Path(str(target["path"]))
        if not path.is_file():
            raise LoadError(f"no such file: {path}")
        name = str(target.get("module_name") or path.stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise LoadError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))  # its own modules import beside it
        spec.loader.exec_module(module)
        return module
    if kind == "notebook":
        path = Path(str(target["path"]))
        if not path.is_file():
            raise LoadError(f"no such notebook: {path}")
        try:
            return notebook.run_notebook(path)
        except notebook.NotebookError as exc:
            raise LoadError(str(exc)) from None
    raise LoadError(f"unknown kind of layer target {kind!r}")


def load(target: dict[str, Any]) -> tuple[LayerFactory, list[str]]:
    """The layer factory a target names, and what loading it skipped (a notebook's magics).
    Raises LoadError; lets SystemExit and the like out."""
    what = repr(target.get("module") or target.get("path"))
    try:
        module = _import_module(target)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"importing {what} failed: {type(exc).__name__}: {exc}") from None
    skipped = getattr(module, "__crosscheck_skipped__", None)
    lines = [str(x)[:200] for x in skipped][:50] if isinstance(skipped, list) else []
    if target.get("api") == "cs231n":  # functions, not a class: the adapter is the layer
        try:
            return cs231n.adapter(module, str(target["attr"])), lines
        except (cs231n.NotCS231n, ValueError) as exc:
            raise LoadError(str(exc)) from None
    obj: Any = module
    attr = str(target["attr"])
    for part in attr.split("."):
        if not hasattr(obj, part):
            classes = sorted(n for n, v in vars(module).items() if isinstance(v, type))
            found = f" (it defines: {', '.join(classes)})" if classes else ""
            raise LoadError(f"module {what} has no attribute {attr!r}{found}")
        obj = getattr(obj, part)
    if not callable(obj):
        where = target.get("module") or target.get("path")
        raise LoadError(
            f"{where}:{attr} is not callable: it must build a layer as "
            f"{attr}(Wx, Wh, b, stateful=...)"
        )
    return obj, lines


def _limit_memory(limit: int | None) -> None:
    # The judge also watches the resident size; this makes most overruns a clean MemoryError.
    if limit:
        for res in (resource.RLIMIT_DATA,):
            resource.setrlimit(res, (limit, limit))


def _imported() -> list[str]:
    ours = [m for m in sys.modules if m.startswith("crosscheck.") and m not in _OWN]
    return [m for m in WATCHED_IMPORTS if m in sys.modules] + sorted(ours)


_OWN = frozenset(m for m in sys.modules if m.startswith("crosscheck."))  # the worker's own


def serve(fd_in: int, fd_out: int) -> None:
    reader = FrameReader()
    hello = receive(fd_in, reader)
    if not isinstance(hello, dict) or hello.get("op") != "load":
        return
    sys.path[:] = [str(p) for p in hello.get("sys_path", sys.path)]
    _limit_memory(hello.get("memory_limit"))
    before = set(_imported())
    send(fd_out, {"op": "call", "what": "import", "segment": 0, "call": None})
    try:
        factory, skipped = load(hello["target"])
    except LoadError as exc:
        send(fd_out, {"op": "load_error", "message": str(exc)})
        return
    except BaseException as exc:  # SystemExit, KeyboardInterrupt at import
        send(fd_out, {"op": "fatal", "message": _at_import(exc)})
        return
    send(fd_out, {"op": "ready", "imported": [m for m in _imported() if m not in before],
                  "skipped": skipped})  # fmt: skip

    def on_call(what: str, segment: int, call: int | None) -> None:
        send(fd_out, {"op": "call", "what": what, "segment": segment, "call": call})

    while True:
        request = receive(fd_in, reader)
        if not isinstance(request, dict) or request.get("op") != "case":
            return
        case = parse_case(str(request["id"]))
        observed = drive(factory, case, on_call=on_call, catch=(BaseException,))
        send(fd_out, {"op": "result", "observed": observed_to_wire(observed),
                      "imported": [m for m in _imported() if m not in before]})  # fmt: skip


def _at_import(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        return (
            f"The layer's module called exit() with exit code {code} while it was being imported."
        )
    return f"The layer's module raised {type(exc).__name__} while it was being imported."


def _out_of_reach(fd: int) -> int:
    """`fd` moved to a random high number: a layer that scribbles on the usual small
    descriptors (3, 4, ...) does not hit the channel by accident."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, random.randrange(256, 1000))
    os.close(fd)
    return moved


def main(argv: list[str]) -> None:
    fd_in, fd_out = _out_of_reach(int(argv[1])), _out_of_reach(int(argv[2]))
    try:
        serve(fd_in, fd_out)
    except BrokenPipeError:
        pass  # the judge has gone (it stopped this worker): nothing to tell anyone
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # the layer may have closed them
                stream.flush()
    os._exit(0)  # skip the layer's atexit handlers and __del__s: they may not end


if __name__ == "__main__":
    main(sys.argv)
