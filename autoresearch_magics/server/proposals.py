"""POST /autoresearch/campaigns/<id>/proposal: run or skip the proposal a campaign is waiting on.

In approve mode the runner publishes the proposal it waits on as `waiting_proposal` in its live
state. This route writes the user's answer to `.autoresearch/decision.json` (atomically, so the
runner never reads half a file), where the runner picks it up. Besides the stop request it is
the server's only write, and like it it touches no repository and no results.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import tornado.web

from ..core.errors import CampaignError
from ..core.live import process_alive, read_json, write_json_atomic
from ..core.paths import CampaignPaths
from .handlers import _Handler

DECISION_NAME = "decision.json"   # in the campaign's .autoresearch folder (CampaignPaths.decision)
DECISIONS = ("run", "skip")
MAX_REASON_CHARS = 2000


class BadDecision(ValueError):
    """The request body is not a decision this route accepts (400)."""


class NoProposalWaiting(CampaignError):
    """The campaign waits on no proposal, or on another one than the client saw (409)."""


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


def waiting_proposal(paths: CampaignPaths) -> dict | None:
    """Returns the proposal the campaign's live runner waits on, or None."""
    state = read_json(paths.live) or {}
    proposal = state.get("waiting_proposal")
    if not isinstance(proposal, dict) or not process_alive(state.get("runner_pid")):
        return None
    return proposal


def decide(folder: Path, choice: dict) -> dict:
    """Writes `choice` for the waiting proposal to .autoresearch/decision.json; returns what was written."""
    paths = CampaignPaths.of(folder)
    proposal = waiting_proposal(paths)
    if proposal is None:
        raise NoProposalWaiting("the campaign is not waiting on a proposal: nothing to run or skip")
    number = proposal.get("experiment")
    if choice["experiment"] is not None and choice["experiment"] != number:
        raise NoProposalWaiting(f"proposal #{choice['experiment']} is no longer waiting (#{number} is): "
                                "refresh and decide again")
    record = {"experiment": number, "decision": choice["decision"], "reason": choice["reason"],
              "decided_at": time.time()}
    write_json_atomic(paths.decision, record)
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
