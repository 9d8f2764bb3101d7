"""GET /autoresearch/campaigns/<id>/experiments/<n>/curve: one run's loss curve beside the best's.

The curves come from the core's `campaign_curves` (one long DataFrame: experiment, run, step,
training_seconds, loss, ...). `curve_payload` turns such a frame into what the sidebar draws,
so it is tested without a server. Both curves are put on one axis, training seconds, so the
sidebar compares them at equal training time whatever wall time each run took.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import tornado.web

from ..core.campaign import Campaign
from ..core.live import read_live
from .handlers import _Handler
from .payloads import ExperimentNotFound

MAX_POINTS = 400   # per curve sent to the browser; a longer curve is thinned evenly
CURVES_MODULE = "autoresearch_magics.core.curves"
UNAVAILABLE = ("learning curves are not available in this installation of autoresearch-magics "
               "(it has no autoresearch_magics.core.curves): upgrade the package to a version that records them")


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _thin(points: list[dict], limit: int) -> list[dict]:
    """Returns at most `limit` points evenly spread over `points`, the last one always kept."""
    if len(points) <= limit:
        return points
    stride = len(points) / (limit - 1)
    picked = [points[int(i * stride)] for i in range(limit - 1)]
    return picked + [points[-1]]


def _series(frame, experiment: int, limit: int) -> tuple[int | None, list[dict]]:
    """Returns (run, points) of the latest run of `experiment` that has loss points at known training times."""
    rows = frame[(frame["experiment"] == experiment) & frame["loss"].notna() & frame["training_seconds"].notna()]
    if rows.empty:
        return None, []
    run = int(rows["run"].max()) if rows["run"].notna().any() else None
    if run is not None:
        rows = rows[rows["run"] == run]
    rows = rows.sort_values("training_seconds", kind="stable")
    points = [{"training_seconds": float(r.training_seconds), "step": _number(r.step), "loss": float(r.loss)}
              for r in rows.itertuples(index=False)]
    return run, _thin(points, limit)


def curve_payload(frame, experiment: int, best: int | None, limit: int = MAX_POINTS) -> dict:
    """Returns experiment `experiment`'s loss curve and, when another experiment is the best, the best's.

    `frame` is a long curve DataFrame (columns experiment, run, step, training_seconds, loss);
    each curve is the experiment's latest run, ordered by training time, at most `limit` points.
    """
    run, points = _series(frame, experiment, limit)
    out = {"experiment": experiment, "run": run, "points": points, "best": None}
    if best is not None and best != experiment:
        best_run, best_points = _series(frame, best, limit)
        out["best"] = {"experiment": best, "run": best_run, "points": best_points}
    return out


def curve_reader():
    """Returns the core's `campaign_curves`, or None when this installation has no curve module."""
    try:
        return importlib.import_module(CURVES_MODULE).campaign_curves
    except ModuleNotFoundError as exc:
        if exc.name != CURVES_MODULE:
            raise  # the module exists but something it needs is missing: a real error
        return None


def curve(folder: Path, number: int) -> dict:
    """Returns the curve payload of experiment `number` of the campaign in `folder`."""
    campaign = Campaign.open(folder)
    live = read_live(campaign.paths) or {}
    known = str(number) in campaign.experiments() or live.get("experiment") == number
    if not known:
        raise ExperimentNotFound(f"no experiment {number} in campaign {campaign.config.tag}: "
                                 "GET .../results lists the experiments")
    best = campaign.best()
    best_number = _number(best.get("key")) if best else None
    wanted = [number] + ([best_number] if best_number is not None else [])
    frame = curve_reader()(campaign, wanted)
    return curve_payload(frame, number, best_number)


class CurveHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, cid=None, number="0"):
        """The loss curve of one experiment's latest run and of the best experiment's, by training time."""
        if curve_reader() is None:
            self.set_status(501)
            self.finish({"message": UNAVAILABLE, "reason": "CurvesUnavailable"})
            return
        await self._with_campaign(cid, curve, int(number))
