"""The campaign loop: propose -> commit -> run -> decide -> log, until a stop rule holds."""
from __future__ import annotations

import threading

from .events import CampaignListener, ExperimentResult
from .experiment import run_experiment
from .keep_rules import KeepRule
from .proposers import Proposal, ProposalError, Proposer, RerunProposer
from .stop_rules import stop_state

REPORT_EVERY = 5  # experiments between progress reports
MAX_PROPOSAL_FAILURES = 3  # consecutive failed proposals (agent crash, hang, no change) end the loop


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


def should_end(campaign, stop_event: threading.Event, listener: CampaignListener) -> bool:
    """Returns True (and says why) when a stop rule holds or a stop was requested; checked before
    every launch, by the sequential and the parallel loop alike."""
    best = campaign.best()
    state = stop_state(campaign.config, campaign.attempted(), best["value"] if best else None)
    if state.reached:
        listener.message(state.progress)
        return True
    if stop_event.is_set():
        listener.message("loop stopped on request")
        return True
    return False


def run_loop(campaign, proposer: Proposer | None = None, max_proposals: int | None = None, *,
             listener: CampaignListener | None = None, stop_event: threading.Event | None = None,
             keep_rule: KeepRule | None = None, report_every: int = REPORT_EVERY) -> list[ExperimentResult]:
    """Runs experiments until a stop rule holds, `max_proposals` are done, the proposer is out of
    ideas, or a stop is requested; returns every result. Never asks for confirmation."""
    proposer = proposer or RerunProposer()
    listener = listener or CampaignListener()
    stop_event = stop_event or threading.Event()
    results: list[ExperimentResult] = []
    campaign.lock.acquire("loop")
    try:
        campaign.recover_locked()
        proposals = failures = 0
        while max_proposals is None or proposals < max_proposals:
            if should_end(campaign, stop_event, listener):
                break
            baseline_due = not campaign.rows()
            try:
                proposal = Proposal("baseline") if baseline_due else proposer.propose(campaign)
            except ProposalError as exc:
                failures += 1
                if proposal_failed(exc, failures, proposer, listener):
                    break
                continue
            failures = 0
            if proposal is None:
                listener.message(f"proposer {proposer.name} has nothing more to propose")
                break
            batch = run_experiment(campaign, proposal.description, proposal.files or None,
                                   listener=listener, stop_event=stop_event, keep_rule=keep_rule)
            results.extend(batch)
            if not baseline_due:
                proposals += 1
                proposer.observe(campaign, proposal, batch[-1])
            if batch[-1].crash_reason == "stopped by user":
                stop_event.set()
            listener.message(stop_state(campaign.config, campaign.attempted(),
                                        (campaign.best() or {}).get("value")).progress)
            if report_every and len(results) % report_every == 0:
                listener.message("progress: " + progress_report(campaign))
        return results
    finally:
        campaign.lock.release()
