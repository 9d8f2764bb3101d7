"""The sweep proposer: tunes module-level constants of train.py with Optuna (TPE by default).

The study lives in the campaign folder (`.autoresearch/sweep.db`), so a restarted loop resumes
it; every experiment's metric is reported back, a crash as a failed trial.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .script_constants import read_constants, rewrite_constants
from .errors import CampaignError
from .proposers import Proposal, Proposer

_ITEM = re.compile(r"([A-Za-z_]\w*)\s*=\s*(\w+)\(([^)]*)\)")
KINDS = ("uniform", "loguniform", "int", "logint", "choice")


@dataclass
class Dimension:
    """One tunable constant and its range."""

    name: str
    kind: str
    args: tuple

    def distribution(self):
        """Returns the Optuna distribution of this dimension."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        if self.kind == "uniform":
            return FloatDistribution(float(self.args[0]), float(self.args[1]))
        if self.kind == "loguniform":
            return FloatDistribution(float(self.args[0]), float(self.args[1]), log=True)
        if self.kind in ("int", "logint"):
            return IntDistribution(int(self.args[0]), int(self.args[1]), log=self.kind == "logint")
        return CategoricalDistribution(list(self.args))


def parse_space(text: str) -> list[Dimension]:
    """Returns the dimensions of `LR=loguniform(1e-4,1e-2) DEPTH=int(2,8) ACT=choice('relu','gelu')`."""
    dims, rest = [], _ITEM.sub("", text).strip(" ,;")
    if rest:
        raise CampaignError(f"cannot read sweep space near {rest!r}: write NAME=kind(args) items such as "
                            f"LR=loguniform(1e-4,1e-2) DEPTH=int(2,8); kinds: {', '.join(KINDS)}")
    for name, kind, raw in _ITEM.findall(text):
        if kind not in KINDS:
            raise CampaignError(f"unknown sweep kind {kind!r} for {name}: use one of {', '.join(KINDS)}")
        import ast
        try:
            args = tuple(ast.literal_eval(f"({raw},)"))
        except (ValueError, SyntaxError):
            raise CampaignError(f"cannot read the arguments of {name}={kind}({raw})") from None
        if kind != "choice" and (len(args) != 2 or not args[0] < args[1]):
            raise CampaignError(f"{name}={kind}({raw}) needs two bounds, low < high")
        if kind in ("loguniform", "logint") and args[0] <= 0:
            raise CampaignError(f"{name}={kind}({raw}): a log range needs a positive lower bound")
        dims.append(Dimension(name, kind, args))
    if not dims:
        raise CampaignError("empty sweep space: give e.g. --space \"LR=loguniform(1e-4,1e-2) DEPTH=int(2,8)\"")
    return dims


class SweepProposer(Proposer):
    """Asks an Optuna study for values, rewrites only those constants of the current best train.py."""

    name = "sweep"

    def __init__(self, campaign, space: str, sampler: str = "tpe", seed: int | None = None) -> None:
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.dimensions = parse_space(space)
        self.script = campaign.config.editable[0]
        source = (campaign.paths.root / self.script).read_text()
        rewrite_constants(source, {d.name: read_constants(source).get(d.name) for d in self.dimensions})
        samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                    "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
        if sampler not in samplers:
            raise CampaignError(f"unknown sampler {sampler!r}: use tpe or random")
        storage = f"sqlite:///{campaign.paths.state / 'sweep.db'}"
        self.study = optuna.create_study(
            study_name=f"{campaign.config.tag}", storage=storage, load_if_exists=True,
            direction="minimize" if campaign.config.direction == "min" else "maximize",
            sampler=samplers[sampler]())
        for trial in self.study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # its loop was interrupted
        self._trials: dict[int, object] = {}  # id(proposal) -> its trial; a parallel batch has several open

    def propose(self, campaign):
        trial = self.study.ask({d.name: d.distribution() for d in self.dimensions})
        values = dict(trial.params)
        source = (campaign.paths.root / self.script).read_text()
        text = rewrite_constants(source, values)
        shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        proposal = Proposal(f"sweep #{trial.number}: {shown}", {self.script: text}, params=values)
        self._trials[id(proposal)] = trial
        return proposal

    def dropped(self, campaign, proposal):
        import optuna
        trial = self._trials.pop(id(proposal), None)
        if trial is not None:   # not run: pruned, so the study holds no trial RUNNING for ever
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    def observe(self, campaign, proposal, result):
        import optuna
        trial = self._trials.pop(id(proposal), None)
        if trial is None:
            return
        from .results import measured
        runs = campaign.experiments().get(str(result.experiment), [])
        values = measured(runs, campaign.config.metric)
        if result.status == "crash" or result.metric is None or not values or not all(math.isfinite(v) for v in values):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, sum(values) / len(values))


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
