"""What happens to a proposal before it runs: compared with what was tried, then (in approve mode)
shown and decided on. The loop calls `review_proposal` once per proposal and acts on the answer.

Without a gate, an exact repeat of an earlier experiment is skipped (recorded with its reason) and
anything else runs. With a gate, every proposal waits for run / edit / skip / stop; running an
exact repeat is then the user's explicit approval of a repeat.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from .approval import ApprovalGate, ProposalInfo
from .notes import record_skip
from .proposers import Proposal
from .tried import NEW, Similarity, TriedMemory, content_digest

EDIT_IN_CELL_REASON = "taken to a %%experiment cell to edit by hand"


@dataclass(frozen=True)
class Review:
    """The loop's instruction for one proposal: `action` is "run" (run `proposal`), "skip" (already
    recorded; ask for the next one), "edit" (give `proposal` to the front end as a %%experiment cell)
    or "stop" (end the loop)."""

    action: str
    proposal: Proposal
    similarity: Similarity = NEW
    reason: str = ""


def proposal_diff(current: dict, proposed: dict) -> str:
    """Returns the unified diff from the current editable files to the proposal's."""
    out = []
    for path in sorted(proposed):
        before, after = current.get(path) or "", proposed[path] or ""
        out.extend(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def review_proposal(campaign, proposal: Proposal, *, gate: ApprovalGate | None = None,
                    proposer: str = "") -> Review:
    """Returns what the loop does with `proposal`; records it as skipped when it is not run."""
    memory = TriedMemory(campaign)
    current = memory.working_files()
    similarity = memory.check(proposal.files, base=current)
    candidate = {**current, **(proposal.files or {})}
    number = campaign.next_experiment()
    diff = proposal_diff(current, proposal.files or {})

    def skipped(reason: str, source: str, action: str = "skip") -> Review:
        record_skip(campaign.paths, proposal.description, reason, experiment=number, source=source,
                    digest=content_digest(candidate), diff=diff, repeat_of=similarity.experiment
                    if similarity.is_repeat else None, proposer=proposer)
        return Review(action, proposal, similarity, reason)

    if gate is None:
        if similarity.is_repeat:
            return skipped(similarity.message, "repeat")
        return Review("run", proposal, similarity)
    info = ProposalInfo(number, proposal.description, diff, dict(proposal.files or {}),
                        similarity.as_dict() if similarity.kind else None, proposer, campaign.config.budget_s)
    decision = gate.ask(info)
    if decision.choice == "run":
        if similarity.is_repeat:
            proposal = replace(proposal, description=f"{proposal.description} (approved repeat of "
                                                     f"experiment {similarity.experiment})")
        return Review("run", proposal, similarity, decision.reason)
    if decision.choice == "edit" and decision.files:
        edited = replace(proposal, description=f"{proposal.description} (edited)", files=decision.files)
        return Review("run", edited, similarity, decision.reason)
    if decision.choice == "edit":
        return skipped(EDIT_IN_CELL_REASON, "user", action="edit")
    if decision.choice == "skip":
        return skipped(decision.reason, "timeout" if decision.source == "timeout" else "user")
    return Review("stop", proposal, similarity, decision.reason)
