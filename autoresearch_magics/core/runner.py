"""Runs a training command as a child process: contained, piped output, hard timeout.

The command runs under a shepherd (see shepherd.py) in a new session: every process it starts,
however it detaches, ends when the run ends, and carries the run's marker (see containment.py).
The processes' stdout and stderr share one pipe; output is split on `\\r` and `\\n`, written to the
log file up to a size cap (the tail is always kept), and fed to the summary parser as it
arrives, so memory stays flat however much the script prints.

With a curve recorder (RunSpec.curve) the progress lines also become the run's curve; with a
pruner (RunSpec.pruner) each new curve point is judged, and a run the pruner gives up on is ended
and reported as pruned (RunOutcome.pruned, .prune_evidence), distinct from a stop or a timeout.

Machine share. While the run goes on, the runner compares the CPU time of the run's processes
with the CPU time the whole machine used (psutil.cpu_times, idle and iowait excluded):
  cpu_s          CPU seconds used by the run's processes (the shepherd and all it started);
  other_cpu_s    CPU seconds used meanwhile by every other process on the machine (the runner
                 thread reading the output excluded): other jobs, other runs, a busy notebook;
  machine_share  cpu_s / (cpu_s + other_cpu_s): the run's share of the work the machine did while
                 it ran; 1.0 means it had the machine to itself, 0.5 that others used as much CPU
                 as it did. None when nothing was measured (a run shorter than one sample).
The window is the same for both: from the launch to the last sample taken while the run lived
(at its exit when it ends by itself). A time-budgeted metric depends on this share, so a
comparison of two runs that got very different shares is not a fair one (see verdict_checks.py).

Timeout. With a start-up limit (RunSpec.startup_timeout_s), the hard timeout counts from the run's
first progress line (see progress_line.py), so whatever a script does before it starts training
(imports, building data on first use) is never counted against the run; before that line the run
may take up to the start-up limit. Without one, or for a script that prints no progress line, the
timeout counts from the launch. The outcome records when the first and the last progress lines came
(first_progress_s, last_progress_s, seconds after the launch): the run's start-up, training and
evaluation phases.
"""
from __future__ import annotations

import codecs
import collections
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import psutil

from .containment import (GRACE_S, LEFTOVER_GRACE_S, RUN_ID_ENV, kill_process_tree, kill_run, new_run_id,
                          shepherd_command)
from .curves import CurveWatch
from .progress_line import is_progress_line
from .summary import LINE_BREAKS, SummaryParser

if TYPE_CHECKING:
    from .curves import CurveRecorder
    from .pruning import Pruner

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
    startup_timeout_s: float | None = None  # limit before the first progress line; then timeout_s counts from it
    log_cap_bytes: int = 64 << 20
    run_id: str = field(default_factory=new_run_id)   # the marker every process of the run carries
    curve: "CurveRecorder | None" = None      # records the progress lines as the run's curve
    pruner: "Pruner | None" = None            # judges each new curve point; needs `curve`


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
    pruned: bool = False      # ended by the pruner (not a stop, not a timeout)
    prune_evidence: str = ""  # where and by how much it was behind, when pruned
    cpu_s: float | None = None           # CPU seconds of the run's processes (see the module docstring)
    other_cpu_s: float | None = None     # CPU seconds of every other process meanwhile
    machine_share: float | None = None   # cpu_s / (cpu_s + other_cpu_s)
    first_progress_s: float | None = None  # seconds from the launch to the first progress line
    last_progress_s: float | None = None   # ... to the last one
    timed_out_in_startup: bool = False     # the timeout hit before the first progress line


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
    machine_before = machine_cpu_s()
    start = time.monotonic()
    limits = _Limits(spec.timeout_s, should_stop, start, spec.startup_timeout_s)
    watch = _Watch(spec.curve, spec.pruner, limits)
    output = _Output(_LogSink(spec.log_path, spec.log_cap_bytes), listener, watch, limits)
    try:
        proc = _launch(spec)
    except BaseException:
        output.close()
        watch.close()
        raise
    if spec.curve is not None:
        spec.curve.start()
    usage = _Usage(proc.pid, listener, machine_before)
    try:
        output.attach(proc.stdout.fileno())
        listener.started(proc.pid)
        _follow(proc, output, usage, limits, spec.run_id)
    finally:
        log_bytes = output.close()
        watch.close()
        limits.settle()
        _end(proc, spec.run_id)
    cpu_s, other_cpu_s, share = usage.usage()
    return RunOutcome(returncode=proc.returncode, timed_out=limits.timed_out, stopped=limits.stopped,
                      wall_s=time.monotonic() - start, peak_rss_mb=usage.peak_mb,
                      summary=output.parser.result(), tail=list(output.tail), saw_fail=output.saw_fail,
                      log_bytes=log_bytes, pid=proc.pid, run_id=spec.run_id, pruned=limits.pruned,
                      prune_evidence=limits.prune_evidence, cpu_s=cpu_s, other_cpu_s=other_cpu_s,
                      machine_share=share, first_progress_s=limits.since_start(limits.first_progress),
                      last_progress_s=limits.since_start(limits.last_progress),
                      timed_out_in_startup=limits.timed_out and limits.first_progress is None
                      and spec.startup_timeout_s is not None)


def _launch(spec: RunSpec) -> subprocess.Popen:
    """Starts the shepherd, and under it the command, in a new session with the run's marker."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in spec.env.items()},
           RUN_ID_ENV: spec.run_id}
    return subprocess.Popen(shepherd_command(spec.command, GRACE_S), cwd=spec.cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _follow(proc: subprocess.Popen, output: "_Output", usage: "_Usage", limits: "_Limits",
            run_id: str) -> None:
    """Reads the output until the pipe is closed and the shepherd has exited; samples memory and CPU
    time and ends the run at its timeout, when asked to stop or when its pruner gives up on it."""
    next_check = time.monotonic()
    exited_at = None
    while output.open or not _exited(proc, usage):
        if output.open:
            output.read(SAMPLE_EVERY_S)
        else:
            time.sleep(IDLE_S)
        now = time.monotonic()
        if now < next_check:
            continue
        next_check = now + SAMPLE_EVERY_S
        if not _exited(proc, usage):
            usage.sample()
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


def _exited(proc: subprocess.Popen, usage: "_Usage") -> bool:
    """Returns True once the shepherd has exited; takes the last usage sample from it (a zombie still
    holds the CPU time of everything it reaped) before reaping it."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # some platforms lack it: the last periodic sample stands
        return proc.poll() is not None
    try:
        exited = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped elsewhere
        exited = True
    if exited:
        usage.sample(final=True)
    return proc.poll() is not None


class _Watch(CurveWatch):
    """The run's curve watch, ending the run through its limits when the pruner gives up on it."""

    def __init__(self, curve: "CurveRecorder | None", pruner: "Pruner | None", limits: "_Limits") -> None:
        super().__init__(curve, pruner)
        self.limits = limits

    def lines(self, lines: list[str]):
        decision = super().lines(lines)
        if decision is not None:
            self.limits.prune(decision.evidence)
        return decision


class _Output:
    """The run's output pipe: to the log, and split on `\\r` and `\\n` into lines for the listener,
    the summary parser, the curve and the tail."""

    def __init__(self, sink: "_LogSink", listener: RunListener, watch: CurveWatch, limits: "_Limits") -> None:
        self.sink, self.listener, self.watch, self.limits = sink, listener, watch, limits
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
            self.watch.lines([self._pending])
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
            if is_progress_line(line):
                self.limits.progressed(time.monotonic())
        self.tail.extend(p for p in parts[-TAIL_LINES:] if p.strip())
        self.listener.lines(parts)
        self.watch.lines(parts)

    def _stop_reading(self) -> None:
        if self.open:
            self.selector.unregister(self.fd)
            self.open = False


def machine_cpu_s() -> float:
    """Returns the CPU seconds the whole machine has used since boot (idle and iowait excluded)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


class _Usage:
    """Peak resident memory of the run's processes (the shepherd's own excluded), and the CPU time
    they and the rest of the machine used (see the module docstring)."""

    def __init__(self, shepherd_pid: int, listener: RunListener, machine_before: float) -> None:
        self.listener = listener
        self.peak_mb = 0.0
        self.machine_before = machine_before
        self.thread_before = time.thread_time()
        self.cpu: tuple[float, float, float] | None = None   # (run, machine, runner thread) at the last sample
        try:
            self.shepherd: psutil.Process | None = psutil.Process(shepherd_pid)
        except psutil.Error:
            self.shepherd = None

    def sample(self, final: bool = False) -> None:
        """Samples the run's memory and CPU time; `final`: the shepherd has exited, CPU time only."""
        if self.shepherd is None:
            return
        try:
            descendants = self.shepherd.children(recursive=True)
        except psutil.Error:
            descendants = []
        run_cpu = _cpu_s([self.shepherd, *descendants])
        if run_cpu is not None:
            self.cpu = (run_cpu, machine_cpu_s(), time.thread_time())
        if final:
            return
        rss = _rss_mb(descendants)
        self.peak_mb = max(self.peak_mb, rss)
        self.listener.sampled(rss)

    def usage(self) -> tuple[float | None, float | None, float | None]:
        """Returns (cpu_s, other_cpu_s, machine_share) over the run."""
        if self.cpu is None:
            return None, None, None
        run_cpu, machine, thread = self.cpu
        other = max(0.0, machine - self.machine_before - run_cpu - (thread - self.thread_before))
        total = run_cpu + other
        return round(run_cpu, 2), round(other, 2), (round(run_cpu / total, 3) if total > 0 else None)


def _cpu_s(procs: list[psutil.Process]) -> float | None:
    """Returns the CPU seconds used by `procs` (a tree): live processes' own time, and what each has
    reaped (an exited shepherd's reaped time covers the whole run); None if all are gone."""
    total, seen = 0.0, False
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
        seen = True
    return total if seen else None


def _rss_mb(procs: list[psutil.Process]) -> float:
    """Returns the resident memory of `procs`, in MB."""
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


class _Limits:
    """The run's timeout, the caller's stop request and the pruner's verdict."""

    def __init__(self, timeout_s: float, should_stop: Callable[[], bool] | None, start: float,
                 startup_timeout_s: float | None = None) -> None:
        self.timeout_s, self.should_stop, self.start = timeout_s, should_stop, start
        self.startup_timeout_s = startup_timeout_s
        self.first_progress: float | None = None
        self.last_progress: float | None = None
        self.timed_out = self.stopped = False
        self.pruned, self.prune_evidence = False, ""
        self._acted = False

    def prune(self, evidence: str) -> None:
        """Asks for the run to end as pruned, with `evidence` (unless it is already ending)."""
        if not self._acted:
            self.pruned, self.prune_evidence = True, evidence

    def progressed(self, now: float) -> None:
        """Notes a progress line: the first one starts the timeout (with a start-up limit)."""
        if self.first_progress is None:
            self.first_progress = now
        self.last_progress = now

    def since_start(self, moment: float | None) -> float | None:
        return None if moment is None else round(moment - self.start, 2)

    def _past_timeout(self, now: float) -> bool:
        if self.startup_timeout_s is None:
            return now - self.start > self.timeout_s
        if self.first_progress is None:
            return now - self.start > self.startup_timeout_s
        return now - self.first_progress > self.timeout_s

    def settle(self) -> None:
        """Forgets a prune verdict that came after the run had ended by itself."""
        if not self._acted:
            self.pruned, self.prune_evidence = False, ""

    def reached(self, now: float) -> bool:
        """Returns True once: when the run passes its timeout, is asked to stop or is pruned."""
        if self._acted:
            return False
        if self.pruned:
            pass
        elif self._past_timeout(now):
            self.timed_out = True
        elif self.should_stop is not None and self.should_stop():
            self.stopped = True
        self._acted = self.timed_out or self.stopped or self.pruned
        return self._acted


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
            self.fh.flush()   # whoever tails the log (the sidebar, a Slurm follower) sees lines as they come
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
