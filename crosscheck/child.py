"""Start a Python child process that talks crosscheck.wire frames over two private pipes.

The child runs `python -m MODULE FD_IN FD_OUT` in a session of its own (a Ctrl-C at
the terminal reaches the judge only, and `kill()` ends everything the child forked),
with stdin from /dev/null and stdout/stderr on pipes kept in `Capture`s, so that
nothing the child prints reaches the judge's own output. No threads: the caller drains
the pipes in the loop where it waits for the child.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from crosscheck.wire import FrameReader

HEAD = TAIL = 2000  # characters kept of each end of a child's output


class Capture:
    """What a child wrote to one pipe: its first HEAD and last TAIL bytes, and a count.

    Drained by whoever selects on `fd` (no thread: the judge reads it in the same loop
    that waits for the child's frames, so a child that prints never blocks).
    """

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        os.set_blocking(fd, False)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def drain(self) -> None:
        """Read what is there now; close the pipe at its end."""
        while self.fd is not None:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                os.close(self.fd)
                self.fd = None
                return
            self.total += len(chunk)
            room = HEAD - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail = (self.tail + chunk)[-TAIL:]

    def text(self) -> str:
        """What was written, shortened in the middle when long."""
        head = self.head.decode(errors="replace")
        if self.total <= len(self.head) + len(self.tail):
            return head + self.tail.decode(errors="replace")
        skipped = self.total - len(self.head) - len(self.tail)
        return f"{head}\n[... {skipped} bytes left out ...]\n{self.tail.decode(errors='replace')}"


class Child:
    """A running child: `to_child` / `from_child` are the wire's file descriptors."""

    def __init__(
        self, module: str, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(to_r), str(from_w)],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(to_r, from_w),
                start_new_session=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except BaseException:
            for fd in (to_w, from_r, out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (to_r, from_w, out_w, err_w):
                os.close(fd)
        self.to_child, self.from_child = to_w, from_r
        self.stdout, self.stderr = Capture(out_r), Capture(err_r)
        self.pid = self.proc.pid
        self.closed = False

    def next_frame(self, reader: FrameReader) -> Any:
        """Block until one whole frame arrives (None at end of file), draining the child's
        stdout and stderr meanwhile, so that a child that writes much never stalls."""
        while not reader.ready:
            caps = {c.fd: c for c in (self.stdout, self.stderr) if c.fd is not None}
            readable, _, _ = select.select([self.from_child, *caps], [], [])
            for fd, cap in caps.items():
                if fd in readable:
                    cap.drain()
            if self.from_child in readable:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:
                    return None
                reader.ready.extend(reader.feed(chunk))
        return reader.ready.popleft()

    def returncode(self, wait: float = 2.0) -> int | None:
        """The exit status (negative: killed by that signal), waiting up to `wait` s."""
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """End the child and everything it started in its session."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def close(self, grace: float = 1.0) -> None:
        """Tell the child to stop (end of file on its input), give it `grace` seconds, then
        kill whatever is left of its session (it may have forked)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            os.close(self.to_child)
        self.returncode(grace)
        self.kill()
        with contextlib.suppress(OSError):
            os.close(self.from_child)
        for cap in (self.stdout, self.stderr):
            cap.drain()  # the session is gone: the pipes are at their end

    def resident_bytes(self) -> int:
        """The child's resident memory now (0 if it cannot be read)."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return 0


def signal_name(code: int) -> str:
    """-9 -> 'SIGKILL'."""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
