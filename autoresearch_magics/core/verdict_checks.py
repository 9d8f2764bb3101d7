"""Honest verdicts: checks a keep decision must pass before it stands.

Same code. A run whose editable files are byte for byte those of the best is another measurement of
the best, never an improvement, whatever the keep rule says: it joins the best's repeats (and the
noise estimate). `same_code_as` says when; `remeasure_decision` is the verdict to record.

Fair load. A time-budgeted metric depends on how much of the machine a run got (a run slowed by
other jobs trains fewer steps). The runner records each run's `machine_share` (its CPU time over the
CPU time the whole machine used meanwhile; see runner.py). A comparison between a candidate and the
run it is compared with (the best) is unfair when their shares differ by more than `MAX_SHARE_GAP`
(absolute, e.g. 0.93 against 0.65) *and* the difference could have produced the verdict:
  - the candidate got more of the machine and is kept (it may have won only by getting more steps);
  - the candidate got less of the machine and is discarded (it may have lost only by getting fewer).
A verdict that goes against the load difference (kept despite less machine, discarded despite
more) stands. What to do with an unfair one: re-run the side that got less of the machine (the
candidate, or the best as a re-measurement) while re-runs are allowed; after that, mark it: the
verdict is recorded with the unfairness in its evidence, and a marked keep becomes a discard (a
keep is never based on an unfair comparison). Shares that were not measured count as fair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

MAX_SHARE_GAP = 0.2    # machine shares further apart than this make a comparison unfair
# A run that used less CPU than this gives a share made mostly of the machine's background noise
# (a short or mostly idle script): it is not judged for fairness.
FAIR_MIN_CPU_S = 5.0


def _as_bytes(content) -> bytes:
    return content.encode() if isinstance(content, str) else bytes(content)


def same_code_as(best_files: Mapping[str, str | bytes], candidate_files: Mapping[str, str | bytes]) -> bool:
    """Returns True when the candidate's editable files (path -> content) are exactly the best's."""
    if set(best_files) != set(candidate_files):
        return False
    return all(_as_bytes(best_files[path]) == _as_bytes(candidate_files[path]) for path in best_files)


def remeasure_decision(best_experiment, values: Iterable[float]):
    """Returns the verdict of a run of the best's own code: a discard saying it re-measured the best."""
    from .keep_rules import Decision
    shown = ", ".join(f"{v:.6f}" for v in values)
    return Decision("discard", f"same code as the best (experiment {best_experiment}): another measurement of "
                               f"the best ({shown}), not an improvement")


@dataclass
class Fairness:
    """Whether a comparison's runs got comparable shares of the machine, and what to do if not."""

    fair: bool
    action: str          # "ok", "rerun" or "mark"
    rerun: str           # with "rerun": "candidate" or "best"; else ""
    evidence: str        # one line for the verdict and the panel

    def apply(self, decision):
        """Returns `decision` as it stands after this check: unchanged when fair; with "mark", the
        unfairness added to its evidence and a keep turned into a discard."""
        from .keep_rules import Decision
        if self.fair or self.action != "mark":
            return decision
        if decision.status == "keep":
            return Decision("discard", f"not kept: {self.evidence}; {decision.evidence}")
        return Decision(decision.status, f"{decision.evidence}; {self.evidence}", decision.more_runs)


def _mean(shares) -> float | None:
    if shares is None:
        return None
    if isinstance(shares, (int, float)):
        return float(shares)
    known = [float(s) for s in shares if s is not None]
    return sum(known) / len(known) if known else None


def load_fairness(candidate_share, best_share, status: str | None = None, reruns_left: int = 1,
                  max_gap: float = MAX_SHARE_GAP) -> Fairness:
    """Returns whether a verdict `status` ("keep", "discard" or None for either) on a candidate whose
    runs got `candidate_share` of the machine, against a best that got `best_share` (floats or lists
    of per-run shares), is fair; see the module docstring for the rule."""
    candidate, best = _mean(candidate_share), _mean(best_share)
    if candidate is None or best is None:
        return Fairness(True, "ok", "", "machine share not measured")
    gap = candidate - best
    shares = f"machine share {candidate:.2f} against the best's {best:.2f}"
    favoured = (gap > max_gap and status in ("keep", None)) or (gap < -max_gap and status in ("discard", None))
    if not favoured:
        return Fairness(True, "ok", "", shares)
    who = "the candidate" if gap > 0 else "the best"
    evidence = f"unfair comparison: {shares} ({who} got more of the machine)"
    if reruns_left > 0:
        return Fairness(False, "rerun", "best" if gap > 0 else "candidate", evidence)
    return Fairness(False, "mark", "", evidence)
