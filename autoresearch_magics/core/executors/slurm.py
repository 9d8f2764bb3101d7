"""The Slurm executor, through submitit: each run of an experiment is one Slurm job (one node,
one task, K GPUs), for clusters without a Ray head.

The candidate's file tree travels inside the job's pickle, which submitit keeps in `folder`:
that folder must be on a filesystem the compute nodes share with this machine, as it always
must be for submitit. The run writes its log there and this side follows it while it grows; a
stop is asked for with a file the run checks, then by cancelling the job.
"""
from __future__ import annotations

import codecs
import json
import math
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from ..runner import GRACE_S, RunListener, RunOutcome
from ..summary import LINE_BREAKS
from .base import Executor, ExecutorError, Handle, StreamLog, TaskResult, TaskSink, TaskSpec
from .worker import run_task

POLL_S = 0.5              # how often the job's state and log are read
SLACK_MIN = 5             # minutes Slurm's own time limit adds to the run's hard timeout
INSTALL_HINT = "pip install 'autoresearch-magics[slurm]'"


def _slurm_task(spec: TaskSpec, stream_dir: str) -> RunOutcome:
    """The job body: runs `spec` on the compute node, writing its log and start note to `stream_dir`."""
    stream = Path(stream_dir)

    class Note(RunListener):
        def started(self, pid):
            tmp = stream / "started.json.tmp"
            tmp.write_text(json.dumps({"node": socket.gethostname(), "pid": pid}))
            os.replace(tmp, stream / "started.json")

    return run_task(spec, Note(), (stream / "stop").exists, log_path=str(stream / "run.log"))


class _SlurmHandle(Handle):
    def __init__(self, job, stream: Path) -> None:
        self.job, self.stream = job, stream
        self.cancel_at: float | None = None

    def cancel(self) -> None:
        if self.cancel_at is None:
            (self.stream / "stop").touch()
            # a job still queued, or one whose node is gone, never sees the file
            self.cancel_at = time.monotonic() + (0 if not (self.stream / "started.json").exists() else 2 * GRACE_S)


class SlurmExecutor(Executor):
    """Runs experiments as Slurm jobs submitted with submitit (cluster="local" runs them here)."""

    name = "slurm"

    def __init__(self, folder, partition: str | None = None, gpus_per_experiment: int = 0,
                 cpus_per_experiment: int | None = None, cluster: str | None = None,
                 slurm_parameters: dict | None = None) -> None:
        self.folder = Path(folder)
        self.partition = partition
        self.gpus_per_experiment = gpus_per_experiment
        self.cpus_per_experiment = cpus_per_experiment
        self.cluster = cluster                      # None: Slurm when sbatch is found; "local": this machine
        self.slurm_parameters = slurm_parameters or {}
        self._executor = None
        self._lock = threading.Lock()

    def open(self) -> "SlurmExecutor":
        try:
            import submitit
        except ImportError:
            raise ExecutorError(f"--executor slurm needs submitit: {INSTALL_HINT}") from None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._executor = submitit.AutoExecutor(folder=str(self.folder / "jobs"), cluster=self.cluster)
        if self._executor.cluster == "debug":
            raise ExecutorError("no Slurm here (sbatch not found): run on a login node, or use --executor local")
        return self

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        if self._executor is None:
            self.open()
        stream = self.folder / "streams" / f"{spec.name}-{uuid.uuid4().hex[:8]}"
        stream.mkdir(parents=True)
        params = {"name": spec.name, "timeout_min": math.ceil(spec.timeout_s / 60) + SLACK_MIN, "nodes": 1,
                  "tasks_per_node": 1, "gpus_per_node": spec.gpus}
        if self.cpus_per_experiment:
            params["cpus_per_task"] = self.cpus_per_experiment
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.slurm_parameters:
            params["slurm_additional_parameters"] = self.slurm_parameters
        with self._lock:  # parameters live on the shared submitit executor
            self._executor.update_parameters(**params)
            job = self._executor.submit(_slurm_task, spec, str(stream))
        handle = _SlurmHandle(job, stream)
        threading.Thread(target=_follow, args=(handle, spec, log_path, sink), name=spec.name, daemon=True).start()
        return handle


class _Tail:
    """Reads what was appended to a growing log file, as whole lines."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.pending = path, 0, ""
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            data = b""
        self.offset += len(data)
        parts = LINE_BREAKS.split(self.pending + self.decoder.decode(data, final))
        self.pending = "" if final else parts.pop()
        return [p for p in parts if p or not final]


def _follow(handle: _SlurmHandle, spec: TaskSpec, log_path: str, sink: TaskSink) -> None:
    """Follows a job until it ends: forwards its start, log lines and result."""
    job = handle.job
    tail = _Tail(handle.stream / "run.log")
    log = StreamLog(log_path, spec.log_cap_bytes)
    node = ""
    result = None
    try:
        while True:
            done = job.done()
            if not node and (handle.stream / "started.json").exists():
                try:
                    node = json.loads((handle.stream / "started.json").read_text())["node"]
                    sink.started(str(job.job_id), node)
                except (OSError, ValueError, KeyError):
                    pass
            lines = tail.read(final=done)
            if lines:
                log.write(lines)
                sink.lines(lines)
            if done:
                break
            if handle.cancel_at is not None and time.monotonic() >= handle.cancel_at:
                job.cancel(check=False)
                handle.cancel_at = float("inf")
            time.sleep(POLL_S)
        result = TaskResult(job.result(), job_id=str(job.job_id), node=node)
    except Exception as exc:  # a failed or lost job is that experiment's crash
        if handle.cancel_at is not None:
            result = TaskResult(None, "stopped by user", str(job.job_id), node, cancelled=True)
        else:
            text = str(exc).strip().splitlines()
            result = TaskResult(None, f"slurm job {job.job_id} lost{' on ' + node if node else ''}: "
                                      f"{type(exc).__name__}: {text[-1] if text else ''}"[:300], str(job.job_id), node)
    finally:
        log.close()
        sink.finished(result or TaskResult(None, f"slurm job {job.job_id} ended without a result"))
