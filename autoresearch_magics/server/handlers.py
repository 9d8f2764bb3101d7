"""HTTP routes under /autoresearch. Thin: check the id, call payloads in a worker thread, send JSON.

The root campaign (the server root itself) has id "." and its routes drop the id segment,
e.g. /autoresearch/campaigns/status, because browsers collapse "./" in URLs.
"""
from __future__ import annotations

import asyncio
import json

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..core.errors import CampaignError, MalformedResults
from . import payloads
from .discovery import UnknownCampaign, UnsafeCampaignId, list_campaigns, resolve_campaign

# (error class, HTTP status); checked in order, so subclasses come first
_ERRORS = (
    (UnsafeCampaignId, 400),
    (UnknownCampaign, 404),
    (payloads.ExperimentNotFound, 404),
    (payloads.LogOutsideRoot, 403),
    (MalformedResults, 422),
    (CampaignError, 409),
)


class _Handler(APIHandler):
    @property
    def server_root(self) -> str:
        return self.settings["server_root_dir"]

    async def _reply(self, fn, *args) -> None:
        """Runs `fn(*args)` off the event loop and finishes with its JSON, or with a 4xx naming the problem."""
        try:
            data = await asyncio.to_thread(fn, *args)
        except tuple(cls for cls, _ in _ERRORS) as exc:
            code = next(code for cls, code in _ERRORS if isinstance(exc, cls))
            # written here rather than raised: jupyter_server would print the message as a format string
            self.log.warning("autoresearch %s %s: %s", code, self.request.path, exc)
            self.set_status(code)
            self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))
            return
        self.finish(json.dumps(data, default=str))

    async def _with_campaign(self, cid, fn, *args) -> None:
        def call():
            return fn(resolve_campaign(self.server_root, cid), *args)
        await self._reply(call)


class CampaignsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self):
        """Lists the campaigns under the server root."""
        await self._reply(lambda: {"campaigns": list_campaigns(self.server_root)})


class StatusHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, cid=None):
        """Objective, stop rules, best, baseline, latest and the running experiment."""
        await self._with_campaign(cid, payloads.status, self.server_root)


class ResultsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, cid=None):
        """results.tsv as columns and rows."""
        await self._with_campaign(cid, payloads.results, self.server_root)


class ExperimentHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, cid=None, number="0"):
        """One experiment's diff and log tail (?lines=N, bounded)."""
        try:
            lines = int(self.get_query_argument("lines", str(payloads.DEFAULT_TAIL_LINES)))
        except ValueError:
            raise tornado.web.HTTPError(400, "lines must be an integer") from None
        await self._with_campaign(cid, payloads.experiment, self.server_root, int(number), lines)


class StopHandler(_Handler):
    @tornado.web.authenticated
    async def post(self, cid=None):
        """Signals the campaign's runner to stop its running experiment; changes no repository."""
        await self._with_campaign(cid, payloads.request_stop)


_ID = r"(?:/(?P<cid>.+))?"  # optional: absent for the root campaign


def routes(base_url: str) -> list[tuple]:
    """Returns the (pattern, handler) pairs under `base_url`."""
    from . import curves, proposals  # imported here: their handlers build on this module's _Handler
    def at(path):
        return url_path_join(base_url, "autoresearch", path)
    return [
        (at(r"campaigns/?"), CampaignsHandler),
        (at(rf"campaigns{_ID}/status"), StatusHandler),
        (at(rf"campaigns{_ID}/results"), ResultsHandler),
        (at(rf"campaigns{_ID}/experiments/(?P<number>\d+)"), ExperimentHandler),
        (at(rf"campaigns{_ID}/stop"), StopHandler),
        (at(rf"campaigns{_ID}/experiments/(?P<number>\d+)/curve"), curves.CurveHandler),
        (at(rf"campaigns{_ID}/proposal"), proposals.ProposalHandler),
    ]


def setup_handlers(web_app) -> None:
    """Adds the routes to the server's application."""
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
