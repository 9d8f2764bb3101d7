"""Keep rules: given a candidate's runs and the best kept experiment, decide keep or discard.

Crashes are decided before a keep rule is asked. A rule may ask for more runs of the same
commit (the `repeats` rule does) by returning a Decision with `more_runs` > 0.
"""
from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from .errors import CampaignError
from .status import Status


@dataclass
class Decision:
    """The verdict on a candidate and the evidence for it."""

    status: Status       # keep, discard (or crash, set by the engine)
    evidence: str        # one line a researcher can check by hand
    more_runs: int = 0   # >0: run the same commit again before deciding


def gain(config, value: float, best: float) -> float:
    """Returns how much better `value` is than `best` (positive = better) in the campaign's direction."""
    return best - value if config.direction == "min" else value - best


class KeepRule:
    """Base of all keep rules."""

    name = "base"
    baseline_alone = False   # True: the baseline must be measured before any candidate starts

    def decide(self, campaign, values: list[float], best: dict | None) -> Decision:
        """Returns the verdict for a candidate measured `values` against `best` (campaign.best())."""
        raise NotImplementedError

    def seed_for(self, experiment: int, run: int) -> int | None:
        """Returns the seed for one run (None: the script's own default)."""
        return None

    def smallest_gain(self, config, sigma: float, df: int, n_best: int) -> float:
        """Returns the smallest gain this rule keeps at the measured noise `sigma`. A rule that
        judges on one run keeps a pure-noise edit as often as it is discarded, whatever its gain."""
        return 0.0


class StrictRule(KeepRule):
    """The reference ratchet: keep on any strict improvement of the best kept result."""

    name = "strict"

    def decide(self, campaign, values, best):
        value = values[-1]
        if best is None:
            return Decision(Status.KEEP, f"first result {value:.6f}")
        g = gain(campaign.config, value, best["value"])
        return Decision(Status.KEEP if g > 0 else Status.DISCARD,
                        f"{value:.6f} vs best {best['value']:.6f}: gain {g:+.6f} ({'any' if g > 0 else 'no'} improvement)")


class MarginRule(KeepRule):
    """Keep only when better than the best by at least `keep_margin`."""

    name = "margin"

    def smallest_gain(self, config, sigma, df, n_best):
        return config.keep_margin

    def decide(self, campaign, values, best):
        value = values[-1]
        if best is None:
            return Decision(Status.KEEP, f"first result {value:.6f}")
        g = gain(campaign.config, value, best["value"])
        margin = campaign.config.keep_margin
        return Decision(Status.KEEP if g >= margin and g > 0 else Status.DISCARD,
                        f"{value:.6f} vs best {best['value']:.6f}: gain {g:+.6f}, required {margin:.6f}")


class RepeatsRule(KeepRule):
    """Noise-aware: keep only when the mean gain beats what run-to-run noise allows.

    The baseline runs `noise_runs` times with different seeds to measure the noise (the
    within-experiment standard deviation, pooled over every repeated experiment so far). A
    candidate runs once; if it is not better on that run it is discarded at once, otherwise
    it is re-run to `repeats` runs and kept when a one-sided Welch-style test on the means passes
    at `confidence`: gain > t(confidence, df) * sigma * sqrt(1/n_candidate + 1/n_best). Testing
    only once, at the full number of runs, keeps the false-keep rate at 1 - confidence.
    """

    name = "repeats"
    baseline_alone = True    # its noise runs come first

    def seed_for(self, experiment, run):
        # Fresh random seeds (each recorded in its row): the noise that matters is what a new
        # seed, or a GPU's non-determinism, changes; fixed seeds would hide it.
        return random.SystemRandom().randrange(1, 2**31)

    def smallest_gain(self, config, sigma, df, n_best):
        return t_quantile(config.confidence, df) * sigma * (1 / config.repeats + 1 / max(n_best, 1)) ** 0.5

    def decide(self, campaign, values, best):
        config = campaign.config
        n = len(values)
        mean = statistics.fmean(values)
        if best is None:  # the baseline: measure the noise
            if n < config.noise_runs:
                return Decision(Status.KEEP, f"noise run {n}/{config.noise_runs}", more_runs=config.noise_runs - n)
            return Decision(Status.KEEP, f"baseline mean {mean:.6f} over {n} seeds, sd {statistics.stdev(values):.6f}")
        g = gain(config, mean, best["value"])
        if g <= 0:
            return Decision(Status.DISCARD, f"mean {mean:.6f} over {n} run(s) is no better than best {best['value']:.6f}")
        if n < config.repeats:
            return Decision(Status.KEEP, f"promising ({g:+.6f}): re-running", more_runs=config.repeats - n)
        sigma, df = campaign.noise(extra=values)
        if sigma is None:
            return Decision(Status.KEEP, f"gain {g:+.6f}; no noise estimate yet (baseline ran once)")
        se = sigma * (1 / n + 1 / len(best["values"])) ** 0.5
        need = t_quantile(config.confidence, df) * se
        verdict = Status.KEEP if g > need else Status.DISCARD
        return Decision(verdict, f"mean {mean:.6f} over {n} runs vs best {best['value']:.6f} over "
                                 f"{len(best['values'])}: gain {g:+.6f} {'>' if g > need else '<='} "
                                 f"{need:.6f} = t({config.confidence:g}, df={df}) x se {se:.6f} (sd {sigma:.6f})")


def t_quantile(confidence: float, df: int) -> float:
    """Returns the one-sided Student t quantile."""
    from scipy.stats import t
    return float(t.ppf(confidence, max(df, 1)))


RULES: dict[str, type[KeepRule]] = {"strict": StrictRule, "margin": MarginRule, "repeats": RepeatsRule}


def keep_rule_for(config) -> KeepRule:
    """Returns the keep rule the config names."""
    try:
        return RULES[config.keep_rule]()
    except KeyError:
        raise CampaignError(f"keep rule {config.keep_rule!r} is not available: use one of {', '.join(RULES)}") from None
