"""The Slurm executor, through submitit: each run of an experiment is one Slurm job (one node,
one task, K GPUs), for clusters without a Ray head.

The candidate's file tree travels inside the job's pickle, which submitit keeps in `folder`:
that folder must be on a filesystem the compute nodes share with this machine, as it always
must be for submitit. The run writes its output lines there as they come and this side follows
that file while it grows; a stop is asked for with a file the run checks, then by cancelling the job.

Slurm's own word decides how a job that did not finish by itself is recorded (see
`scheduler_state`): a job Slurm requeued is followed into its next start; one preempted or lost
with its node is submitted again as the same run, up to `lost_retries` times; one cancelled by
someone else is recorded as cancelled, and not run again.

A job goes on when the runner that submitted it dies: the runner's journal names it
(`_SlurmHandle.journal`), and the next runner's recovery settles it (`settle_left_job`): a job
that finished is read from its result and its own log, one still queued or running is cancelled.
"""
from __future__ import annotations

import codecs
import json
import math
import os
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..runner import GRACE_S, RunListener, RunOutcome
from ..summary import LINE_BREAKS
from .base import Executor, ExecutorError, Handle, StreamLog, TaskResult, TaskSink, TaskSpec, note_line
from .scheduler_state import (SlurmJobState, SlurmUnavailable, slurm_cancel, slurm_ending, slurm_job_state,
                              slurm_requeue_note, stepd_cause)
from .worker import run_task

POLL_S = 0.5              # how often the job's log is read
STATE_EVERY_S = 2.0       # how often Slurm is asked for the job's state
FORGOTTEN_AFTER = 3       # state reads that find no job before it counts as gone
LOST_RETRIES = 2          # default: how often a run lost to preemption or a node failure is submitted again
SLACK_MIN = 5             # minutes Slurm's own time limit adds to the run's hard timeout
CANCEL_WAIT_S = 60.0      # seconds recovery waits for a job it cancelled to leave Slurm
INSTALL_HINT = "pip install 'autoresearch-magics[slurm]'"




def _partition_gpus(partition: str | None) -> int | None:
    """Returns how many GPUs the partition's nodes list in their GRES (0: none), or None when sinfo cannot tell."""
    args = ["sinfo", "-h", "-o", "%G"] + (["-p", partition] if partition else [])
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not done.stdout.strip():
        return None
    total = 0
    for gres in done.stdout.split():
        for item in gres.split(","):
            fields = item.split("(")[0].split(":")  # gpu:a100:4(S:0-1)
            if fields[0] == "gpu":
                total += int(fields[-1]) if fields[-1].isdigit() else 1
    return total


def _attempt() -> int:
    """Returns how often Slurm has restarted this job (0 on its first start, and off Slurm)."""
    count = os.environ.get("SLURM_RESTART_COUNT", "0")
    return int(count) if count.isdigit() else 0


def _slurm_task(spec: TaskSpec, stream_dir: str) -> RunOutcome:
    """The job body: runs `spec` on the compute node, writing its output lines (as they come) and
    its start note to `stream_dir`, under names of their own for each start of the job (Slurm may
    requeue it)."""
    stream = Path(stream_dir)
    attempt = _attempt()
    live = StreamLog(str(stream / f"live-{attempt}.log"), spec.log_cap_bytes)  # flushed line by line

    class Note(RunListener):
        def started(self, pid):
            tmp = stream / f"started-{attempt}.json.tmp"
            tmp.write_text(json.dumps({"node": socket.gethostname(), "pid": pid}))
            os.replace(tmp, stream / f"started-{attempt}.json")

        def lines(self, lines):
            live.write(lines)

    try:
        return run_task(spec, Note(), (stream / "stop").exists, watchdog=True)
    finally:
        live.close()


class _SlurmHandle(Handle):
    def __init__(self, job, stream: Path, on_slurm: bool) -> None:
        self.job, self.stream, self.on_slurm = job, stream, on_slurm
        self.cancel_at: float | None = None
        self.lock = threading.Lock()          # a cancel and a resubmission do not cross

    def journal(self) -> dict:
        """Returns where a later recovery finds the job: a Slurm job goes on after its runner dies.
        (A job of submitit's local cluster carries the run's marker: recovery ends it by that.)"""
        if not self.on_slurm:
            return {}
        with self.lock:
            return {"kind": "slurm", "job_id": str(self.job.job_id),
                    "jobs": str(Path(self.job.paths.folder).resolve()), "stream": str(self.stream.resolve())}

    def cancel(self) -> None:
        with self.lock:
            if self.cancel_at is None:
                (self.stream / "stop").touch()
                # a job still queued, or one whose node is gone, never sees the file
                started = any(self.stream.glob("started-*.json"))
                self.cancel_at = time.monotonic() + (2 * GRACE_S if started else 0)


class SlurmExecutor(Executor):
    """Runs experiments as Slurm jobs submitted with submitit (cluster="local" runs them here)."""

    name = "slurm"

    def __init__(self, folder, partition: str | None = None, gpus_per_experiment: int = 0,
                 cpus_per_experiment: int | None = None, cluster: str | None = None,
                 slurm_parameters: dict | None = None, lost_retries: int = LOST_RETRIES) -> None:
        if lost_retries < 0:
            raise ExecutorError("lost_retries must be 0 or more")
        self.folder = Path(folder)
        self.partition = partition
        self.gpus_per_experiment = gpus_per_experiment
        self.cpus_per_experiment = cpus_per_experiment
        self.cluster = cluster                      # None: Slurm when sbatch is found; "local": this machine
        self.slurm_parameters = slurm_parameters or {}
        self.lost_retries = lost_retries
        self._executor = None
        self._lock = threading.Lock()

    @property
    def on_slurm(self) -> bool:
        """True when jobs are real Slurm jobs (their ids mean something to scontrol)."""
        return self._executor is not None and self._executor.cluster == "slurm"

    def open(self) -> "SlurmExecutor":
        try:
            import submitit
        except ImportError:
            raise ExecutorError(f"--executor slurm needs submitit: {INSTALL_HINT}") from None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._executor = submitit.AutoExecutor(folder=str(self.folder / "jobs"), cluster=self.cluster)
        if self._executor.cluster == "debug":
            raise ExecutorError("no Slurm here (sbatch not found): run on a login node, or use --executor local")
        if self.on_slurm and self.gpus_per_experiment and _partition_gpus(self.partition) == 0:
            raise ExecutorError(f"each experiment asks for {self.gpus_per_experiment} GPU(s) but the nodes of "
                                f"partition {self.partition or '(default)'} list no GPUs (no gpu GRES in sinfo): "
                                f"choose a GPU partition with --partition, or use --gpus-per-experiment 0")
        return self

    def submit(self, spec: TaskSpec, log_path: str, sink: TaskSink) -> Handle:
        if self._executor is None:
            self.open()
        job, stream = self._submit_job(spec)
        handle = _SlurmHandle(job, stream, self.on_slurm)
        threading.Thread(target=_follow, args=(self, handle, spec, log_path, sink), name=spec.name,
                         daemon=True).start()
        return handle

    def _submit_job(self, spec: TaskSpec):
        """Submits one Slurm job for `spec`; returns it and its stream folder."""
        stream = self.folder / "streams" / f"{spec.name}-{uuid.uuid4().hex[:8]}"
        stream.mkdir(parents=True)
        params = {"name": spec.name, "timeout_min": math.ceil((spec.timeout_s + (spec.startup_timeout_s or 0)) / 60) + SLACK_MIN, "nodes": 1,
                  "tasks_per_node": 1, "gpus_per_node": spec.gpus}
        if self.cpus_per_experiment:
            params["cpus_per_task"] = self.cpus_per_experiment
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.slurm_parameters:
            params["slurm_additional_parameters"] = self.slurm_parameters
        with self._lock:  # parameters live on the shared submitit executor
            self._executor.update_parameters(**params)
            try:
                job = self._executor.submit(_slurm_task, spec, str(stream))
            except Exception as exc:  # sbatch refused it: say what Slurm said
                text = str(exc).strip().splitlines()
                raise ExecutorError(f"Slurm refused the job: {text[-1] if text else type(exc).__name__}") from None
        return job, stream


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


def _follow(executor: SlurmExecutor, handle: _SlurmHandle, spec: TaskSpec, log_path: str, sink: TaskSink) -> None:
    """Follows a run until it ends, through Slurm's requeues and our resubmissions of lost jobs;
    forwards its starts, log lines and result."""
    log = StreamLog(log_path, spec.log_cap_bytes)
    lost: list[str] = []
    retries = 0
    result = None
    try:
        while True:
            result, ending = _follow_job(executor, handle, log, sink, lost)
            with handle.lock:
                again = (ending is not None and ending.retry and retries < executor.lost_retries
                         and handle.cancel_at is None)
                if again:
                    retries += 1
                    lost.append(ending.reason)
                    note_line(log, sink, f"{ending.reason}; submitting the run again "
                                         f"(retry {retries} of {executor.lost_retries})")
                    handle.job, handle.stream = executor._submit_job(spec)
                    sink.started(str(handle.job.job_id), "")  # queued: the runner's journal names the new job
            if not again:
                break
    except Exception as exc:  # the experiment crashes; the other experiments of the batch go on
        result = TaskResult(None, f"slurm executor error: {type(exc).__name__}: {exc}"[:300],
                                   str(handle.job.job_id))
    finally:
        log.close()
        if result is None:
            result = TaskResult(None, f"slurm job {handle.job.job_id} ended without a result")
        result.lost_attempts = list(lost)
        sink.finished(result)


def _follow_job(executor: SlurmExecutor, handle: _SlurmHandle, log: StreamLog, sink: TaskSink, lost: list[str]):
    """Follows one Slurm job to its end; returns its TaskResult and, when the scheduler
    ended it, the Ending (None otherwise)."""
    job, stream = handle.job, handle.stream
    job_id = str(job.job_id)
    on_slurm = executor.on_slurm
    attempt = 0
    tail = _Tail(stream / "live-0.log")
    node = ""
    state = None
    next_state = 0.0
    misses = 0
    unavailable = False
    while True:
        has_result = job.paths.result_pickle.exists()
        if on_slurm:
            # the result file alone does not say the job is over: Slurm may have requeued it
            if has_result or time.monotonic() >= next_state:
                next_state = time.monotonic() + STATE_EVERY_S
                try:
                    state = slurm_job_state(job_id)
                    misses = 0 if state is not None else misses + 1
                    unavailable = False
                except SlurmUnavailable as exc:  # the job may well run on: wait for the controller
                    if not unavailable:
                        note_line(log, sink, f"the Slurm controller does not answer ({exc}); waiting for it")
                    unavailable = True
                if state is not None and state.restarts > attempt:
                    lines = tail.read(final=True)
                    if lines:
                        log.write(lines)
                        sink.lines(lines)
                    note = slurm_requeue_note(state, job_id, stepd_cause(_stderr(job)))
                    lost.append(note)
                    note_line(log, sink, f"{note}; following its next start")
                    attempt, node = state.restarts, ""
                    tail = _Tail(stream / f"live-{attempt}.log")
            done = not unavailable and ((state is not None and state.final)
                                        or (state is None and (has_result or misses >= FORGOTTEN_AFTER)))
        else:
            done = job.done()
        started_note = stream / f"started-{attempt}.json"
        if not node and started_note.exists():
            try:
                node = json.loads(started_note.read_text())["node"]
                sink.started(job_id, node)
            except (OSError, ValueError, KeyError):
                pass
        lines = tail.read(final=done)
        if lines:
            log.write(lines)
            sink.lines(lines)
        if done:
            break
        with handle.lock:
            if handle.cancel_at is not None and time.monotonic() >= handle.cancel_at:
                job.cancel(check=False)
                handle.cancel_at = float("inf")
        time.sleep(POLL_S)
    return _ending_of(job, job_id, node, state if on_slurm else None, handle.cancel_at is not None)


def _ending_of(job, job_id: str, node: str, state, stopped_by_us: bool):
    """Returns (TaskResult, Ending or None) for a job that is over."""
    outcome, error = None, ""
    if job.paths.result_pickle.exists():
        try:
            outcome = job.result()
        except Exception as exc:  # the job body failed, or submitit recorded why there is no result
            text = str(exc).strip().splitlines()
            error = f"slurm job {job_id} failed{' on ' + node if node else ''}: " \
                    f"{type(exc).__name__}: {text[-1] if text else ''}"[:300]
    finished_itself = outcome is not None and outcome.returncode == 0
    if stopped_by_us and not finished_itself:
        if outcome is not None and outcome.stopped:
            return TaskResult(outcome, job_id=job_id, node=node), None
        return TaskResult(None, "stopped by user", job_id, node, cancelled=True), None
    ending = slurm_ending(state, job_id, stepd_cause(_stderr(job))) if state is not None else None
    if ending is not None and not finished_itself:
        return TaskResult(None, ending.reason, job_id, node, lost=ending.lost,
                                 scheduler_reason=ending.scheduler_reason), ending
    if outcome is not None:
        return TaskResult(outcome, job_id=job_id, node=node), None
    return TaskResult(None, error or f"slurm job {job_id} lost{' on ' + node if node else ''}: "
                                            f"it ended without a result", job_id, node), None


def _stderr(job) -> str:
    """Returns the end of the job's stderr, where slurmstepd says why it killed the job."""
    try:
        with open(job.paths.stderr, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


# -- after the runner died ---------------------------------------------------------------------------
@dataclass
class LeftJob:
    """What became of a Slurm job whose runner died: `finished` (with its result and output lines),
    `cancelled` (it still ran or waited: recovery ended it) or `unknown` (nothing left to read)."""

    state: str
    result: TaskResult | None = None
    lines: list[str] = field(default_factory=list)   # the output of its last start, from its own log
    detail: str = ""


def settle_left_job(where: dict, cancel_wait_s: float = CANCEL_WAIT_S) -> LeftJob:
    """Returns what became of the job a dead runner's journal names (`_SlurmHandle.journal`): a job
    that finished is read from its result and its own log; one that still runs or waits is
    cancelled (a runner that starts now cannot follow it); one without a trace is `unknown`."""
    job_id, stream = str(where.get("job_id", "")), Path(where.get("stream") or "")
    there = bool(where.get("stream")) and stream.is_dir()
    try:
        state = slurm_job_state(job_id) if job_id else None
    except SlurmUnavailable as exc:
        if there:
            (stream / "stop").touch()   # a run that goes on stops by itself at its next check
        return LeftJob("unknown", detail=f"the Slurm controller does not answer about slurm job {job_id} ({exc})"
                                         + ("; asked the run to stop" if there else ""))
    if state is not None and not state.final:
        if there:
            (stream / "stop").touch()
        slurm_cancel(job_id)
        gone = _wait_until_over(job_id, cancel_wait_s)
        return LeftJob("cancelled", detail=f"slurm job {job_id} was still {state.state.lower()}: cancelled it"
                                           + ("" if gone else f" (Slurm had not ended it after {cancel_wait_s:g}s)"))
    if not there:
        return LeftJob("unknown", detail=f"slurm job {job_id} left no output to read (its folder {stream} is gone)")
    import submitit
    job = submitit.SlurmJob(folder=where.get("jobs", ""), job_id=job_id)
    if state is None and not job.paths.result_pickle.exists():
        return LeftJob("unknown", detail=f"Slurm no longer knows job {job_id} and it left no result")
    attempt = state.restarts if state is not None else max(_attempts(stream), default=0)
    node = _node_of(stream, attempt) or (state.nodes if state is not None else "")
    result, _ = _ending_of(job, job_id, node, state, (stream / "stop").exists())
    return LeftJob("finished", result, _Tail(stream / f"live-{attempt}.log").read(final=True))


def _wait_until_over(job_id: str, wait_s: float) -> bool:
    """Returns True once Slurm holds the job final (or forgot it), False after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = slurm_job_state(job_id)
        except SlurmUnavailable:
            state = SlurmJobState("UNKNOWN")   # not known yet: ask again
        if state is None or state.final:
            return True
        time.sleep(POLL_S)
    return False


def _attempts(stream: Path) -> list[int]:
    """Returns the starts of a job that left an output log in `stream`."""
    found = []
    for path in stream.glob("live-*.log"):
        number = path.stem.split("-", 1)[1]
        if number.isdigit():
            found.append(int(number))
    return found


def _node_of(stream: Path, attempt: int) -> str:
    """Returns the node a start of the job ran on, from its start note ("" when there is none)."""
    try:
        return json.loads((stream / f"started-{attempt}.json").read_text())["node"]
    except (OSError, ValueError, KeyError):
        return ""
