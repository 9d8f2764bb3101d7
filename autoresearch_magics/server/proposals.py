"""POST /autoresearch/campaigns/<id>/proposal: run or skip the proposal a campaign is waiting on.

In approve mode the runner publishes the proposal it waits on as `waiting_proposal` in its live
state. This route writes the user's answer to `.autoresearch/decision.json` (atomically, so the
runner never reads half a file), where the runner picks it up. Besides the stop request it is
the server's only write, and like it it touches no repository and no results.
"""
from __future__ import annotations

import json
from pathlib import Path

import tornado.web

from ..core.approval import NoProposalWaiting, decide_from_outside, waiting_proposal  # noqa: F401 (the route's errors)
from ..core.paths import CampaignPaths
from .handlers import _Handler

DECISION_NAME = "decision.json"   # in the campaign's .autoresearch folder (CampaignPaths.decision)
DECISIONS = ("run", "skip")
MAX_REASON_CHARS = 2000


class BadDecision(ValueError):
    """The request body is not a decision this route accepts (400)."""


def parse_decision(body: bytes) -> dict:
    """Returns {"decision", "reason", "experiment"} from a JSON request body; raises BadDecision."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BadDecision('the body must be JSON such as {"decision": "skip", "reason": "..."}') from None
    if not isinstance(data, dict):
        raise BadDecision('the body must be a JSON object such as {"decision": "run"}')
    decision = data.get("decision")
    if decision not in DECISIONS:
        raise BadDecision(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise BadDecision("reason must be a string")
    if len(reason) > MAX_REASON_CHARS:
        raise BadDecision(f"reason is {len(reason)} characters long; keep it under {MAX_REASON_CHARS}")
    experiment = data.get("experiment")
    if experiment is not None and (isinstance(experiment, bool) or not isinstance(experiment, int)):
        raise BadDecision("experiment must be the waiting proposal's number")
    return {"decision": decision, "reason": reason.strip(), "experiment": experiment}


def decide(folder: Path, choice: dict) -> dict:
    """Writes `choice` for the waiting proposal to .autoresearch/decision.json; returns what was written."""
    record = decide_from_outside(CampaignPaths.of(folder), choice["decision"], choice["reason"], choice["experiment"])
    return {"written": True, **record}


class ProposalHandler(_Handler):
    @tornado.web.authenticated
    async def post(self, cid=None):
        """Runs or skips the waiting proposal: body {"decision": "run"|"skip", "reason": str}."""
        try:
            choice = parse_decision(self.request.body)
        except BadDecision as exc:
            self.set_status(400)
            self.finish({"message": str(exc), "reason": "BadDecision"})
            return
        await self._with_campaign(cid, decide, choice)
