"""The journal of a batch's runs in flight (`.autoresearch/batch.json`): results.tsv gets a batch's
rows only once it is decided, so a runner that dies mid-batch leaves its runs here, and the next
runner records them as crashes ('interrupted') instead of losing them.
"""
from __future__ import annotations

import os

from ..live import read_json, write_json_atomic
from ..results import ResultRow

JOURNAL = "batch.json"


def write_journal(campaign, launcher: str, runs: list) -> None:
    """Notes the batch's runs, so a runner that dies mid-batch leaves them to be recorded."""
    def note(run) -> dict:
        c = run.candidate
        return {"experiment": c.number, "run": run.index, "commit": c.sha, "parent": c.parent,
                "description": c.description, "started_at": run.started_at, "seed": run.seed,
                "log": os.path.relpath(run.log_path, campaign.paths.root), "job_id": run.job_id,
                "node": run.node}

    write_json_atomic(campaign.paths.state / JOURNAL, {
        "runner_pid": os.getpid(), "launcher": launcher, "runs": [note(r) for r in runs if r.candidate.sha]})


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
