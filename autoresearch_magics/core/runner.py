"""Runs a training command as a child process: contained, piped output, hard timeout.

The command runs under a shepherd (see shepherd.py) in a new session: every process it starts,
however it detaches, ends when the run ends, and carries the run's marker (see containment.py).
The processes' stdout and stderr share one pipe; output is split on `\\r` and `\\n`, written to the
log file up to a size cap (the tail is always kept), and fed to the summary parser as it
arrives, so memory stays flat however much the script prints.
"""
from __future__ import annotations

import codecs
import collections
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil

from .containment import (GRACE_S, LEFTOVER_GRACE_S, RUN_ID_ENV, kill_process_tree, kill_run, new_run_id,
                          shepherd_command)
from .summary import LINE_BREAKS, SummaryParser

__all__ = ["GRACE_S", "RunListener", "RunOutcome", "RunSpec", "kill_process_tree", "run"]

SAMPLE_EVERY_S = 0.25    # memory sampling and stop/timeout checks
READ_CHUNK = 1 << 16
TAIL_BYTES = 1 << 18     # kept in memory once the log cap is reached
TAIL_LINES = 40
ORPHAN_PIPE_S = 2.0      # how long output may keep flowing after the shepherd itself exited
SHEPHERD_SLACK_S = 1.0   # the runner waits this much longer than the shepherd's own grace
IDLE_S = 0.02            # the wait between checks once the pipe is closed


@dataclass
class RunSpec:
    """What to run and under which limits."""

    command: str
    cwd: str
    log_path: str
    env: dict = field(default_factory=dict)   # added to the inherited environment
    timeout_s: float = 600.0
    log_cap_bytes: int = 64 << 20
    run_id: str = field(default_factory=new_run_id)   # the marker every process of the run carries


@dataclass
class RunOutcome:
    """What happened: exit status, limits hit, summary block and resource use."""

    returncode: int | None    # the command's own: its exit code, or minus the signal that killed it
    timed_out: bool
    stopped: bool
    wall_s: float
    peak_rss_mb: float
    summary: dict
    tail: list[str]
    saw_fail: bool
    log_bytes: int
    pid: int                  # the run's process group (its shepherd)
    run_id: str = ""          # for `containment.kill_run` if anything of the run may be left


class RunListener:
    """Callbacks from a run; the default ignores everything. Called on the runner's thread."""

    def started(self, pid: int) -> None:
        """The run's shepherd is running as process group `pid`, the command under it."""

    def lines(self, lines: list[str]) -> None:
        """New complete output lines (progress lines included)."""

    def sampled(self, rss_mb: float) -> None:
        """The process tree's current resident memory."""


def run(spec: RunSpec, listener: RunListener | None = None,
        should_stop: Callable[[], bool] | None = None) -> RunOutcome:
    """Runs `spec.command` to completion, timeout or stop; returns what happened."""
    listener = listener or RunListener()
    output = _Output(_LogSink(spec.log_path, spec.log_cap_bytes), listener)
    start = time.monotonic()
    try:
        proc = _launch(spec)
    except BaseException:
        output.close()
        raise
    memory = _Memory(proc.pid, listener)
    limits = _Limits(spec.timeout_s, should_stop, start)
    try:
        output.attach(proc.stdout.fileno())
        listener.started(proc.pid)
        _follow(proc, output, memory, limits, spec.run_id)
    finally:
        log_bytes = output.close()
        _end(proc, spec.run_id)
    return RunOutcome(returncode=proc.returncode, timed_out=limits.timed_out, stopped=limits.stopped,
                      wall_s=time.monotonic() - start, peak_rss_mb=memory.peak_mb,
                      summary=output.parser.result(), tail=list(output.tail), saw_fail=output.saw_fail,
                      log_bytes=log_bytes, pid=proc.pid, run_id=spec.run_id)


def _launch(spec: RunSpec) -> subprocess.Popen:
    """Starts the shepherd, and under it the command, in a new session with the run's marker."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in spec.env.items()},
           RUN_ID_ENV: spec.run_id}
    return subprocess.Popen(shepherd_command(spec.command, GRACE_S), cwd=spec.cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _follow(proc: subprocess.Popen, output: "_Output", memory: "_Memory", limits: "_Limits",
            run_id: str) -> None:
    """Reads the output until the pipe is closed and the shepherd has exited; samples memory and
    ends the run at its timeout or when asked to stop."""
    next_check = time.monotonic()
    exited_at = None
    while output.open or proc.poll() is None:
        if output.open:
            output.read(SAMPLE_EVERY_S)
        else:
            time.sleep(IDLE_S)
        now = time.monotonic()
        if now < next_check:
            continue
        next_check = now + SAMPLE_EVERY_S
        if proc.poll() is None:
            memory.sample()
        elif output.open:  # the shepherd is gone, yet something holds the pipe: it was killed itself
            exited_at = exited_at or now
            if now - exited_at > ORPHAN_PIPE_S:
                kill_run(run_id, grace_s=LEFTOVER_GRACE_S)
                output.drain()
        if limits.reached(now):
            kill_process_tree(proc.pid, grace_s=GRACE_S + SHEPHERD_SLACK_S, reap=proc.poll)
            output.drain()
    output.flush()


def _end(proc: subprocess.Popen, run_id: str) -> None:
    """Reaps the shepherd; when it may not have ended everything itself, ends what is left."""
    if proc.poll() is None:  # interrupted (KeyboardInterrupt, error): leave no orphan
        kill_process_tree(proc.pid, grace_s=GRACE_S + SHEPHERD_SLACK_S, reap=proc.poll)
        proc.wait()
    if proc.returncode < 0:  # a kill: of the command (timeout, stop, crash) or of the shepherd itself
        kill_run(run_id, grace_s=LEFTOVER_GRACE_S)
    proc.stdout.close()


class _Output:
    """The run's output pipe: to the log, and split on `\\r` and `\\n` into lines for the listener,
    the summary parser and the tail."""

    def __init__(self, sink: "_LogSink", listener: RunListener) -> None:
        self.sink, self.listener = sink, listener
        self.fd = -1
        self.selector = selectors.DefaultSelector()
        self.open = False
        self.parser = SummaryParser()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.saw_fail = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def attach(self, fd: int) -> None:
        """Starts reading the pipe `fd`."""
        self.fd = fd
        os.set_blocking(fd, False)
        self.selector.register(fd, selectors.EVENT_READ)
        self.open = True

    def read(self, timeout_s: float) -> None:
        """Takes what arrives within `timeout_s`; notes the end of the pipe."""
        if not self.selector.select(timeout=timeout_s):
            return
        try:
            data = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return
        if data:
            self._take(data)
        else:
            self._stop_reading()

    def drain(self) -> None:
        """Takes what a killed run left in the pipe, then stops reading it."""
        try:
            while data := os.read(self.fd, READ_CHUNK):
                self._take(data)
        except OSError:  # BlockingIOError included: a holder of the pipe outlived the kill
            pass
        self._stop_reading()

    def flush(self) -> None:
        """Hands on the last line when the output did not end with a line break."""
        if self._pending:
            self.parser.feed(self._pending)
            self.tail.append(self._pending)
            self.listener.lines([self._pending])
            self._pending = ""

    def close(self) -> int:
        """Closes the log; returns the number of bytes the run printed."""
        self.selector.close()
        return self.sink.close()

    def _take(self, data: bytes) -> None:
        self.sink.write(data)
        parts = LINE_BREAKS.split(self._pending + self._decoder.decode(data))
        self._pending = parts.pop()
        if len(self._pending) > READ_CHUNK:  # a line with no break: do not let it grow
            parts.append(self._pending)
            self._pending = ""
        for line in parts:
            self.parser.feed(line)
            if line.startswith("FAIL"):
                self.saw_fail = True
        self.tail.extend(p for p in parts[-TAIL_LINES:] if p.strip())
        self.listener.lines(parts)

    def _stop_reading(self) -> None:
        if self.open:
            self.selector.unregister(self.fd)
            self.open = False


class _Memory:
    """Peak resident memory of the run's processes (the shepherd's own excluded)."""

    def __init__(self, shepherd_pid: int, listener: RunListener) -> None:
        self.listener = listener
        self.peak_mb = 0.0
        try:
            self.shepherd: psutil.Process | None = psutil.Process(shepherd_pid)
        except psutil.Error:
            self.shepherd = None

    def sample(self) -> None:
        if self.shepherd is None:
            return
        rss = _tree_rss_mb(self.shepherd)
        self.peak_mb = max(self.peak_mb, rss)
        self.listener.sampled(rss)


def _tree_rss_mb(root: psutil.Process) -> float:
    """Returns the resident memory of all descendants of `root`, in MB."""
    total = 0
    try:
        procs = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


class _Limits:
    """The run's timeout and the caller's stop request."""

    def __init__(self, timeout_s: float, should_stop: Callable[[], bool] | None, start: float) -> None:
        self.timeout_s, self.should_stop, self.start = timeout_s, should_stop, start
        self.timed_out = self.stopped = False

    def reached(self, now: float) -> bool:
        """Returns True once: when the run passes its timeout or is asked to stop."""
        if self.timed_out or self.stopped:
            return False
        if now - self.start > self.timeout_s:
            self.timed_out = True
        elif self.should_stop is not None and self.should_stop():
            self.stopped = True
        return self.timed_out or self.stopped


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
