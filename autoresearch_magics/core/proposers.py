"""Proposers: where the next experiment's train.py comes from.

A proposal is new content for the editable files plus a one-line description. The loop
asks a proposer once per experiment; None means it has nothing more to propose.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CampaignError, ProposalError

__all__ = ["PROPOSERS", "Proposal", "ProposalError", "Proposer", "RerunProposer", "make_proposer"]


@dataclass
class Proposal:
    """New content for editable files (path -> text; empty = run the working copy as it is)."""

    description: str
    files: dict[str, str] = field(default_factory=dict)
    params: dict = field(default_factory=dict)   # the constants a sweep set (name -> value), shown with the diff
    seed: int | None = None                       # every run's seed; None: the keep rule chooses


class Proposer:
    """Base of all proposers."""

    name = "base"

    def propose(self, campaign) -> Proposal | None:
        """Returns the next proposal, or None when there is nothing left to try; raises ProposalError
        when this attempt failed."""
        raise NotImplementedError

    def dropped(self, campaign, proposal: Proposal) -> None:
        """Called for a proposal that will not run (skipped, a repeat, or the loop ended first)."""

    def observe(self, campaign, proposal: Proposal, result) -> None:
        """Learns the outcome of a proposal (a sweep reports it to its study). Default: nothing."""


class RerunProposer(Proposer):
    """Runs the working copy as it is, each time (a noise measurement, or a manual loop)."""

    name = "rerun"

    def __init__(self, description: str = "re-run current train.py") -> None:
        self.description = description

    def propose(self, campaign) -> Proposal | None:
        return Proposal(self.description)


PROPOSERS = ("rerun", "sweep", "agent")


def make_proposer(campaign, kind: str = "rerun", *, agent_cmd: str | None = None, agent_timeout_s=None,
                  space: str | None = None, sampler: str = "tpe", message: str | None = None) -> Proposer:
    """Returns the proposer a front end asked for; raises CampaignError naming what is missing."""
    if kind == "rerun":
        return RerunProposer(message or "re-run current train.py")
    if kind == "sweep":
        if not space:
            raise CampaignError('the sweep proposer needs --space, e.g. --space "LR=loguniform(1e-4,1e-2) DEPTH=int(2,8)"')
        from .sweep import SweepProposer
        return SweepProposer(campaign, space, sampler)
    if kind == "agent":
        if not agent_cmd:
            raise CampaignError("the agent proposer needs --agent-cmd, the command of a coding agent that edits "
                                "train.py given a prompt (file in $AUTORESEARCH_PROMPT_FILE, also on stdin)")
        from .agent import DEFAULT_AGENT_TIMEOUT_S, AgentProposer
        from .curves import campaign_curve_summary
        # the prompt gets the best and last runs' curves (loss at shares of the budget, steps, throughput)
        return AgentProposer(agent_cmd, agent_timeout_s or DEFAULT_AGENT_TIMEOUT_S,
                             curve_summary=campaign_curve_summary)
    raise CampaignError(f"unknown proposer {kind!r}: use one of {', '.join(PROPOSERS)}")
