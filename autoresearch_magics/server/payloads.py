"""What each route answers, as plain data built from the core's read-only API.

Opening a campaign changes nothing: serving a page never records,
commits or reverts anything.
"""
from __future__ import annotations

from pathlib import Path

from ..core.campaign import Campaign
from ..core.errors import CampaignError
from ..core.paths import SUMMARY_NAME
from ..core.phases import live_progress
from .discovery import campaign_id, inside_root

REPORT_NAME = SUMMARY_NAME
MAX_DIFF_CHARS = 200_000   # a diff longer than this is cut; the sidebar says so
MAX_TAIL_LINES = 400       # log lines one request may ask for
DEFAULT_TAIL_LINES = 60


class ExperimentNotFound(CampaignError):
    """The campaign has no experiment with that number (404)."""


class LogOutsideRoot(CampaignError):
    """The results row points the experiment's log outside the server root (403)."""


def _open(folder: Path) -> Campaign:
    return Campaign.open(folder)


def status(folder: Path, server_root) -> dict:
    """Returns Campaign.status() plus the id, the best's delta to the baseline, whether the report exists,
    and the running run's `progress` (phases.live_progress: the rule the notebook panel shows too)."""
    campaign = _open(folder)
    out = campaign.status()
    running = out.get("running")
    if running:
        running["progress"] = live_progress(running)
        for run in running.get("parallel") or []:
            run["progress"] = live_progress(run)
    best, baseline = out.get("best"), out.get("baseline")
    out["delta"] = (best["value"] - baseline["value"]
                    if best and baseline and best["value"] is not None and baseline["value"] is not None
                    else None)
    out["id"] = campaign_id(folder, server_root)
    report = campaign.paths.root / REPORT_NAME
    out["report"] = {"name": REPORT_NAME, "exists": report.is_file() and inside_root(report, server_root)}
    return out


def results(folder: Path, server_root) -> dict:
    """Returns the results table: the header as columns, every row as text, metric and direction."""
    campaign = _open(folder)
    return {"id": campaign_id(folder, server_root), "metric": campaign.config.metric,
            "direction": campaign.config.direction, "columns": campaign.results.header(),
            "rows": campaign.rows()}


def _log_path(campaign: Campaign, number: int) -> Path:
    """Returns where experiment `number`'s log is, as show() will look for it."""
    rows = [r for r in campaign.rows() if r.get("experiment") == str(number)]
    path = Path((rows[-1].get("log") if rows else "") or campaign.paths.log_for(number))
    return path if path.is_absolute() else campaign.paths.root / path


def experiment(folder: Path, server_root, number: int, lines: int = DEFAULT_TAIL_LINES) -> dict:
    """Returns one experiment's row, its diff (cut at MAX_DIFF_CHARS) and the last `lines` log lines."""
    campaign = _open(folder)
    if not inside_root(_log_path(campaign, number), server_root):
        raise LogOutsideRoot(f"experiment {number}'s log path points outside the server root; it is not read")
    try:
        detail = campaign.show(number, tail_lines=max(1, min(int(lines), MAX_TAIL_LINES)))
    except CampaignError as exc:
        raise ExperimentNotFound(str(exc)) from None
    diff = detail["diff"] or ""
    detail["diff_truncated"] = len(diff) > MAX_DIFF_CHARS
    detail["diff"] = diff[:MAX_DIFF_CHARS]
    log = Path(detail["log_path"])
    detail["log_path"] = log.relative_to(campaign.paths.root).as_posix() if log.is_relative_to(
        campaign.paths.root) else log.name
    detail["id"] = campaign_id(folder, server_root)
    return detail


def request_stop(folder: Path) -> dict:
    """Asks the campaign's runner to stop; returns whether an experiment was running to be stopped."""
    return {"requested": _open(folder).request_stop()}
