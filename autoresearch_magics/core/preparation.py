"""One-time preparation of a campaign (a template's data, a checkout's `prepare.py`): not an experiment.

`init` runs the campaign's `prepare_command` once, before the first experiment, in the campaign
folder with the environment a run gets (AUTORESEARCH_DATA_DIR above all), its output streamed to
the listener as messages and written to .autoresearch/prepare.log. Success is recorded in
.autoresearch/prepared.json with the command, so a second `init` does not run it again while an
interrupted or failed one (no record) runs again; the command itself must be safe to repeat.
Its limit is PREPARE_TIMEOUT_S, apart from any run's timeout.
"""
from __future__ import annotations

import json
import os
import sys
import time

from .config import ENV_BUDGET, ENV_DATA_DIR, now_utc
from .errors import CampaignError
from .events import CampaignListener
from .runner import RunListener, RunSpec, run

PREPARE_TIMEOUT_S = 1800.0
MESSAGE_EVERY_S = 0.5   # a progress line rewritten in place is passed on at most this often


def prepared_path(paths):
    return paths.state / "prepared.json"


def is_prepared(campaign) -> bool:
    """Returns True when the campaign's preparation command has run to completion (or there is none)."""
    command = campaign.config.prepare_command.strip()
    if not command:
        return True
    try:
        record = json.loads(prepared_path(campaign.paths).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("command") == command


def prepare(campaign, listener: CampaignListener | None = None) -> bool:
    """Runs the campaign's preparation unless it is done; returns True when it ran. Raises CampaignError
    naming the command and its log when it fails."""
    if is_prepared(campaign):
        return False
    listener = listener or CampaignListener()
    config, paths = campaign.config, campaign.paths
    command = config.prepare_command.strip()
    paths.data.mkdir(parents=True, exist_ok=True)
    log_path = paths.state / "prepare.log"
    env = {ENV_BUDGET: f"{config.budget_s:g}", ENV_DATA_DIR: str(paths.data),
           # `python` means this interpreter, as for a run
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    listener.message(f"preparing the campaign once: `{command}` (log {log_path})")
    started = time.monotonic()
    outcome = run(RunSpec(command=command, cwd=str(paths.root), log_path=str(log_path), env=env,
                          timeout_s=PREPARE_TIMEOUT_S), _Relay(listener))
    seconds = time.monotonic() - started
    if outcome.timed_out or outcome.stopped or outcome.returncode != 0:
        why = (f"it did not finish within {PREPARE_TIMEOUT_S:g}s" if outcome.timed_out
               else "it was stopped" if outcome.stopped else f"it exited with code {outcome.returncode}")
        last = next((line.strip() for line in reversed(outcome.tail) if line.strip()), "")
        raise CampaignError(f"preparation `{command}` failed: {why}{': ' + last[:200] if last else ''}. "
                            f"Read {log_path}, fix it and run init again (it resumes the preparation)")
    prepared_path(paths).write_text(json.dumps({"command": command, "at": now_utc().isoformat(),
                                                "seconds": round(seconds, 1)}) + "\n")
    listener.message(f"preparation done in {seconds:.0f}s")
    return True


class _Relay(RunListener):
    """Passes the preparation's output lines on as listener messages (rewritten lines thinned)."""

    def __init__(self, listener: CampaignListener) -> None:
        self.listener = listener
        self.next_at = 0.0

    def lines(self, lines: list[str]) -> None:
        shown = [line for line in lines if line.strip()]
        now = time.monotonic()
        if not shown or (now < self.next_at and len(shown) == 1):
            return
        self.next_at = now + MESSAGE_EVERY_S
        for line in shown[-20:]:
            self.listener.message(f"  {line.rstrip()}")
