"""Running one batch through an executor: at most `slots` runs at a time, output fed to the live
state and the listener as it arrives, the keep rule asked after each candidate's runs (more runs
if it wants them), a stop cancelling everything. The loop thread alone touches the listener, the
live file and the journal; executors only queue events.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ENV_BUDGET, ENV_EXPERIMENT, ENV_SEED, now_utc
from ..events import CampaignListener, ExperimentResult
from ..experiment import UPDATE_EVERY_S, classify
from ..keep_rules import Decision, KeepRule
from ..ledger import experiment_ref
from ..live import LiveState, write_json_atomic
from ..proposers import Proposal
from ..summary import is_finite_number
from .base import Executor, TaskResult, TaskSink, TaskSpec
from .journal import write_journal

POLL_S = 0.25          # stop checks while a batch runs
LIVE_EVERY_S = 1.0     # live.json rewrites


@dataclass
class Candidate:
    """One experiment of a batch: its commit, its finished runs and, once decided, its verdict."""

    number: int
    sha: str                             # "" while its commit is being made (see `resolve`)
    parent: str
    description: str
    proposal: Proposal | None = None     # None for the baseline
    from_working_copy: bool = False      # its content was the working copy's (a re-run, an agent's edit)
    commit_job: Future | None = None     # makes the commit while the run already goes on
    runs: list[ExperimentResult] = field(default_factory=list)
    outstanding: int = 0                 # runs queued or running
    verdict: Decision | None = None

    @property
    def value(self) -> float | None:
        """Returns the mean metric over its runs, or None if one crashed."""
        if not self.runs or any(r.status == "crash" for r in self.runs):
            return None
        return sum(r.metric for r in self.runs) / len(self.runs)


@dataclass(eq=False)
class _Run:
    """One run in flight."""

    candidate: Candidate
    index: int
    seed: int | None
    log_path: Path
    started_at: str
    live: LiveState
    handle: object = None
    job_id: str = ""
    node: str = ""
    next_update: float = 0.0
    announced: bool = False              # the listener has had experiment_started (needs the commit)


class _Sink(TaskSink):
    """Hands a run's events to the loop thread, which alone touches listener, live file and rows."""

    def __init__(self, events: queue.Queue, run: _Run) -> None:
        self.events, self.run = events, run

    def started(self, job_id, node):
        self.events.put(("started", self.run, (job_id, node)))

    def lines(self, lines):
        self.events.put(("lines", self.run, lines))

    def sampled(self, rss_mb):
        self.events.put(("rss", self.run, rss_mb))

    def finished(self, result):
        self.events.put(("finished", self.run, result))


def resolve(campaign, candidate: Candidate) -> str:
    """Returns the candidate's commit, waiting for it if need be, and points its ref at it."""
    if not candidate.sha:
        candidate.sha = candidate.commit_job.result()
        campaign.ledger.set_ref(experiment_ref(campaign.config.tag, candidate.number), candidate.sha)
    return candidate.sha


def run_batch(campaign, candidates: list[Candidate], executor: Executor, slots: int, rule: KeepRule,
              listener: CampaignListener, stop_event: threading.Event) -> None:
    """Runs every candidate (and the repeat runs the keep rule asks for), at most `slots` at once,
    until each has a verdict from the rule; a stop cancels every run."""
    paths = campaign.paths
    best = campaign.best()
    trees: dict[str, tuple[dict, list]] = {}
    events: queue.Queue = queue.Queue()
    waiting: deque[tuple[Candidate, int]] = deque((c, 1) for c in candidates)
    for candidate in candidates:
        candidate.outstanding = 1
    running: list[_Run] = []
    finished: list[_Run] = []
    stopping = False
    next_live = 0.0
    paths.stop_request.unlink(missing_ok=True)
    paths.data.mkdir(exist_ok=True)  # a worker on this machine then shares the campaign's data
    try:
        while waiting or running:
            while waiting and len(running) < slots and not stopping:
                candidate, index = waiting.popleft()
                run = _start(campaign, executor, candidate, index, rule, trees, events, listener)
                running.append(run)
                write_journal(campaign, executor.name, running + finished)
            try:
                kind, run, payload = events.get(timeout=POLL_S)
            except queue.Empty:
                kind = None
            if kind == "started":
                run.job_id, run.node = payload
                run.live.data.update(job_id=run.job_id, node=run.node)
                write_journal(campaign, executor.name, running + finished)
            elif kind == "lines":
                run.live.on_lines(payload)
            elif kind == "rss":
                run.live.on_rss(payload)
            elif kind == "finished":
                running.remove(run)
                finished.append(run)
                if not run.announced:
                    _announce(campaign, run, listener, executor.name)
                _finish_run(campaign, run, payload, executor.name)
                write_journal(campaign, executor.name, running + finished)
                candidate = run.candidate
                candidate.outstanding -= 1
                if candidate.outstanding == 0:
                    more = _judge(campaign, candidate, rule, best, stopping)
                    if more:
                        waiting.extend((candidate, len(candidate.runs) + k + 1) for k in range(more))
                        candidate.outstanding = more
            for other in running:
                if not other.announced and other.candidate.commit_job.done():
                    _announce(campaign, other, listener, executor.name)
                    write_journal(campaign, executor.name, running + finished)
            now = time.monotonic()
            if kind in ("lines", "rss") and run.announced and now >= run.next_update:
                run.next_update = now + UPDATE_EVERY_S
                listener.updated(run.live.snapshot())
            if not stopping and (stop_event.is_set() or paths.stop_request.exists()):
                stopping = True
                listener.message(f"stopping {len(running)} running experiment(s)")
                for candidate, index in waiting:
                    candidate.outstanding -= 1
                    if index == 1:  # a first run never started is still an attempt with a number and a ref
                        resolve(campaign, candidate)
                        _finish_run(campaign, _planned(campaign, candidate, index, rule),
                                    TaskResult(None, "stopped by user before it started"), executor.name)
                    if candidate.outstanding == 0:
                        _judge(campaign, candidate, rule, best, stopping)
                waiting.clear()
                for run in running:
                    run.handle.cancel()
            if now >= next_live and running:
                next_live = now + LIVE_EVERY_S
                _write_live(paths, running, executor.name)
    finally:
        for run in running:  # interrupted (a second Ctrl-C): leave nothing running anywhere
            try:
                run.handle.cancel()
            except Exception:
                pass


def _planned(campaign, candidate: Candidate, index: int, rule: KeepRule) -> _Run:
    """Returns run `index` of `candidate`, not yet started."""
    paths = campaign.paths
    live = LiveState(paths, candidate.number, candidate.description, candidate.sha, campaign.config.budget_s, index)
    return _Run(candidate, index, rule.seed_for(candidate.number, index), paths.log_for(candidate.number, index),
                now_utc().isoformat(), live)


def _start(campaign, executor, candidate, index, rule, trees, events, listener) -> _Run:
    """Submits one run of `candidate`; returns it."""
    paths, config = campaign.paths, campaign.config
    run = _planned(campaign, candidate, index, rule)
    if candidate.parent not in trees:
        trees[candidate.parent] = tree_files(campaign.ledger, candidate.parent, paths.root)
    files, executable = trees[candidate.parent]
    if candidate.commit_job is not None:  # the parent's tree with the proposal's files: the commit's tree
        changed = candidate.proposal.files
        files = {**files, **{path: text.encode() for path, text in changed.items()}}
        executable = [path for path in executable if path not in changed]
    env = {ENV_BUDGET: f"{config.budget_s:g}", ENV_EXPERIMENT: str(candidate.number)}
    if run.seed is not None:
        env[ENV_SEED] = str(run.seed)
    spec = TaskSpec(experiment=candidate.number, run=index, tag=config.tag, command=config.command, files=files,
                    executable=executable, env=env, timeout_s=config.effective_timeout_s,
                    log_cap_bytes=int(config.log_cap_mb * 2**20), gpus=executor.gpus_per_experiment,
                    data_dir=str(paths.data))
    sink = _Sink(events, run)
    try:
        run.handle = executor.submit(spec, str(run.log_path), sink)
    except Exception as exc:  # this run crashes; the batch goes on
        run.handle = _NoHandle()
        sink.finished(TaskResult(None, f"could not submit: {type(exc).__name__}: {exc}"))
    if candidate.sha:
        _announce(campaign, run, listener, executor.name)
    return run


def _announce(campaign, run: _Run, listener: CampaignListener, launcher: str) -> None:
    """Tells the listener that a run started, once its commit exists."""
    candidate, config = run.candidate, campaign.config
    sha = resolve(campaign, candidate)
    run.announced = True
    run.live.data["commit"] = sha[:7]
    diff = campaign.ledger.diff(candidate.parent, sha, config.editable) \
        if listener.wants_diff and sha != candidate.parent else ""
    listener.experiment_started({"experiment": candidate.number, "run": run.index, "description": candidate.description,
                                 "commit": sha[:7], "parent": candidate.parent[:7], "diff": diff,
                                 "budget_s": config.budget_s, "log_path": str(run.log_path), "launcher": launcher})


class _NoHandle:
    def cancel(self) -> None:
        pass


def _finish_run(campaign, run: _Run, task: TaskResult, launcher: str) -> None:
    """Turns a finished task into the run's (undecided) ExperimentResult."""
    config, paths = campaign.config, campaign.paths
    outcome = task.outcome
    if outcome is None:
        metric, reason = None, task.error or "worker lost"
    else:
        metric, reason = classify(outcome, config.metric, config.effective_timeout_s)
    summary = outcome.summary if outcome else {}
    vram_mb = summary.get("peak_vram_mb")
    rss_mb = outcome.peak_rss_mb if outcome else 0.0
    training_s = summary.get("training_seconds")
    candidate = run.candidate
    candidate.runs.append(ExperimentResult(
        experiment=candidate.number, run=run.index, commit=candidate.sha, parent=candidate.parent,
        status="crash" if reason else "pending", metric=metric, best_before=None,
        description=candidate.description, crash_reason=reason,
        log_path=os.path.relpath(run.log_path, paths.root), wall_s=outcome.wall_s if outcome else 0.0,
        training_seconds=training_s if is_finite_number(training_s) else None,
        memory_gb=vram_mb / 1024 if is_finite_number(vram_mb) and vram_mb > 0 else rss_mb / 1024,
        peak_rss_gb=rss_mb / 1024, summary=summary, tail=(outcome.tail if outcome else [])[-15:], seed=run.seed,
        started_at=run.started_at, launcher=launcher, job_id=task.job_id or run.job_id,
        node=task.node or run.node))
    candidate.runs.sort(key=lambda r: r.run)


def _judge(campaign, candidate: Candidate, rule: KeepRule, best: dict | None, stopping: bool) -> int:
    """Gives `candidate` its verdict from the keep rule; returns how many more runs the rule wants."""
    crashed = next((r for r in candidate.runs if r.status == "crash"), None)
    if crashed is not None:
        reason = crashed.crash_reason if crashed.run == 1 else f"run {crashed.run} crashed: {crashed.crash_reason}"
        candidate.verdict = Decision("crash", reason)
        return 0
    verdict = rule.decide(campaign, [r.metric for r in candidate.runs], best)
    if verdict.more_runs > 0 and stopping:  # a verdict the rule has not reached is no keep
        verdict = Decision("discard", f"{verdict.evidence}; stopped before the {verdict.more_runs} more run(s) "
                                      f"the keep rule asked for")
    candidate.verdict = verdict
    return max(0, verdict.more_runs)


def tree_files(ledger, sha: str, root: Path) -> tuple[dict[str, bytes], list[str]]:
    """Returns the tracked files of commit `sha` under the campaign folder (path -> content) and the
    executable ones: what a worker needs to run the candidate without git or a shared filesystem."""
    prefix = os.path.relpath(root, ledger.repo.working_tree_dir)
    tree = ledger.repo.commit(sha).tree
    if prefix != ".":
        tree = tree / prefix.replace(os.sep, "/")
    files, executable = {}, []
    for item in tree.traverse():
        if item.type != "blob" or item.mode == 0o120000:  # symlinks could point anywhere on the worker
            continue
        rel = os.path.relpath(item.path, tree.path) if tree.path else item.path
        files[rel] = item.data_stream.read()
        if item.mode & 0o111:
            executable.append(rel)
    return files, executable


def _write_live(paths, running: list[_Run], launcher: str) -> None:
    """Writes live.json: the lowest-numbered running experiment, with every running one under `parallel`."""
    snapshots = [r.live.snapshot() for r in sorted(running, key=lambda r: (r.candidate.number, r.index))]
    write_json_atomic(paths.live, {**snapshots[0], "launcher": launcher, "parallel": snapshots})
