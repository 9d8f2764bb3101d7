"""Recovering from a runner that died mid-experiment (a killed kernel, a closed terminal)."""
from __future__ import annotations

from .live import process_alive, read_json, write_json_atomic
from .results import ResultRow
from .runner import kill_process_tree


def recover_interrupted(campaign) -> dict | None:
    """Kills the dead runner's orphaned children, records the run as a crash ('interrupted')
    unless its row was already written, and moves the branch back; returns the record."""
    paths, config, ledger = campaign.paths, campaign.config, campaign.ledger
    record = read_json(paths.current)
    if record is None:
        paths.current.unlink(missing_ok=True)
        return None
    child = record.get("child_pid")
    if child and process_alive(child, record.get("child_started")):
        kill_process_tree(child)
    if not record.get("recorded"):
        for done in record.get("pending", []):  # finished runs whose verdict never came
            extra = {k: v for k, v in done.items() if k not in ("commit", config.metric, "memory_gb", "status",
                                                                "description")}
            extra["evidence"] = "interrupted before the verdict"
            campaign.results.append(ResultRow(done["commit"], done[config.metric], done["memory_gb"], "discard",
                                              done["description"], extra))
        campaign.results.append(ResultRow(
            commit=record["commit"], metric=None, memory_gb=0.0, status="crash",
            description=record.get("description", ""),
            extra={"experiment": record["experiment"], "run": record.get("run", 1),
                   "parent": record["parent"][:7], "branch": config.branch,
                   "started_at": record.get("started_at", ""), "crash_reason": "interrupted",
                   "seed": record.get("seed"), "log": record.get("log", ""), "command": config.command,
                   "launcher": record.get("launcher", "local")}))
        record["recorded"] = True
        write_json_atomic(paths.current, record)
    if not record.get("kept") and ledger.current_branch() == config.branch and \
            ledger.tip() == record["commit"] and record["commit"] != record["parent"]:
        ledger.revert_to(record["parent"], config.editable)
    live = read_json(paths.live)
    if live and live.get("state") == "running":
        live.update(state="finished", outcome={"status": "crash", "crash_reason": "interrupted"})
        write_json_atomic(paths.live, live)
    paths.current.unlink(missing_ok=True)
    paths.stop_request.unlink(missing_ok=True)
    return record
