"""Proposers: where the next experiment's train.py comes from.

A proposal is new content for the editable files plus a one-line description. The loop
asks a proposer once per experiment; None means it has nothing more to propose.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Proposal:
    """New content for editable files (path -> text; empty = run the working copy as it is)."""

    description: str
    files: dict[str, str] = field(default_factory=dict)


class Proposer:
    """Base of all proposers."""

    name = "base"

    def propose(self, campaign) -> Proposal | None:
        """Returns the next proposal, or None when there is nothing left to try."""
        raise NotImplementedError

    def observe(self, campaign, proposal: Proposal, result) -> None:
        """Learns the outcome of a proposal (a sweep reports it to its study). Default: nothing."""


class RerunProposer(Proposer):
    """Runs the working copy as it is, each time (a noise measurement, or a manual loop)."""

    name = "rerun"

    def __init__(self, description: str = "re-run current train.py") -> None:
        self.description = description

    def propose(self, campaign) -> Proposal | None:
        return Proposal(self.description)
