"""Early stopping of hopeless runs: compare a running curve with the best run's at equal training time.

The rule, checked at each new point of the running curve (training time t, budget B):

- never before `min_fraction` of the budget, nor during the run's warm-up, nor after
  `max_fraction` (little is left to save). The warm-up is read from the run's own `lrm` field (the
  learning-rate multiplier of the reference progress line): it lasts while lrm rises towards its
  peak, until it reaches `warm_lrm` or starts to fall; a run that prints no lrm is taken to warm
  up for `warmup_fraction` of the budget. An edit that lengthens the warm-up is judged after it;
- values are smoothed: a curve's value at t is the mean of its points in the window
  (t - window_fraction * B, t]; the running curve needs `min_points` points in that window;
- the best's value at t is the mean over the best experiment's runs (its repeats);
- the run-to-run spread at t is the pooled standard deviation, at t, of the curves of every
  experiment run more than once (the best's repeats included), shrunk towards the default
  (`default_spread` times the best's value) as if the default were worth `prior_df` degrees of
  freedom: sqrt((df * pooled^2 + prior_df * default^2) / (df + prior_df)). Until repeats exist it
  is the default;
- the run is stopped when it is behind the best by more than
      spread_factor * spread + allowance(t) * (best's value at t - best's value at its end).
  The second term lets a slow starter catch up. With the default allowance (catch_up = 0.75) a run
  is stopped only when, to end level with the best, it would have to gain more than 1.75 times what
  the best gained over the rest of its run (plus the noise term): early on, when the best still had
  much to gain, a run must be far behind; near the end the spread alone decides;
- the allowance is learned from the campaign's own finished runs once `min_finished` of them ran
  to the end: how much of the best's remaining gain each made up from t to its end,
      ((run(t) - best(t)) - (run's end - best's end)) / (best(t) - best's end),
  the largest of them times `catch_up_safety`, never below `catch_up_floor` nor above catch_up.
  Where runs do recover late (slow starters), it stays at catch_up; where no run ever made up
  much, hopeless runs are stopped sooner.

Curves are lower-is-better in the judged column (`loss` by default), whatever the campaign's
metric direction. A pruned run is a discard whose evidence says where and by how much.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PruneSettings:
    """The pruning rule's knobs (shares of the budget unless said otherwise)."""

    min_fraction: float = 0.1      # never prune before this share of the budget
    warmup_fraction: float = 0.1   # nor during the warm-up, when the run prints no lrm
    warm_lrm: float = 0.99         # the learning-rate multiplier at which a warm-up is over
    max_fraction: float = 0.95     # nor after this share (little left to save)
    window_fraction: float = 0.05  # smoothing window
    min_points: int = 3            # points of the running curve needed in the window
    spread_factor: float = 3.0     # how many run-to-run standard deviations behind
    default_spread: float = 0.02   # spread until repeats exist, as a share of the best's value
    prior_df: float = 3.0          # weight of the default against measured spread (degrees of freedom)
    catch_up: float = 0.75         # the best's remaining gain a run may still make up, as a multiple
    min_finished: int = 6          # finished runs needed before the allowance is learned (0: never)
    catch_up_safety: float = 1.5   # learned allowance: this times the largest catch-up seen
    catch_up_floor: float = 0.2    # learned allowance: never below this
    column: str = "loss"           # the judged field, lower is better


@dataclass
class PruneDecision:
    """Why a run was stopped: where, its value, the best's, the spread and the gap it needed."""

    fraction: float
    value: float
    best_value: float
    spread: float
    margin: float
    column: str = "loss"
    evidence: str = field(init=False)

    def __post_init__(self) -> None:
        self.evidence = (f"pruned at {self.fraction:.0%} of the budget: {self.column} {self.value:.4g} against "
                         f"the best's {self.best_value:.4g}, spread {self.spread:.2g} "
                         f"(stopped when behind by more than {self.margin:.2g})")

    def verdict(self):
        """Returns the keep-rule Decision of a pruned run: a discard with this evidence."""
        from .keep_rules import Decision
        return Decision("discard", self.evidence)


class _WarmUp:
    """Follows a run's learning-rate multiplier: the warm-up lasts while it rises towards its peak."""

    def __init__(self, warm_lrm: float) -> None:
        self.warm_lrm = warm_lrm
        self.peak: float | None = None    # None until the run prints an lrm
        self.over = False

    def see(self, lrm) -> None:
        if self.over or not _finite(lrm):
            return
        if lrm >= self.warm_lrm or (self.peak is not None and lrm < self.peak):
            self.over = True
        self.peak = max(lrm, self.peak if self.peak is not None else lrm)


class _Curve:
    """One curve as sorted arrays, with windowed means in O(log n), and where its warm-up ended."""

    def __init__(self, points, column: str, budget_s: float, warm_lrm: float = 0.99) -> None:
        t, y = [], []
        warm_up = _WarmUp(warm_lrm)
        self.warm_end = 0.0               # training seconds (0 when the run printed no lrm)
        for p in _records(points):
            value, seconds = p.get(column), _seconds(p, budget_s)
            if not warm_up.over:
                warm_up.see(p.get("lrm"))
                if _finite(seconds):
                    self.warm_end = float(seconds)
            if _finite(value) and _finite(seconds):
                t.append(float(seconds))
                y.append(float(value))
        if warm_up.peak is None:
            self.warm_end = 0.0
        order = np.argsort(t, kind="stable")
        self.t = np.asarray(t, dtype=float)[order]
        self.y = np.asarray(y, dtype=float)[order]
        self.sums = np.concatenate([[0.0], np.cumsum(self.y)])

    @property
    def end(self) -> float:
        return float(self.t[-1]) if len(self.t) else -math.inf

    def mean(self, lo: float, hi: float) -> tuple[float | None, int]:
        """Returns (mean of the values with lo < t <= hi, how many), or (the last value before hi, 0)."""
        a, b = np.searchsorted(self.t, lo, side="right"), np.searchsorted(self.t, hi, side="right")
        if b > a:
            return float((self.sums[b] - self.sums[a]) / (b - a)), int(b - a)
        return (float(self.y[b - 1]), 0) if b > 0 else (None, 0)

    def at(self, t: float, window: float) -> float | None:
        """Returns the smoothed value at t (at the curve's end when it stops before t)."""
        t = min(t, self.end)
        return self.mean(t - window, t)[0]


class PruneReference:
    """The best experiment's curves and the repeated experiments' curves, shared by the runs it judges."""

    def __init__(self, best_curves: list, budget_s: float, spread_groups: list[list] | None = None,
                 settings: PruneSettings | None = None, finished_curves: list | None = None) -> None:
        self.settings = settings or PruneSettings()
        self.budget_s = float(budget_s)
        self.window = self.settings.window_fraction * self.budget_s
        column = self.settings.column
        self.best = [c for c in (_Curve(p, column, budget_s) for p in best_curves) if len(c.t)]
        if not self.best:
            raise ValueError(f"the best run has no {column} curve to compare with")
        groups = [list(best_curves), *(spread_groups or [])]
        self.groups = [[c for c in (_Curve(p, column, budget_s) for p in g) if len(c.t)] for g in groups]
        self.best_final = float(np.mean([c.at(c.end, self.window) for c in self.best]))
        ends = (1.0 - self.settings.window_fraction) * self.budget_s   # a run that got there finished
        self.finished = [c for c in (_Curve(p, column, budget_s, self.settings.warm_lrm)
                                     for p in finished_curves or []) if len(c.t) and c.end >= ends]
        self._allowances: dict[int, float] = {}

    def best_at(self, t: float) -> float:
        """Returns the best's smoothed value at training time t (mean over its runs)."""
        return float(np.mean([c.at(t, self.window) for c in self.best]))

    def spread_at(self, t: float, best_value: float) -> float:
        """Returns the run-to-run standard deviation at t (see the module docstring)."""
        squares, df = 0.0, 0
        for group in self.groups:
            values = [c.at(t, self.window) for c in group if c.end >= t - self.window]
            values = [v for v in values if v is not None]
            if len(values) > 1:
                squares += float(np.sum((np.asarray(values) - np.mean(values)) ** 2))
                df += len(values) - 1
        default = self.settings.default_spread * abs(best_value)
        prior = self.settings.prior_df
        return math.sqrt((squares + prior * default ** 2) / (df + prior))

    def allowance_at(self, t: float) -> float:
        """Returns the share of the best's remaining gain a run at t may still make up (module docstring)."""
        settings = self.settings
        if not settings.min_finished or len(self.finished) < settings.min_finished:
            return settings.catch_up
        slot = int(round(100 * t / self.budget_s))      # learned per 1% of the budget
        if slot not in self._allowances:
            t = slot * self.budget_s / 100
            best = self.best_at(t)
            remaining = best - self.best_final
            made_up = [0.0]
            if remaining > 0:
                for c in self.finished:
                    if t <= c.warm_end:   # a run is judged after its warm-up: what it made up before does not count
                        continue
                    value, end = c.at(t, self.window), c.at(c.end, self.window)
                    made_up.append(((value - best) - (end - self.best_final)) / remaining)
            learned = settings.catch_up_safety * max(made_up)
            self._allowances[slot] = min(settings.catch_up, max(settings.catch_up_floor, learned))
        return self._allowances[slot]

    def pruner(self) -> "Pruner":
        """Returns a pruner for one new run."""
        return Pruner(self)


class Pruner:
    """Judges one running curve, point by point, against a PruneReference."""

    def __init__(self, reference: PruneReference) -> None:
        self.reference = reference
        self.t: list[float] = []
        self.y: list[float] = []
        self.decision: PruneDecision | None = None
        self.warm_up = _WarmUp(reference.settings.warm_lrm)

    def observe(self, points) -> PruneDecision | None:
        """Takes new points of the running curve; returns a decision the first time the run should stop."""
        if self.decision is not None:
            return None
        ref, settings = self.reference, self.reference.settings
        for point in _records(points):
            value, seconds = point.get(settings.column), _seconds(point, ref.budget_s)
            self.warm_up.see(point.get("lrm"))
            if not (_finite(value) and _finite(seconds)):
                continue
            self.t.append(float(seconds))
            self.y.append(float(value))
            self.decision = self._judge(self.t[-1])
            if self.decision is not None:
                return self.decision
        return None

    def _judge(self, t: float) -> PruneDecision | None:
        ref, settings = self.reference, self.reference.settings
        fraction = t / ref.budget_s
        warm_up_over = self.warm_up.over if self.warm_up.peak is not None else fraction >= settings.warmup_fraction
        if fraction < settings.min_fraction or not warm_up_over or fraction > settings.max_fraction:
            return None
        inside = []
        for s, y in zip(reversed(self.t), reversed(self.y)):
            if s <= t - ref.window:
                break
            inside.append(y)
        if len(inside) < settings.min_points:
            return None
        value = sum(inside) / len(inside)
        best = ref.best_at(t)
        spread = ref.spread_at(t, best)
        margin = settings.spread_factor * spread + ref.allowance_at(t) * max(0.0, best - ref.best_final)
        if value - best > margin:
            return PruneDecision(fraction, value, best, spread, margin, settings.column)
        return None


def prune_reference(campaign, settings: PruneSettings | None = None, max_groups: int = 20,
                    max_finished: int = 40) -> PruneReference | None:
    """Returns the reference a campaign's next runs are pruned against (the best experiment's curves,
    the curves of up to `max_groups` recent experiments run more than once, and those of the last
    `max_finished` experiments, whose runs that got to the end teach the catch-up allowance), or None
    when there is no best yet or it has no curve."""
    from .curves import campaign_curves
    settings = settings or PruneSettings()
    best = campaign.best()
    if not best or not str(best.get("key", "")).isdigit():
        return None
    experiments = {int(k): rows for k, rows in campaign.experiments().items() if str(k).isdigit()}
    repeated = [n for n, rows in experiments.items()
                if sum(r["status"] != "crash" for r in rows) > 1 and n != int(best["key"])][-max_groups:]
    recent = [n for n, rows in experiments.items() if any(r["status"] != "crash" for r in rows)][-max_finished:]
    frame = campaign_curves(campaign, sorted({int(best["key"]), *repeated, *recent}))
    if frame.empty or settings.column not in frame:
        return None
    by_experiment = {n: [g.to_dict("records") for _, g in runs.groupby("run")]
                     for n, runs in frame.groupby("experiment")}
    best_curves = by_experiment.get(int(best["key"]), [])
    finished = [curve for n in recent for curve in by_experiment.get(n, [])]  # pruned ones end early: left out
    try:
        return PruneReference(best_curves, campaign.config.budget_s,
                              [by_experiment[n] for n in repeated if n in by_experiment], settings, finished)
    except ValueError:
        return None


def _records(points):
    """Returns `points` (a list of dicts or a DataFrame) as an iterable of dicts."""
    return points.to_dict("records") if hasattr(points, "to_dict") else points


def _seconds(point: dict, budget_s: float):
    seconds = point.get("training_seconds")
    if _finite(seconds):
        return seconds
    progress = point.get("progress")
    return progress * budget_s if _finite(progress) else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
