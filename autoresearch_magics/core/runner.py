"""Runs a training command as a child process: own process group, piped output, hard timeout.

The child's stdout and stderr share one pipe; output is split on `\\r` and `\\n`, written to the
log file up to a size cap (the tail is always kept), and fed to the summary parser as it
arrives, so memory stays flat however much the script prints.
"""
from __future__ import annotations

import codecs
import collections
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil

from .summary import LINE_BREAKS, SummaryParser

GRACE_S = 5.0            # between SIGTERM and SIGKILL
SAMPLE_EVERY_S = 0.25    # memory sampling and stop/timeout checks
READ_CHUNK = 1 << 16
TAIL_BYTES = 1 << 18     # kept in memory once the log cap is reached
TAIL_LINES = 40
ORPHAN_PIPE_S = 2.0      # how long output may keep flowing after the script itself exited


@dataclass
class RunSpec:
    """What to run and under which limits."""

    command: str
    cwd: str
    log_path: str
    env: dict = field(default_factory=dict)   # added to the inherited environment
    timeout_s: float = 600.0
    log_cap_bytes: int = 64 << 20


@dataclass
class RunOutcome:
    """What happened: exit status, limits hit, summary block and resource use."""

    returncode: int | None
    timed_out: bool
    stopped: bool
    wall_s: float
    peak_rss_mb: float
    summary: dict
    tail: list[str]
    saw_fail: bool
    log_bytes: int
    pid: int


class RunListener:
    """Callbacks from a run; the default ignores everything. Called on the runner's thread."""

    def started(self, pid: int) -> None:
        """The child is running as process group `pid`."""

    def lines(self, lines: list[str]) -> None:
        """New complete output lines (progress lines included)."""

    def sampled(self, rss_mb: float) -> None:
        """The process tree's current resident memory."""


def _tree_rss_mb(root: psutil.Process) -> float:
    """Returns the resident memory of `root` and all its descendants, in MB."""
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def kill_process_tree(pid: int, grace_s: float = GRACE_S, reap: Callable[[], object] | None = None) -> None:
    """Sends SIGTERM to the process group `pid` and its stray descendants, then SIGKILL after `grace_s`.

    `reap` collects our own child's exit status. Zombies count as gone: in a container the
    reaper of orphaned grandchildren may be slow.
    """
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        members = []
    _signal_all(pid, members, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not any(_alive(p) for p in members):
            return
        time.sleep(0.02)
    _signal_all(pid, members, signal.SIGKILL)


def _signal_all(pgid: int, descendants, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in descendants:  # grandchildren that left the group (setsid) are still ours
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class _LogSink:
    """Writes output to the log up to a cap, then keeps only a bounded tail in memory."""

    def __init__(self, path: str, cap: int) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fh = open(path, "wb")
        self.cap = cap
        self.written = 0
        self.dropped = 0
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0

    def write(self, data: bytes) -> None:
        room = self.cap - self.written
        if room > 0:
            self.fh.write(data[:room])
            self.written += min(room, len(data))
            data = data[room:]
        if data:
            self.tail.append(data)
            self.tail_size += len(data)
            while self.tail_size - len(self.tail[0]) >= TAIL_BYTES:
                old = self.tail.popleft()
                self.tail_size -= len(old)
                self.dropped += len(old)

    def close(self) -> int:
        if self.tail:
            if self.dropped:
                self.fh.write(f"\n[autoresearch: {self.dropped} bytes of output omitted; "
                              f"log capped at {self.cap} bytes]\n".encode())
            for part in self.tail:
                self.fh.write(part)
        self.fh.close()
        return self.written + self.tail_size + self.dropped


def run(spec: RunSpec, listener: RunListener | None = None,
        should_stop: Callable[[], bool] | None = None) -> RunOutcome:
    """Runs `spec.command` to completion, timeout or stop; returns what happened."""
    listener = listener or RunListener()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in spec.env.items()}}
    sink = _LogSink(spec.log_path, spec.log_cap_bytes)
    start = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", spec.command], cwd=spec.cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    listener.started(proc.pid)
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        root = None
    parser = SummaryParser()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    saw_fail = timed_out = stopped = False
    peak_mb = 0.0
    next_sample = start
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    open_pipe = True
    exited_at = 0.0
    try:
        while open_pipe or proc.poll() is None:
            if open_pipe:
                ready = selector.select(timeout=SAMPLE_EVERY_S)
                if ready:
                    try:
                        data = os.read(fd, READ_CHUNK)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        open_pipe = False
                        selector.unregister(fd)
                    elif data:
                        sink.write(data)
                        parts = LINE_BREAKS.split(pending + decoder.decode(data))
                        pending = parts.pop()
                        if len(pending) > READ_CHUNK:  # a line with no break: do not let it grow
                            parts.append(pending)
                            pending = ""
                        for line in parts:
                            parser.feed(line)
                            if line.startswith("FAIL"):
                                saw_fail = True
                        tail.extend(p for p in parts[-TAIL_LINES:] if p.strip())
                        listener.lines(parts)
            else:
                time.sleep(0.02)
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + SAMPLE_EVERY_S
                if root is not None and proc.poll() is None:
                    rss = _tree_rss_mb(root)
                    peak_mb = max(peak_mb, rss)
                    listener.sampled(rss)
                if open_pipe and proc.poll() is not None:
                    exited_at = exited_at or now
                    if now - exited_at > ORPHAN_PIPE_S:  # a leftover grandchild holds the pipe open
                        kill_process_tree(proc.pid, grace_s=0.5, reap=proc.poll)
                        open_pipe = _drain(fd, selector, sink)
                if not timed_out and not stopped:
                    if now - start > spec.timeout_s:
                        timed_out = True
                    elif should_stop is not None and should_stop():
                        stopped = True
                    if timed_out or stopped:
                        kill_process_tree(proc.pid, reap=proc.poll)
                        open_pipe = _drain(fd, selector, sink)
        if pending:
            parser.feed(pending)
            tail.append(pending)
            listener.lines([pending])
    finally:
        selector.close()
        log_bytes = sink.close()
        if proc.poll() is None:  # interrupted (KeyboardInterrupt, error): leave no orphan
            kill_process_tree(proc.pid, reap=proc.poll)
            proc.wait()
        else:
            kill_process_tree(proc.pid, grace_s=0.5, reap=proc.poll)  # grandchildren left behind by a finished script
        proc.stdout.close()
    return RunOutcome(returncode=proc.returncode, timed_out=timed_out, stopped=stopped,
                      wall_s=time.monotonic() - start, peak_rss_mb=peak_mb, summary=parser.result(),
                      tail=list(tail), saw_fail=saw_fail, log_bytes=log_bytes, pid=proc.pid)


def _drain(fd: int, selector, sink: _LogSink) -> bool:
    """Reads what a killed child left in the pipe; returns False (the pipe is done with)."""
    try:
        while True:
            data = os.read(fd, READ_CHUNK)
            if not data:
                break
            sink.write(data)
    except (BlockingIOError, OSError):
        pass
    try:
        selector.unregister(fd)
    except (KeyError, ValueError):
        pass
    return False
