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

import threading
from concurrent.futures import ThreadPoolExecutor

from .errors import CampaignError
from .events import CampaignListener, ExperimentResult
from .experiment import row_for
from .keep_rules import Decision, KeepRule, keep_rule_for
from .ledger import experiment_ref
from .live import LiveState
from .loop import MAX_PROPOSAL_FAILURES, REPORT_EVERY, progress_report, proposal_failed, should_end
from .proposers import Proposal, ProposalError, Proposer, RerunProposer
from .stop_rules import stop_state
from .executors.base import Executor
from .executors.batch import Candidate, run_batch
from .executors.journal import JOURNAL, recover_batch

__all__ = ["run_parallel_loop", "propose_batch", "commit_batch", "decide_batch", "record_batch", "recover_batch"]


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
        campaign.recover_locked()  # a dead batch included
        campaign.ledger.check_on_branch(campaign.config.branch)
        executor.open()
        slots = max(1, parallel or executor.capacity() or 1)
        listener.message(f"running up to {slots} experiment(s) at once ({executor.name} executor)")
        proposals = failures = 0
        while max_proposals is None or proposals < max_proposals:
            if should_end(campaign, stop_event, listener):
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
                    if proposal_failed(exc, failures, proposer, listener):
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
