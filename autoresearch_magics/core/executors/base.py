"""What every executor shares: the task that travels to a worker, the events that come back,
and the small interface the engine drives (`submit`, `cancel`, `capacity`)."""
from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field

from ..errors import CampaignError
from ..containment import new_run_id
from ..runner import RunOutcome


class ExecutorError(CampaignError):
    """An executor cannot start (missing extra, unreachable cluster); the message names the fix."""


class ClusterLostError(ExecutorError):
    """The cluster went away under a running loop (the head stopped, the connection broke)."""


@dataclass
class TaskSpec:
    """One run of one experiment, self-contained: it needs no shared filesystem and no git."""

    experiment: int
    run: int
    tag: str
    command: str                    # run with /bin/sh in the materialised tree
    files: dict[str, bytes]         # campaign-relative path -> content: the candidate commit's tracked files
    executable: list[str]           # paths among `files` that get the executable bit
    env: dict[str, str]             # AUTORESEARCH_* variables; nothing that names a path of the driver
    timeout_s: float
    log_cap_bytes: int
    startup_timeout_s: float | None = None  # limit before the first progress line (see runner.py)
    gpus: int | None = 0            # whole devices for this run; 0: CUDA_VISIBLE_DEVICES=""; None: as inherited
    data_dir: str = ""              # the campaign's data folder, used where a worker can see it
    workdir: str = ""               # run here instead of in a folder made from `files` (this machine only)
    run_id: str = field(default_factory=new_run_id)  # the marker every process of the run carries

    @property
    def name(self) -> str:
        """Returns a job name a cluster's queue can show."""
        suffix = "" if self.run == 1 else f"-r{self.run}"
        return f"autoresearch-{self.tag}-{self.experiment}{suffix}"


@dataclass
class TaskResult:
    """How a task ended: the runner's outcome, or why there is none (a lost worker)."""

    outcome: RunOutcome | None
    error: str = ""                 # crash reason when `outcome` is None
    job_id: str = ""
    node: str = ""
    cancelled: bool = False
    lost: bool = False              # the run never tested its idea (preempted, node or worker lost, cancelled)
    scheduler_reason: str = ""      # the scheduler's own word for the end ("PREEMPTED", "CANCELLED by 0"...)
    lost_attempts: list[str] = field(default_factory=list)  # earlier attempts of this run lost and run again


class TaskSink:
    """Receives a task's events. Executors call it from their own threads, so an implementation
    only queues what it gets."""

    def started(self, job_id: str, node: str, pid: int | None = None) -> None:
        """The command is running on `node` as cluster job `job_id` (process `pid` when on this machine)."""

    def lines(self, lines: list[str]) -> None:
        """New output lines (split on \\r and \\n), in order."""

    def sampled(self, rss_mb: float) -> None:
        """The run's current resident memory."""

    def finished(self, result: TaskResult) -> None:
        """The task ended; called exactly once, last."""


class Handle:
    """A submitted task; `cancel` kills its process group wherever it runs."""

    def cancel(self) -> None:
        """Asks the task to stop; its sink still gets `finished` (with `stopped` set in the outcome)."""
        raise NotImplementedError

    def journal(self) -> dict:
        """Returns what a later recovery needs to find the task once its runner died ({}: the task
        ends with its runner, or its processes carry the run's marker)."""
        return {}


class Executor:
    """Runs tasks concurrently somewhere; the engine never submits more than its slots at once."""

    name = "local"              # the results.tsv `launcher` column
    gpus_per_experiment = 0     # whole devices each experiment gets (None: the devices this process sees)
    runs_here = False           # True: tasks run on this machine, so a task may use the campaign folder

    def open(self) -> "Executor":
        """Connects to the cluster (if any); returns self."""
        return self

    @property
    def opens_anywhere(self) -> bool:
        """Returns True when `open` may run on another thread (so it overlaps the runner's own start-up)."""
        return False

    def open_soon(self, slots: int | None = None) -> None:
        """Starts connecting (and warming `slots` workers) in the background when `opens_anywhere`, so a
        front end's own start-up overlaps it; `open` then waits for it."""

    def warm(self, slots: int) -> None:
        """Gets `slots` workers ready (started, modules imported) before the first batch; returns at once."""

    def close(self) -> None:
        """Disconnects; running tasks must have finished or been cancelled."""

    def capacity(self) -> int | None:
        """Returns how many experiments fit at once, or None when unknown."""
        return None

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        """Starts `spec`; its output goes to `log_path` on this machine as it arrives."""
        raise NotImplementedError

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


class StreamLog:
    """Writes streamed output lines to a log file on this machine, up to a cap; past the cap only
    the last lines are kept and written at the end, after a note saying how much was left out."""

    TAIL_LINES = 2000

    def __init__(self, path: str, cap_bytes: int) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fh = open(path, "wb")
        self.left = cap_bytes
        self.cap = cap_bytes
        self.dropped = 0
        self.tail: collections.deque[bytes] = collections.deque(maxlen=self.TAIL_LINES)

    def write(self, lines: list[str]) -> None:
        """Appends `lines` (each gets a newline) and flushes, so readers see them at once."""
        for line in lines:
            data = (line + "\n").encode("utf-8", errors="replace")
            if len(data) <= self.left:
                self.fh.write(data)
                self.left -= len(data)
            else:
                self.left = 0
                if len(self.tail) == self.tail.maxlen:
                    self.dropped += len(self.tail[0])
                self.tail.append(data)
        self.fh.flush()

    def close(self) -> None:
        """Writes the kept tail and closes the file."""
        if self.tail:
            if self.dropped:
                self.fh.write(f"\n[autoresearch: {self.dropped} bytes of output omitted; "
                              f"log capped at {self.cap} bytes]\n".encode())
            self.fh.writelines(self.tail)
        self.fh.close()


NOTE_PREFIX = "[autoresearch: "   # a line of the tool's own in a run's log, never the script's


def note_line(log: StreamLog, sink: TaskSink, text: str) -> None:
    """Writes one line of ours into the run's log and live output."""
    line = f"{NOTE_PREFIX}{text}]"
    log.write([line])
    sink.lines([line])
