"""One experiment (`run`, `%%experiment`): a batch of one through the engine.

Follow one experiment: `run_experiment` turns the request into a proposal (the working copy, the
given files, or a patch applied to the best train.py when the run starts), `candidate.make_candidates`
commits and numbers it, `engine.Engine.run` runs, judges and records it (`outcome.row_for` builds
the results.tsv row), and moves the branch.
"""
from __future__ import annotations

import threading

from .candidate import BASELINE_ATTEMPTS, changes_tip, crashed_baseline, make_candidates, needs_baseline
from .errors import CampaignError
from .events import CampaignListener, ExperimentResult
from .keep_rules import KeepRule
from .loop import runner
from .patch import apply_patch
from .proposers import Proposal
from .working_copy import working_copy


def run_experiment(campaign, description: str, files: dict[str, str] | None = None, *, patch: str | None = None,
                   seed: int | None = None, listener: CampaignListener | None = None,
                   stop_event: threading.Event | None = None, keep_rule: KeepRule | None = None,
                   executor=None) -> list[ExperimentResult]:
    """Runs one experiment, preceded by the baseline (the tip, unchanged) when the experiment changes
    train.py and the campaign has no baseline yet: none ran, or it crashed and has had fewer than
    BASELINE_ATTEMPTS tries, as in the loop (candidate.needs_baseline). Returns the results.

    The content is `files` (editable path -> text), else `patch` (a unified diff applied to the best
    train.py now), else the working copy as it is.
    """
    listener = listener or CampaignListener()
    with runner(campaign, "run", listener, executor, 1, stop_event, keep_rule) as engine:
        _check_paths(campaign, files or {})
        proposal = Proposal(description, dict(files or {}) or _content(campaign, patch), seed=seed)
        results: list[ExperimentResult] = []
        if changes_tip(campaign, proposal.files):
            results += _baseline_first(campaign, engine, listener)
            if engine.stopped or campaign.stop_requested():   # a stop made as the baseline ended
                return results
        return results + engine.run(make_candidates(campaign, [proposal]))


def _baseline_first(campaign, engine, listener: CampaignListener) -> list[ExperimentResult]:
    """Runs the unchanged tip first when the campaign needs its baseline, so a change has a real value to
    beat; says so when a crashed baseline is run again, or why it is not. Returns its results."""
    crashed = crashed_baseline(campaign)
    numbers = ", ".join(f"#{key}" for key in crashed)
    if needs_baseline(campaign):
        if crashed:
            listener.message(f"the baseline crashed ({numbers}): running it again first, as the baseline, so "
                             f"this experiment is judged against a real value")
        return engine.run(make_candidates(campaign, [None]))
    if crashed:
        listener.message(f"the baseline crashed {len(crashed)} time(s) ({numbers}; at most {BASELINE_ATTEMPTS} "
                         f"tries): this experiment runs without one, and its result becomes the first to beat. "
                         f"`autoresearch show {crashed[-1]}` prints the crash's log")
    return []


def _check_paths(campaign, files: dict[str, str]) -> None:
    allowed = set(campaign.config.editable)
    stray = sorted(set(files) - allowed)
    if stray:
        raise CampaignError(f"an experiment may only change {', '.join(sorted(allowed))}, not {', '.join(stray)}")


def _content(campaign, patch: str | None) -> dict[str, str]:
    """Returns the experiment's files: the patch applied to the tip's train.py, or the working copy."""
    editable = campaign.config.editable
    if patch is not None:
        base = campaign.ledger.read_file("HEAD", editable[0])
        return {editable[0]: apply_patch(base if base.endswith("\n") else base + "\n", patch, editable[0])}
    now = working_copy(campaign)
    missing = [p for p, text in now.items() if text is None]
    if missing == list(editable):
        raise CampaignError(f"{', '.join(missing)} is missing from {campaign.paths.root}: restore it with "
                            f"`git checkout -- {missing[0]}`")
    return {p: text for p, text in now.items() if text is not None}
