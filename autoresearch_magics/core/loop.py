"""The campaign loop: propose -> candidates -> engine (run, decide, record) until a stop rule holds.

One loop for every case: a sequential loop is a loop of batches of one on this machine; with an
executor and `parallel`, each batch holds up to that many candidates from the current best.
`run_experiment` (experiment.py) is the same path for one proposal.
"""
from __future__ import annotations

import contextlib
import threading

from .candidate import make_candidates, needs_baseline
from .engine import Engine
from .errors import CampaignError, ProposalError
from .events import CampaignListener
from .keep_rules import KeepRule, keep_rule_for
from .proposers import Proposal, Proposer, RerunProposer
from .recovery import recover
from .review import review_proposal
from .stop_rules import stop_state
from .working_copy import working_copy

REPORT_EVERY = 5  # experiments between progress reports
MAX_PROPOSAL_FAILURES = 3  # consecutive failed proposals (agent crash, hang, no change) end the loop


class LoopResults(list):
    """The loop's results (a list of ExperimentResult) plus why it ended."""

    ended_by = ""        # stop rule | maximum | proposer done | stop requested | edit | proposal failures | executor

    @property
    def failed(self) -> bool:
        """Returns True when the loop ended because things failed, not because it was done."""
        return self.ended_by in ("proposal failures", "executor")


@contextlib.contextmanager
def runner(campaign, purpose: str, listener: CampaignListener, executor=None, parallel: int | None = None,
           stop_event: threading.Event | None = None, keep_rule: KeepRule | None = None):
    """Holds the campaign for a runner: takes the lock, records what a dead runner left, checks the
    branch, connects the executor; yields the Engine that runs batches."""
    from .executors.local import LocalPoolExecutor
    given = executor is not None
    executor = executor or LocalPoolExecutor(gpus_per_experiment=None)
    with campaign.lock.holding(purpose):
        # a stop request is for the runner that was running when it was made: not for this one
        campaign.clear_stop_request()
        opening = _Opening(executor, parallel, given)   # connecting overlaps recovery and the first proposals
        try:
            report = recover(campaign)
            if report:
                listener.message(report.text())
            campaign.ledger.check_on_branch(campaign.config.branch)
            engine = Engine(campaign, executor, max(1, parallel or 1), keep_rule or keep_rule_for(campaign.config), listener,
                            stop_event or threading.Event())
            engine.ready = lambda: opening.wait(engine)
            if not executor.opens_anywhere:
                engine.ready()
            yield engine
        finally:
            opening.join()
            executor.close()
            campaign.clear_stop_request()


class _Opening:
    """Opens an executor and warms its workers, on a thread when it allows (else in `wait`); `wait`
    sets the engine's slots: `parallel`, else what a given executor holds, else one."""

    def __init__(self, executor, parallel: int | None, given: bool) -> None:
        self.executor, self.parallel, self.given = executor, parallel, given
        self.slots, self.error, self.done = 1, None, False
        self.thread = None
        if executor.opens_anywhere:
            self.thread = threading.Thread(target=self._open, name="executor-open", daemon=True)
            self.thread.start()

    def _open(self) -> None:
        try:
            self.executor.open()
            self.slots = max(1, self.parallel or (self.executor.capacity() if self.given else 1) or 1)
            self.executor.warm(self.slots)
        except BaseException as exc:  # raised in the runner's thread by `wait`
            self.error = exc

    def wait(self, engine) -> None:
        """Returns once the executor is open (raising its error), with the engine's slots set."""
        if self.done:
            return
        if self.thread is None:
            self._open()
        else:
            self.thread.join()
        self.done = True
        if self.error is not None:
            raise self.error
        engine.slots = self.slots

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def run_loop(campaign, proposer: Proposer | None = None, max_proposals: int | None = None, *,
             executor=None, parallel: int | None = None, listener: CampaignListener | None = None,
             stop_event: threading.Event | None = None, keep_rule: KeepRule | None = None,
             report_every: int = REPORT_EVERY, gate=None, on_edit=None) -> LoopResults:
    """Runs batches of up to `parallel` experiments (default: one at a time on this machine; with an
    executor, what it can hold) until a stop rule holds, `max_proposals` were made, the proposer is
    out of ideas or a stop is requested; returns every run's result.

    Each proposal is reviewed first (core/review.py): an exact repeat of an earlier experiment is
    skipped; with `gate` (an ApprovalGate, approve mode) each one waits for run / edit / skip / stop.
    A skipped proposal counts toward `max_proposals`. "Edit" without edited files ends the loop
    after handing the proposal to `on_edit(proposal)` (the notebook turns it into a %%experiment
    cell, which runs once the loop has made way)."""
    loop = _Loop(campaign, proposer or RerunProposer(), max_proposals, listener or CampaignListener(),
                 stop_event or threading.Event(), report_every)
    loop.gate, loop.on_edit = gate, on_edit
    with runner(campaign, "loop", loop.listener, executor, parallel, loop.stop_event, keep_rule) as engine:
        if parallel is None:
            engine.ready()   # the executor's capacity sets the batch size
        if executor is not None:
            loop.listener.message(f"running up to {engine.slots} experiment(s) at once "
                                  f"({engine.executor.name} executor)")
        while not loop.results.ended_by:
            batch = loop.next_batch(engine)
            if batch:
                loop.run(engine, batch)
    return loop.results


class _Loop:
    """The state of one loop: proposals made, failures in a row, results, why it ended."""

    def __init__(self, campaign, proposer: Proposer, max_proposals: int | None, listener: CampaignListener,
                 stop_event: threading.Event, report_every: int) -> None:
        self.campaign, self.proposer, self.max_proposals = campaign, proposer, max_proposals
        self.listener, self.stop_event, self.report_every = listener, stop_event, report_every
        self.results = LoopResults()
        self.proposals = self.failures = self.repeats = 0
        self.gate = self.on_edit = None
        self.origins: dict[int, Proposal] = {}   # id(reviewed proposal) -> the proposer's own, for observe

    def end(self, why: str, message: str = "") -> None:
        if message:
            self.listener.message(message)
        self.results.ended_by = why

    def next_batch(self, engine) -> list[Proposal | None]:
        """Returns the next batch ([None] stands for the baseline); [] when there is nothing to run now."""
        if self.max_proposals is not None and self.proposals >= self.max_proposals:
            self.end("maximum")
            return []
        ended = should_end(self.campaign, self.stop_event, self.listener)
        if ended:
            self.end(ended)
            return []
        baseline = [None] if needs_baseline(self.campaign) else []   # a crashed baseline is run again
        if baseline and (engine.slots == 1 or engine.rule.baseline_alone):
            return baseline
        # the baseline shares the first batch with the first proposals, which are judged against it
        room = _room(self.campaign, engine.slots - len(baseline), self.max_proposals, self.proposals)
        try:
            proposals = propose_batch(self.proposer, self.campaign, room, self.listener)
        except ProposalError as exc:
            self.failures += 1
            if proposal_failed(exc, self.failures, self.proposer, self.listener):
                self.end("proposal failures")
            return baseline   # the baseline runs all the same
        self.failures = 0
        if not proposals:
            self.end("proposer done", f"proposer {self.proposer.name} has nothing more to propose")
        return baseline + self.reviewed(proposals)

    def reviewed(self, proposals: list[Proposal]) -> list[Proposal]:
        """Returns the proposals to run after comparing each with what was tried and, in approve
        mode, asking; the others are recorded as skipped and told to the proposer."""
        if isinstance(self.proposer, RerunProposer):
            return proposals   # re-running the working copy is the point of this proposer
        kept: list[Proposal] = []
        for index, proposal in enumerate(proposals):
            if self.results.ended_by:   # a stop or an edit ended the loop: the rest are not asked about
                self.proposer.dropped(self.campaign, proposal)
                continue
            review = review_proposal(self.campaign, proposal, gate=self.gate, proposer=self.proposer.name)
            if review.action == "run":
                if review.similarity.kind and not review.similarity.is_repeat:
                    self.listener.message(f"note: {review.similarity.message}")
                kept.append(review.proposal)
                self.origins[id(review.proposal)] = proposal
                self.repeats = 0
                continue
            self.proposer.dropped(self.campaign, proposal)
            if review.action == "skip":
                self.skipped(review)
            elif review.action == "edit":
                if self.on_edit is not None:
                    self.on_edit(review.proposal)
                self.end("edit", f"proposal {proposal.description!r} goes to a %%experiment cell to edit; "
                                 f"the loop ends here (start it again to go on)")
            else:
                self.stop_event.set()
                self.end("stop requested", "loop stopped at the proposal" + (f": {review.reason}" if review.reason else ""))
        return kept

    def skipped(self, review) -> None:
        """Says why a proposal was not run; it counts toward --max, and repeats in a row as failures."""
        self.proposals += 1
        why = review.reason or "no reason given"
        self.listener.message(f"skipped proposal {review.proposal.description!r}: {why}")
        if review.similarity.is_repeat and self.gate is None:
            # an agent that only repeats itself would otherwise propose for ever
            self.repeats += 1
            if proposal_failed(ProposalError(f"it repeats experiment {review.similarity.experiment}"),
                               self.repeats, self.proposer, self.listener):
                self.end("proposal failures")

    def run(self, engine, batch: list[Proposal | None]) -> None:
        """Runs one batch and learns from it."""
        candidates = make_candidates(self.campaign, batch)
        done = engine.run(candidates)
        self.results.extend(done)
        for candidate in candidates:
            if candidate.proposal is not None:
                self.proposals += 1
                proposal = self.origins.pop(id(candidate.proposal), candidate.proposal)
                self.proposer.observe(self.campaign, proposal, candidate.runs[-1])
        if engine.stopped:  # a stop asked for by another process ends the loop too
            self.stop_event.set()
        if done and all(r.crash_reason.startswith("could not submit") for r in done):
            self.end("executor", f"stopping: the {engine.executor.name} executor could not start any "
                                 f"experiment ({done[0].crash_reason})")
        if self.results.ended_by:
            return
        best = self.campaign.best()
        self.listener.message(stop_state(self.campaign.config, self.campaign.attempted(),
                                         best["value"] if best else None).progress)
        if self.report_every and self.proposals and self.proposals % self.report_every < len(batch):
            self.listener.message("progress: " + progress_report(self.campaign))


def _room(campaign, slots: int, max_proposals: int | None, proposals: int) -> int:
    """Returns how many proposals the next batch may hold."""
    room = [slots]
    if max_proposals is not None:
        room.append(max_proposals - proposals)
    if campaign.config.max_experiments is not None:
        room.append(campaign.config.max_experiments - campaign.attempted())
    return max(1, min(room))


def propose_batch(proposer: Proposer, campaign, n: int, listener: CampaignListener) -> list[Proposal]:
    """Returns up to `n` proposals, each made from the current best (not from one another).

    A proposer may offer `propose_batch(campaign, n)`; otherwise `propose` is called n times. A
    proposal that leaves its edit in the working copy (files empty) is captured as content and the
    working copy put back as it was, so the next proposal starts from the same place.
    """
    if hasattr(proposer, "propose_batch"):
        return [_captured(campaign, p, None) for p in proposer.propose_batch(campaign, n)][:n]
    root, editable = campaign.paths.root, campaign.config.editable
    before = working_copy(campaign)
    proposals: list[Proposal] = []
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
            proposals.append(_captured(campaign, proposal, before))
            for path, content in before.items():
                if content is not None and working_copy(campaign)[path] != content:
                    (root / path).write_text(content)
    finally:
        for path in editable:  # an editable file a proposer created
            if before.get(path) is None and (root / path).exists():
                (root / path).unlink()
    return proposals


def _captured(campaign, proposal: Proposal, before: dict | None) -> Proposal:
    """Returns the proposal with its files filled in from the working copy when it had none."""
    allowed = set(campaign.config.editable)
    if proposal.files:
        stray = sorted(set(proposal.files) - allowed)
        if stray:
            raise CampaignError(f"an experiment may only change {', '.join(sorted(allowed))}, not {', '.join(stray)}")
        return proposal
    now = working_copy(campaign)
    lost = [p for p, text in now.items() if (before or {}).get(p) is not None and not (text or "").strip()]
    if lost:
        raise ProposalError(f"the proposal deleted or emptied {', '.join(lost)}")
    files = {p: text for p, text in now.items() if text is not None}
    return Proposal(proposal.description, files, dict(proposal.params), proposal.seed)


def progress_report(campaign) -> str:
    """Returns a one-paragraph account: best, delta to baseline, attempts, time left."""
    status = campaign.status()
    best, baseline = status["best"], status["baseline"]
    metric = status["metric"]
    parts = [f"{status['attempted']} attempted ({status['counts']['keep']} kept, "
             f"{status['counts']['discard']} discarded, {status['counts']['crash']} crashed)"]
    if best and best["value"] is not None:
        parts.append(f"best {metric} {best['value']:.6f} (experiment {best['experiment']}: {best['description']})")
        if baseline and baseline["value"] is not None:
            parts.append(f"{best['value'] - baseline['value']:+.6f} vs baseline {baseline['value']:.6f}")
    parts.append(status["stop"]["progress"])
    return "; ".join(parts)


def proposal_failed(exc: Exception, failures: int, proposer: Proposer, listener: CampaignListener) -> bool:
    """Says why a proposal failed; returns True when too many failed in a row to go on."""
    listener.message(f"proposal failed ({failures}/{MAX_PROPOSAL_FAILURES}): {exc}")
    if failures >= MAX_PROPOSAL_FAILURES:
        listener.message(f"stopping: the {proposer.name} proposer failed {failures} times in a row")
        return True
    return False


def should_end(campaign, stop_event: threading.Event, listener: CampaignListener) -> str:
    """Returns why the loop ends now ('stop rule', 'stop requested') after saying so, or ''."""
    best = campaign.best()
    state = stop_state(campaign.config, campaign.attempted(), best["value"] if best else None)
    if state.reached:
        listener.message(state.progress)
        return "stop rule"
    if stop_event.is_set() or campaign.stop_requested():   # the latter: made between two batches
        listener.message("loop stopped on request")
        return "stop requested"
    return ""
