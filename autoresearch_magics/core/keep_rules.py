"""Keep rules: given a finished run and the campaign so far, decide keep or discard.

Crashes are decided before a keep rule is asked. A rule may ask for more runs of the same
commit (the `repeats` rule does) by returning a Decision with `more_runs` > 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import CampaignConfig


@dataclass
class Decision:
    """The verdict on a candidate and the evidence for it."""

    status: str          # "keep" or "discard"
    evidence: str        # one line a researcher can check by hand
    more_runs: int = 0   # >0: run the same commit again before deciding


class KeepRule:
    """Base of all keep rules."""

    name = "base"

    def decide(self, config: CampaignConfig, metric_values: list[float], best: float | None) -> Decision:
        """Returns the verdict for a candidate measured `metric_values` against the best kept value."""
        raise NotImplementedError


class StrictRule(KeepRule):
    """The reference ratchet: keep on any strict improvement of the best kept result."""

    name = "strict"

    def decide(self, config, metric_values, best):
        value = metric_values[-1]
        if best is None:
            return Decision("keep", f"first result {value:.6f}")
        verb = "improves on" if config.better(value, best) else "does not improve on"
        return Decision("keep" if config.better(value, best) else "discard",
                        f"{value:.6f} {verb} best {best:.6f} (delta {value - best:+.6f})")


class MarginRule(KeepRule):
    """Keep only when better than the best by at least `keep_margin`."""

    name = "margin"

    def decide(self, config, metric_values, best):
        value = metric_values[-1]
        if best is None:
            return Decision("keep", f"first result {value:.6f}")
        gain = (best - value) if config.direction == "min" else (value - best)
        ok = gain >= config.keep_margin and gain > 0
        return Decision("keep" if ok else "discard",
                        f"gain {gain:+.6f} vs required margin {config.keep_margin:.6f} (best {best:.6f})")


RULES: dict[str, type[KeepRule]] = {"strict": StrictRule, "margin": MarginRule}


def keep_rule_for(config: CampaignConfig) -> KeepRule:
    """Returns the keep rule the config names."""
    from .errors import CampaignError
    try:
        return RULES[config.keep_rule]()
    except KeyError:
        raise CampaignError(f"keep rule {config.keep_rule!r} is not available: use one of {', '.join(RULES)}") from None
