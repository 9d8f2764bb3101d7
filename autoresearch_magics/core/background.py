"""The kernel's job queue: one background thread per campaign runs experiment and loop jobs in order.

Front ends submit jobs and return at once; `wait()` blocks until the queue drains and `stop()`
ends the running job (its experiment is recorded as a crash, 'stopped by user', or 'interrupted'
when the kernel shuts down) and cancels the queued ones. The worker thread only calls the engine
and the job's listener: it never prints. A job is plain data (a description, files or a patch, a
proposer): the queue never calls code of the front end that submitted it.
"""
from __future__ import annotations

import atexit
import itertools
import threading
import time
import traceback
import weakref
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from .errors import QueueFull
from .events import CampaignListener, ExperimentResult
from .experiment import run_experiment
from .loop import run_loop
from .proposers import Proposer, RerunProposer
from .status import INTERRUPTED, STOPPED_BY_USER

EXIT_GRACE_S = 8.0   # at interpreter exit: time for the running experiment to stop and be recorded


class JobState(str, Enum):
    """Where a job is in the queue."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    __str__ = str.__str__
    __format__ = str.__format__


QUEUED, RUNNING, DONE, FAILED, CANCELLED = JobState


class StopSignal(threading.Event):
    """A stop event that says why: the crash reason its stopped run gets."""

    reason = STOPPED_BY_USER

    def stop(self, reason: str = STOPPED_BY_USER) -> None:
        """Sets the event with `reason` (the first reason given wins)."""
        if not self.is_set():
            self.reason = reason
        self.set()


class JobListener(CampaignListener):
    """A CampaignListener that also hears about its job's queue state."""

    def job_changed(self, job: "Job") -> None:
        """The job was queued, started, finished, failed or cancelled (see `job.state`)."""


@dataclass(eq=False)
class Job:
    """One unit of background work: a single experiment or a loop."""

    id: int
    kind: str                                   # experiment | loop
    description: str
    listener: CampaignListener
    files: dict[str, str] | None = None         # experiment: content to run (None: the working copy)
    patch: str | None = None                    # experiment: a diff applied to the best train.py when it starts
    seed: int | None = None
    proposer: Proposer | None = None            # loop only
    max_proposals: int | None = None            # loop only
    report_every: int | None = None             # loop only: experiments between progress messages
    executor: object | None = None              # loop only: run batches on this executor (core.executors)
    parallel: int | None = None                 # loop only: experiments per batch
    gate: object | None = None                  # loop only: approve mode's ApprovalGate (core.approval)
    state: JobState = QUEUED
    ahead: int = 0                              # jobs that run before this one starts
    results: list[ExperimentResult] = field(default_factory=list)
    error: BaseException | None = None
    error_trace: str = ""
    listener_errors: list[str] = field(default_factory=list)
    stop_event: StopSignal = field(default_factory=StopSignal)
    done_event: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        """Returns True once the job can no longer change."""
        return self.state in (DONE, FAILED, CANCELLED)


class _SafeListener(CampaignListener):
    """Forwards callbacks to a job's listener; a failing listener is noted on the job, never fatal to the run."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def _call(self, name: str, *args) -> None:
        try:
            getattr(self.job.listener, name)(*args)
        except Exception:  # a display bug must not abort (and lose) an experiment
            self.job.listener_errors.append(traceback.format_exc(limit=4))

    def experiment_started(self, info):
        self._call("experiment_started", info)

    def updated(self, snapshot):
        self._call("updated", snapshot)

    def experiment_finished(self, result):
        self.job.results.append(result)
        self._call("experiment_finished", result)

    def message(self, text):
        self._call("message", text)

    def job_changed(self):
        if hasattr(self.job.listener, "job_changed"):
            self._call("job_changed", self.job)


class JobQueue:
    """Runs a campaign's jobs one after another on a background thread of this process."""

    def __init__(self, campaign, max_queued: int | None = None) -> None:
        self.campaign = campaign
        self.max_queued = max_queued            # None: unlimited
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        _LIVE_QUEUES.add(self)

    # -- submitting ------------------------------------------------------------------------------
    def submit_experiment(self, description: str, files: dict[str, str] | None = None, *, patch: str | None = None,
                          seed: int | None = None, listener: CampaignListener | None = None) -> Job:
        """Queues one experiment (the working copy, `files`, or `patch` applied when it starts); returns its job."""
        return self._submit(Job(0, "experiment", description, listener or CampaignListener(), files=files,
                                patch=patch, seed=seed))

    def submit_loop(self, proposer: Proposer | None = None, max_proposals: int | None = None, *,
                    listener: CampaignListener | None = None, report_every: int | None = None,
                    executor=None, parallel: int | None = None, gate=None) -> Job:
        """Queues a loop of experiments until a stop rule holds or `max_proposals` ran; returns its job.
        With `gate`, each proposal waits there (on the worker thread) for a decision; a stop of the job
        also ends the wait."""
        proposer = proposer or RerunProposer()
        job = Job(0, "loop", proposer.name, listener or CampaignListener(), proposer=proposer,
                  max_proposals=max_proposals, report_every=report_every, executor=executor,
                  parallel=parallel, gate=gate)
        if gate is not None:
            gate.stop_event = job.stop_event
        return self._submit(job)

    def _submit(self, job: Job) -> Job:
        with self._cond:
            if self.max_queued is not None and self.busy and len(self._queue) >= self.max_queued:
                raise QueueFull(len(self._queue))
            job.id = next(self._ids)
            job.ahead = len(self._queue) + (self._current is not None)
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=f"autoresearch-{self.campaign.config.tag}",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
        _SafeListener(job).job_changed()
        return job

    # -- observing -------------------------------------------------------------------------------
    @property
    def current(self) -> Job | None:
        """Returns the running job, or None."""
        return self._current

    def queued(self) -> list[Job]:
        """Returns the jobs waiting behind the running one, first in line first."""
        with self._cond:
            return list(self._queue)

    @property
    def busy(self) -> bool:
        """Returns True while a job runs or waits."""
        return self._current is not None or bool(self._queue)

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until no job runs or waits; returns False when `timeout` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # short slices keep Ctrl-C responsive in the waiting thread
                self._cond.wait(0.2 if left is None else min(left, 0.2))
        return True

    # -- stopping --------------------------------------------------------------------------------
    def stop(self, cancel_queued: bool = True, reason: str = STOPPED_BY_USER) -> tuple[Job | None, list[Job]]:
        """Stops the running job (its run gets crash reason `reason`) and cancels the queued ones;
        returns (stopped job, cancelled jobs)."""
        cancelled: list[Job] = []
        with self._cond:
            running = self._current
            if cancel_queued:
                cancelled = list(self._queue)
                self._queue.clear()
            if running is not None:
                running.stop_event.stop(reason)
            self._cond.notify_all()
        for job in cancelled:
            self._finish(job, CANCELLED)
        return running, cancelled

    def shutdown(self, timeout: float = EXIT_GRACE_S) -> None:
        """Stops everything as a closing process does ('interrupted') and waits up to `timeout` seconds
        for the running experiment to be recorded."""
        self.stop(reason=INTERRUPTED)
        self.wait(timeout)

    # -- the worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._thread = None
                    self._cond.notify_all()
                    return
                job = self._queue.popleft()
                self._current = job
                job.state, job.ahead = RUNNING, 0
                behind = list(self._queue)
                for i, waiting in enumerate(behind):
                    waiting.ahead = i + 1
            _SafeListener(job).job_changed()
            for waiting in behind:  # their place in line moved up
                _SafeListener(waiting).job_changed()
            state = DONE
            try:
                self._run(job)
            except BaseException as exc:  # recorded on the job; the thread keeps serving the queue
                job.error, job.error_trace = exc, traceback.format_exc()
                state = FAILED
            self._finish(job, state)  # while still current, so wait() returns only after the last update
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def _run(self, job: Job) -> None:
        listener = _SafeListener(job)
        if job.kind == "loop":
            options = {} if job.report_every is None else {"report_every": job.report_every}
            run_loop(self.campaign, job.proposer, job.max_proposals, listener=listener, stop_event=job.stop_event,
                     executor=job.executor, parallel=job.parallel, gate=job.gate, **options)
            return
        if job.stop_event.is_set():
            return
        run_experiment(self.campaign, job.description, job.files, patch=job.patch, seed=job.seed,
                       listener=listener, stop_event=job.stop_event)

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        _SafeListener(job).job_changed()
        job.done_event.set()


_LIVE_QUEUES: "weakref.WeakSet[JobQueue]" = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    """A closing kernel stops its runs ('interrupted'), so no training process outlives it and each is recorded."""
    queues = [q for q in list(_LIVE_QUEUES) if q.busy]
    for job_queue in queues:
        job_queue.stop(reason=INTERRUPTED)
    deadline = time.monotonic() + EXIT_GRACE_S
    for job_queue in queues:
        job_queue.wait(max(0.0, deadline - time.monotonic()))
