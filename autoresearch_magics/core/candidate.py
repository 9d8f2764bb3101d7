"""A candidate: one experiment's content, commit, number and, once measured, its runs and verdict.

Proposals become candidates here (`make_candidates`): each is committed on top of the branch tip
without touching the working copy or the branch, numbered, given a ref, and given the diff that
front ends show when its run starts. The commits are made on a few threads while the runs
already start: a run needs the files, not the commit.
"""
from __future__ import annotations

import difflib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .events import ExperimentResult
from .keep_rules import Decision
from .ledger import experiment_ref
from .proposers import Proposal
from .status import Status

BASELINE = "baseline"
BASELINE_ATTEMPTS = 2   # a crashed baseline is run once more before proposals are judged without one


@dataclass(eq=False)
class Candidate:
    """One experiment of a batch."""

    number: int
    parent: str                          # the branch tip (the best so far) it was made from
    description: str
    files: dict[str, str]                # editable path -> content; {} for the tip itself
    sha: str = ""                        # "" while its commit is being made (see `resolve`)
    diff: str = ""                       # unified diff of the editable files against `parent`
    params: dict = field(default_factory=dict)   # sweep constants, {} otherwise
    seed: int | None = None              # every run's seed; None: the keep rule chooses
    proposal: Proposal | None = None     # None for the baseline
    commit_job: Future | None = None
    runs: list[ExperimentResult] = field(default_factory=list)
    verdict: Decision | None = None
    load_reruns: int = 0                 # runs repeated because the load made a comparison unfair

    @property
    def value(self) -> float | None:
        """Returns the mean metric over its runs, or None if one crashed or has no value (pruned)."""
        if not self.runs or any(r.status == Status.CRASH or r.metric is None for r in self.runs):
            return None
        return sum(r.metric for r in self.runs) / len(self.runs)

    @property
    def changed(self) -> bool:
        """Returns True when its content differs from its parent's."""
        return bool(self.files)

    def resolve(self, campaign) -> str:
        """Returns the candidate's commit, waiting for it if need be, and points its ref at it."""
        if not self.sha:
            self.sha = self.commit_job.result()
            campaign.ledger.set_ref(experiment_ref(campaign.config.tag, self.number), self.sha)
        return self.sha


def unified_diff(before: str, after: str, path: str, before_label: str) -> str:
    """Returns the unified diff from `before` to `after`, or '' when they are the same."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        f"a/{path} ({before_label})", f"b/{path}"))


def files_at(campaign, sha: str, paths) -> dict[str, str | None]:
    """Returns the content of `paths` at `sha` (None for a path the commit lacks)."""
    return {path: campaign.ledger.read_file_if_present(sha, path) for path in paths}


def diff_against(campaign, base_sha: str, files: dict[str, str], label: str | None = None) -> str:
    """Returns the diff of `files` against commit `base_sha` (the text front ends show)."""
    before = files_at(campaign, base_sha, files)
    label = label or base_sha[:7]
    return "".join(unified_diff(before[p] or "", text, p, label) for p, text in files.items())


def changes_tip(campaign, files: dict[str, str]) -> bool:
    """Returns True when `files` differ from the branch tip's content."""
    at_tip = files_at(campaign, campaign.ledger.tip(), files)
    return any(at_tip[p] != text for p, text in files.items())


def make_candidates(campaign, proposals: list[Proposal | None]) -> list[Candidate]:
    """Numbers each proposal (None: the tip itself, as the baseline) and starts committing it on top
    of the tip; returns the candidates at once. Touches neither the working copy nor the branch."""
    ledger, config = campaign.ledger, campaign.config
    tip = ledger.tip()
    first = campaign.next_experiment()
    at_tip = files_at(campaign, tip, {p for prop in proposals if prop for p in prop.files})
    pool = None
    jobs: dict[tuple, Future] = {}     # identical content (a re-run proposer) is one commit
    candidates = []
    for i, proposal in enumerate(proposals):
        files = {} if proposal is None else {p: t for p, t in proposal.files.items() if at_tip[p] != t}
        description = BASELINE if proposal is None else proposal.description or "experiment"
        candidate = Candidate(first + i, tip, description, dict(proposal.files) if files else {},
                              params=dict(proposal.params) if proposal else {},
                              seed=proposal.seed if proposal else None, proposal=proposal)
        if not files:
            candidate.sha = tip
            ledger.set_ref(experiment_ref(config.tag, candidate.number), tip)
        else:
            candidate.diff = "".join(unified_diff(at_tip[p] or "", t, p, tip[:7]) for p, t in files.items())
            key = tuple(sorted(candidate.files.items()))
            if key not in jobs:
                pool = pool or ThreadPoolExecutor(max_workers=min(8, len(proposals)), thread_name_prefix="commit")
                jobs[key] = pool.submit(ledger.commit_content, tip, candidate.files, description)
            candidate.commit_job = jobs[key]
        candidates.append(candidate)
    if pool is not None:
        pool.shutdown(wait=False)
    return candidates


def ran_unchanged(row: dict) -> bool | None:
    """Returns True when a results row ran its parent as it was (its commit is its parent: the baseline, a
    re-run of the tip), False when it ran a change; None for a row without a parent column (the reference
    format)."""
    parent = (row.get("parent") or "")[:7]
    if not parent:
        return None
    return (row.get("commit") or "")[:7] == parent


def baseline_keys(groups: dict[str, list[dict]]) -> list[str]:
    """Returns the keys (experiment numbers) of the baseline's attempts among `groups` (Campaign.experiments()):
    the experiments that ran the branch tip unchanged before any experiment was kept, whatever their
    description. Rows without a parent column (the reference format) can only say so by their description."""
    keys = []
    for key, rows in groups.items():
        unchanged = ran_unchanged(rows[0])
        if unchanged if unchanged is not None else rows[0].get("description") == BASELINE:
            keys.append(key)
        if any(row.get("status") == str(Status.KEEP) for row in rows):
            break   # the tip has moved on: what ran it unchanged since re-measures a kept change
    return keys


def crashed_baseline(campaign) -> list[str]:
    """Returns the baseline's crashed attempts (experiment numbers) when nothing has been measured yet and
    every attempt crashed; [] otherwise (no rows, a measured row, or no baseline attempt)."""
    rows = campaign.rows()
    if not rows or campaign.best() is not None or any(row.get("status") != str(Status.CRASH) for row in rows):
        return []
    return baseline_keys(campaign.experiments())


def needs_baseline(campaign) -> bool:
    """Returns True when the next batch should start with the baseline (the tip, unchanged): the campaign
    has no rows yet, or its baseline crashed, nothing has been measured since and the baseline has had
    fewer than BASELINE_ATTEMPTS tries. results.tsv stays as it is: the crash row stays, the new
    baseline row follows it."""
    if not campaign.rows():
        return True
    tries = crashed_baseline(campaign)
    return bool(tries) and len(tries) < BASELINE_ATTEMPTS
