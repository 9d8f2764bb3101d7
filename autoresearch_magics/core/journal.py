"""The journal of the runs in flight (`.autoresearch/current.json`).

results.tsv gets a batch's rows only once the batch is decided, so until then the journal lists
its runs; a runner that dies leaves them here and the next runner records them as crashes
('interrupted') instead of losing them. When a run uses the working copy, the journal also holds
what the engine wrote there, so recovery can tell the engine's content from the user's.

A run whose cluster job outlives its runner (Slurm) carries `task` in its note: where the job
can be found later (`Handle.journal`). Notes without it, from any earlier version, still read.
"""
from __future__ import annotations

import hashlib
import os

from .live import read_json, write_json_atomic


def digest(text: str | bytes | None) -> str | None:
    """Returns a short fingerprint of a file's content (None for a missing file)."""
    if text is None:
        return None
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def write_journal(campaign, launcher: str, notes: list[dict], working_copy: dict | None) -> None:
    """Notes the runs in flight and what the working copy holds (see module doc)."""
    write_json_atomic(campaign.paths.current, {"runner_pid": os.getpid(), "launcher": launcher,
                                               "runs": notes, "working_copy": working_copy})


def read_journal(campaign) -> dict | None:
    """Returns the journal a runner left, in the current form (older single-run records converted)."""
    journal = read_json(campaign.paths.current)
    if journal is None or "runs" in journal:
        return journal
    if "experiment" not in journal:
        return None
    # one experiment run in place on a branch already moved to its commit
    note = {k: journal.get(k) for k in ("experiment", "run", "commit", "parent", "description", "started_at",
                                        "seed", "log", "child_pid", "child_started")}
    note["run"] = note["run"] or 1
    return {"runner_pid": journal.get("runner_pid"), "launcher": journal.get("launcher", "local"),
            "runs": [] if journal.get("recorded") else [note], "legacy_branch_moved": not journal.get("kept"),
            "working_copy": {"experiment": journal["experiment"], "commit": journal["commit"],
                             "parent": journal["parent"], "files": None}}


def clear_journal(campaign) -> None:
    """Removes the journal once every run in it is recorded."""
    campaign.paths.current.unlink(missing_ok=True)
