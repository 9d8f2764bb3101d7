"""Parallel experiments: batches of candidates from the current best, run at once by an executor.

The ratchet rule (synchronous batches). Every candidate of a batch is its own commit on top of
the same parent, the current best, with its own experiment number and ref. When the whole
batch has finished, each candidate is judged by the keep rule against the best before the
batch; of those the rule would keep, only the best one is kept and the branch moves to it.
Every other candidate is discarded (its evidence says which one won) and stays reachable
through its ref. Rows are written once the batch is decided, in experiment order, through the
one results.tsv writer; until then `.autoresearch/batch.json` lists the runs in flight, so a
runner that dies mid-batch leaves them recorded as crashes ('interrupted'), never lost. A keep
rule that asks for more runs (repeats) gets them inside the batch, run concurrently as well.

Follow one batch through `run_parallel_loop`: `propose_batch` -> `commit_batch` (ledger; the
commits are made while the runs start) -> `run_batch` (executor) -> `decide_batch` ->
`record_batch` (results.tsv, then the ratchet move).
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .config import ENV_BUDGET, ENV_EXPERIMENT, ENV_SEED, now_utc
from .errors import CampaignError
from .events import CampaignListener, ExperimentResult
from .experiment import UPDATE_EVERY_S, classify, row_for
from .keep_rules import Decision, KeepRule, keep_rule_for
from .ledger import experiment_ref
from .live import LiveState, read_json, write_json_atomic
from .loop import MAX_PROPOSAL_FAILURES, REPORT_EVERY, progress_report
from .proposers import Proposal, ProposalError, Proposer, RerunProposer
from .results import ResultRow
from .stop_rules import stop_state
from .summary import is_finite_number
from .executors.base import Executor, TaskResult, TaskSink, TaskSpec

POLL_S = 0.25          # stop checks while a batch runs
LIVE_EVERY_S = 1.0     # live.json rewrites
JOURNAL = "batch.json"


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


def run_parallel_loop(campaign, proposer: Proposer | None = None, max_proposals: int | None = None, *,
                      executor: Executor | None = None, parallel: int | None = None,
                      listener: CampaignListener | None = None, stop_event: threading.Event | None = None,
                      keep_rule: KeepRule | None = None, report_every: int = REPORT_EVERY) -> list[ExperimentResult]:
    """Runs batches of up to `parallel` experiments (default: what the executor can hold) until a stop
    rule holds, `max_proposals` ran, the proposer is out of ideas or a stop is requested; returns
    every run's result."""
    from .executors.local import LocalPoolExecutor
    proposer = proposer or RerunProposer()
    listener = listener or CampaignListener()
    stop_event = stop_event or threading.Event()
    executor = executor or LocalPoolExecutor()
    rule = keep_rule or keep_rule_for(campaign.config)
    results: list[ExperimentResult] = []
    campaign.lock.acquire("loop")
    try:
        campaign.recover_locked()
        recover_batch(campaign)
        campaign.ledger.check_on_branch(campaign.config.branch)
        executor.open()
        slots = max(1, parallel or executor.capacity() or 1)
        listener.message(f"running up to {slots} experiment(s) at once ({executor.name} executor)")
        proposals = failures = 0
        while max_proposals is None or proposals < max_proposals:
            best = campaign.best()
            state = stop_state(campaign.config, campaign.attempted(), best["value"] if best else None)
            if state.reached:
                listener.message(state.progress)
                break
            if stop_event.is_set():
                listener.message("loop stopped on request")
                break
            baseline_due = not campaign.rows()
            if baseline_due:
                batch = [None]
            else:
                room = [slots]
                if max_proposals is not None:
                    room.append(max_proposals - proposals)
                if campaign.config.max_experiments is not None:
                    room.append(campaign.config.max_experiments - campaign.attempted())
                try:
                    batch = propose_batch(proposer, campaign, max(1, min(room)), listener)
                except ProposalError as exc:
                    failures += 1
                    listener.message(f"proposal failed ({failures}/{MAX_PROPOSAL_FAILURES}): {exc}")
                    if failures >= MAX_PROPOSAL_FAILURES:
                        listener.message(f"stopping: the {proposer.name} proposer failed {failures} times in a row")
                        break
                    continue
                failures = 0
                if not batch:
                    listener.message(f"proposer {proposer.name} has nothing more to propose")
                    break
            candidates = commit_batch(campaign, batch)
            run_batch(campaign, candidates, executor, slots, rule, listener, stop_event)
            done = record_batch(campaign, candidates, listener)
            results.extend(done)
            for candidate in candidates:
                if candidate.proposal is not None:
                    proposals += 1
                    proposer.observe(campaign, candidate.proposal, candidate.runs[-1])
            if any(r.crash_reason.startswith("stopped by user") for r in done):
                stop_event.set()
            if all(r.crash_reason.startswith("could not submit") for r in done):
                listener.message(f"stopping: the {executor.name} executor could not start any experiment "
                                 f"({done[0].crash_reason})")
                break
            listener.message(stop_state(campaign.config, campaign.attempted(),
                                        (campaign.best() or {}).get("value")).progress)
            if report_every and proposals and proposals % report_every < len(batch):
                listener.message("progress: " + progress_report(campaign))
        return results
    finally:
        try:
            executor.close()
        finally:
            campaign.lock.release()


def propose_batch(proposer: Proposer, campaign, n: int, listener: CampaignListener) -> list[tuple[Proposal, bool]]:
    """Returns up to `n` proposals, each made from the current best (not from one another).

    A proposer may offer `propose_batch(campaign, n)`; otherwise `propose` is called n times. A
    proposal that leaves its edit in the working copy (files empty) is captured as content and the
    working copy put back as it was, so the next proposal starts from the same place. Returns
    (proposal, whether its content came from the working copy) pairs.
    """
    if hasattr(proposer, "propose_batch"):
        return [_captured(campaign, p) for p in proposer.propose_batch(campaign, n)][:n]
    root, editable = campaign.paths.root, campaign.config.editable
    before = {p: (root / p).read_bytes() for p in editable if (root / p).is_file()}
    proposals: list[tuple[Proposal, bool]] = []
    try:
        for _ in range(n):
            try:
                proposal = proposer.propose(campaign)
            except ProposalError as exc:
                if not proposals:
                    raise
                listener.message(f"proposal failed, running the {len(proposals)} made so far: {exc}")
                break
            if proposal is None:
                break
            proposals.append(_captured(campaign, proposal))
            for path, content in before.items():
                if (root / path).read_bytes() != content:
                    (root / path).write_bytes(content)
    finally:
        for path in editable:  # an editable file a proposer created
            if path not in before and (root / path).exists():
                (root / path).unlink()
    return proposals


def _captured(campaign, proposal: Proposal) -> tuple[Proposal, bool]:
    """Returns the proposal with its files filled in from the working copy when it had none, and
    whether they were."""
    if proposal.files:
        allowed = set(campaign.config.editable)
        stray = sorted(set(proposal.files) - allowed)
        if stray:
            raise CampaignError(f"an experiment may only change {', '.join(sorted(allowed))}, not {', '.join(stray)}")
        return proposal, False
    root = campaign.paths.root
    files = {p: (root / p).read_text() for p in campaign.config.editable if (root / p).is_file()}
    return Proposal(proposal.description, files), True


def commit_batch(campaign, batch: list[tuple[Proposal, bool] | None]) -> list[Candidate]:
    """Starts committing each proposal on top of the tip (None: the tip itself, as the baseline) and
    numbers it; returns the candidates at once. A candidate's commit and ref exist once `resolve`
    has run. Touches neither the working copy nor the branch."""
    ledger = campaign.ledger
    tip = ledger.tip()
    first = campaign.next_experiment()
    at_tip: dict[str, str | None] = {}
    keys: list[tuple | None] = []
    to_commit: dict[tuple, tuple[dict, str]] = {}  # identical content (a re-run proposer) is one commit
    for item in batch:
        proposal = item[0] if item else None
        if proposal is None:
            keys.append(None)
            continue
        for path in proposal.files:
            if path not in at_tip:
                try:
                    at_tip[path] = ledger.read_file(tip, path)
                except Exception:  # not in the tip yet
                    at_tip[path] = None
        if all(at_tip[p] == text for p, text in proposal.files.items()):
            keys.append(None)  # unchanged: a re-run of the tip
            continue
        key = tuple(sorted(proposal.files.items()))
        keys.append(key)
        to_commit.setdefault(key, (proposal.files, proposal.description or "experiment"))
    # Each commit is a few git processes on a private index. They are made side by side, and while
    # the runs start: a run needs the files, not the commit, so no batch waits for git.
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(to_commit))), thread_name_prefix="commit")
    jobs = {key: pool.submit(ledger.commit_content, tip, files, message) for key, (files, message) in to_commit.items()}
    pool.shutdown(wait=False)
    candidates = []
    for i, (item, key) in enumerate(zip(batch, keys)):
        proposal, from_working_copy = item or (None, False)
        description = "baseline" if proposal is None else proposal.description or "experiment"
        candidate = Candidate(first + i, "", tip, description, proposal, from_working_copy,
                              commit_job=None if key is None else jobs[key])
        if key is None:
            candidate.sha = tip
            ledger.set_ref(experiment_ref(campaign.config.tag, candidate.number), tip)
        candidates.append(candidate)
    return candidates


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
    paths, config = campaign.paths, campaign.config
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
                _journal(campaign, executor, running, finished)
            try:
                kind, run, payload = events.get(timeout=POLL_S)
            except queue.Empty:
                kind = None
            if kind == "started":
                run.job_id, run.node = payload
                run.live.data.update(job_id=run.job_id, node=run.node)
                _journal(campaign, executor, running, finished)
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
                _journal(campaign, executor, running, finished)
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
                    _journal(campaign, executor, running, finished)
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


def decide_batch(campaign, candidates: list[Candidate]) -> Candidate | None:
    """Keeps at most one candidate: the best of those the rule would keep; returns it."""
    config = campaign.config
    keepers = [c for c in candidates if c.verdict is not None and c.verdict.status == "keep" and c.value is not None]
    winner = None
    for candidate in keepers:  # in number order, so a tie goes to the earlier experiment
        if winner is None or config.better(candidate.value, winner.value):
            winner = candidate
    for candidate in keepers:
        if candidate is not winner:
            candidate.verdict = Decision("discard", f"{candidate.verdict.evidence}; experiment {winner.number} did "
                                                    f"better in the same batch ({winner.value:.6f})")
    for candidate in candidates:
        if candidate.verdict is None:  # stopped before its first run
            candidate.verdict = Decision("crash", "stopped by user")
    return winner


def record_batch(campaign, candidates: list[Candidate], listener: CampaignListener) -> list[ExperimentResult]:
    """Decides the batch, writes one row per run, then moves the branch to the kept candidate."""
    config, paths, ledger = campaign.config, campaign.paths, campaign.ledger
    best = campaign.best()
    winner = decide_batch(campaign, candidates)
    if winner is not None and ledger.tip() != winner.parent:
        winner.verdict = Decision("discard", f"{winner.verdict.evidence}; not kept: the branch moved during the batch")
        winner = None
    results = []
    for candidate in candidates:
        status = "keep" if candidate is winner else "discard"
        for result in candidate.runs:
            result.best_before = best["value"] if best else None
            if result.status != "crash":
                result.status = status
            result.evidence = candidate.verdict.evidence
            campaign.results.append(row_for(campaign, result))
            results.append(result)
    if winner is not None and winner.sha != winner.parent:
        ledger.move_branch_to(winner.sha, config.editable)
    elif winner is None and any(c.from_working_copy and c.sha != c.parent for c in candidates):
        ledger.write_files_from(candidates[0].parent, config.editable)  # discarded, as a sequential run is
    (paths.state / JOURNAL).unlink(missing_ok=True)
    paths.stop_request.unlink(missing_ok=True)
    last = None
    for candidate in candidates:
        for result in candidate.runs:
            last = result
            listener.experiment_finished(result)
    if last is not None:
        live = LiveState(paths, last.experiment, last.description, last.commit, config.budget_s, last.run)
        live.finish({"status": last.status, "metric": last.metric, "delta": last.delta,
                     "crash_reason": last.crash_reason, "evidence": last.evidence,
                     "batch": [{"experiment": r.experiment, "run": r.run, "status": r.status, "metric": r.metric}
                               for r in results]})
    if winner is not None:
        listener.message(f"batch of {len(candidates)}: kept experiment {winner.number} ({winner.value:.6f})")
    elif len(candidates) > 1:
        listener.message(f"batch of {len(candidates)}: nothing kept")
    return results


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


# -- live state and the journal of runs in flight ------------------------------------------------
def _write_live(paths, running: list[_Run], launcher: str) -> None:
    """Writes live.json: the lowest-numbered running experiment, with every running one under `parallel`."""
    snapshots = [r.live.snapshot() for r in sorted(running, key=lambda r: (r.candidate.number, r.index))]
    write_json_atomic(paths.live, {**snapshots[0], "launcher": launcher, "parallel": snapshots})


def _journal(campaign, executor, running: list[_Run], finished: list[_Run]) -> None:
    """Notes the batch's runs, so a runner that dies mid-batch leaves them to be recorded."""
    def note(run: _Run) -> dict:
        c = run.candidate
        return {"experiment": c.number, "run": run.index, "commit": c.sha, "parent": c.parent,
                "description": c.description, "started_at": run.started_at, "seed": run.seed,
                "log": os.path.relpath(run.log_path, campaign.paths.root), "job_id": run.job_id,
                "node": run.node}

    write_json_atomic(campaign.paths.state / JOURNAL, {
        "runner_pid": os.getpid(), "launcher": executor.name,
        "runs": [note(r) for r in running + finished if r.candidate.sha]})


def recover_batch(campaign) -> list[dict]:
    """Records every run of a batch whose runner died as a crash ('interrupted'); returns them.

    The branch never moves before a batch is recorded, so only rows are missing.
    """
    path = campaign.paths.state / JOURNAL
    journal = read_json(path)
    if journal is None:
        path.unlink(missing_ok=True)
        return []
    config = campaign.config
    have = {(r.get("experiment"), r.get("run") or "1") for r in campaign.rows()}
    recorded = []
    for note in sorted(journal.get("runs", []), key=lambda n: (n["experiment"], n["run"])):
        if (str(note["experiment"]), str(note["run"])) in have:
            continue
        campaign.results.append(ResultRow(
            commit=note["commit"], metric=None, memory_gb=0.0, status="crash", description=note["description"],
            extra={"experiment": note["experiment"], "run": note["run"], "parent": note["parent"][:7],
                   "branch": config.branch, "started_at": note["started_at"], "crash_reason": "interrupted",
                   "seed": note.get("seed"), "log": note["log"], "command": config.command,
                   "launcher": journal.get("launcher", ""), "job_id": note.get("job_id", ""),
                   "node": note.get("node", "")}))
        recorded.append(note)
    path.unlink(missing_ok=True)
    return recorded
