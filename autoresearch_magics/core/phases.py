"""Where a run's wall time goes, and whether the script's own budget is the campaign's.

Phases of one run (seconds; results.tsv columns startup_s, train_wall_s, eval_s, overhead_s):
  start-up    launch -> first progress line (imports, data loading, compilation)
  training    first -> last progress line
  evaluation  last progress line -> exit (the final evaluation and the summary block)
  overhead    the tool's own bookkeeping: engine time before the launch and after the exit
A script that prints no progress line has its whole wall time as start-up.

A running experiment's progress (`live_progress`, the one rule the notebook panel and the sidebar
both show) follows training time only: the bar stays empty through start-up, is training seconds
over the budget while the script trains, and is full while it evaluates.

A script's own budget. From a progress line with `(P%)` and `remaining: Ns`, the budget the script
works to is N / (1 - P/100). When that disagrees with the campaign's budget by more than
BUDGET_TOLERANCE, the script does not take its budget from the tool (AUTORESEARCH_BUDGET_S).
"""
from __future__ import annotations

import re
from pathlib import Path

from .config import ENV_BUDGET
from .stop_rules import format_duration

BUDGET_TOLERANCE = 0.2       # relative disagreement that is worth a message
POINTS_FOR_BUDGET = 2        # progress lines with an implied budget before judging
MIN_REMAINING_S = 10.0       # `remaining:` is often printed in whole seconds: shorter ones are too coarse
PHASE_COLUMNS = ("startup_s", "train_wall_s", "eval_s", "overhead_s")
LIVE_PHASES = ("start-up", "preparation", "training", "evaluation")
PHASE_LABELS = {"start-up": "starting up", "preparation": "preparing data", "training": "training",
                "evaluation": "evaluating"}
BUDGET_FILES = ("train.py", "prepare.py")
# a reference-style budget constant: `TIME_BUDGET = 300`, `BUDGET_S = 60.0`
_BUDGET_CONSTANT = re.compile(r"^([A-Z_]*BUDGET[A-Z_]*)\s*(?::\s*\w+\s*)?=\s*(\d+(?:\.\d+)?)\s*(?:#.*)?$", re.M)


def run_phases(wall_s: float, first_progress_s: float | None, last_progress_s: float | None,
               overhead_s: float | None) -> dict[str, float | None]:
    """Returns the run's phases in seconds (see the module docstring)."""
    if first_progress_s is None:
        startup, train, evaluation = wall_s, 0.0, 0.0
    else:
        last = last_progress_s if last_progress_s is not None else first_progress_s
        startup, train, evaluation = first_progress_s, max(0.0, last - first_progress_s), max(0.0, wall_s - last)
    return {"startup_s": round(startup, 1), "train_wall_s": round(train, 1), "eval_s": round(evaluation, 1),
            "overhead_s": None if overhead_s is None else round(max(0.0, overhead_s), 1)}


def duration_text(seconds: float) -> str:
    """Returns seconds as "4.2 s", "35 s", "3m05s" or "1h02m" (as the sidebar writes them): under a
    minute with the sidebar's precision, else as every other duration (stop_rules.format_duration)."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return format_duration(seconds)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def live_progress(live: dict) -> dict:
    """Returns what a running experiment's progress shows, from its live state (live.json, a snapshot):
    {"phase", "label", "fraction" (share of the training budget done, 0..1; None: not known), "training_s",
    "text"}. The notebook panel and the sidebar (through the server) both show this.

    Start-up and data preparation leave the bar empty: wall time then is no training, and a bar that
    advanced with it would drop back when training starts. A state without a phase (a runner that
    records none) shows the script's own progress, else the runner's `training_fraction`."""
    budget = _number(live.get("budget_s")) or 0.0
    elapsed = _number(live.get("elapsed_s")) or 0.0
    phase = live.get("phase") or None
    trained = _number(live.get("training_seconds"))
    percent = _number(live.get("percent"))
    if trained is None and percent is not None:
        trained = percent / 100.0 * budget
    clamp = lambda x: round(min(max(x, 0.0), 1.0), 4)
    if phase == "training" or (phase is None and trained is not None):
        done = trained / max(budget, 1e-9) if trained is not None else _number(live.get("training_fraction"))
        fraction = clamp(done or 0.0)
        text = f"{duration_text(fraction * budget)} of {duration_text(budget)} training ({100 * fraction:.0f}%)"
    elif phase == "evaluation":
        fraction = 1.0
        text = f"training done ({duration_text(trained if trained is not None else budget)}), evaluating"
    elif phase is not None:
        fraction = 0.0
        text = (f"{PHASE_LABELS.get(phase, phase)}: {duration_text(elapsed)} so far, before the "
                f"{duration_text(budget)} of training")
    else:
        own = _number(live.get("training_fraction"))
        fraction = None if own is None else clamp(own)
        text = f"{duration_text(elapsed)} since start; {duration_text(budget)} training budget"
    return {"phase": phase, "label": PHASE_LABELS.get(phase, phase) if phase else "running", "fraction": fraction,
            "training_s": None if trained is None else round(trained, 1), "text": text}


def implied_budget_s(point: dict) -> float | None:
    """Returns the budget a progress point implies (remaining / (1 - fraction done)), or None."""
    percent, remaining = point.get("percent"), point.get("remaining_s")
    if percent is None or remaining is None or not 0.0 < percent < 99.0 or remaining < MIN_REMAINING_S:
        return None
    return remaining / (1.0 - percent / 100.0)


class BudgetCheck:
    """Follows one run's progress; says once when the script's own budget is not the campaign's."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = float(budget_s)
        self.implied: list[float] = []
        self.last_percent: float | None = None
        self.told = False

    def point(self, point: dict) -> None:
        if point.get("percent") is not None:
            self.last_percent = point["percent"]
        implied = implied_budget_s(point)
        if implied is not None:
            self.implied.append(implied)

    @property
    def script_budget_s(self) -> float | None:
        """Returns the script's own budget (the median of what its lines imply), once known."""
        if len(self.implied) < POINTS_FOR_BUDGET:
            return None
        ordered = sorted(self.implied)
        return ordered[len(ordered) // 2]

    def disagrees(self) -> bool:
        own = self.script_budget_s
        return own is not None and abs(own - self.budget_s) > BUDGET_TOLERANCE * self.budget_s

    def message(self, experiment: int) -> str | None:
        """Returns the one message about a disagreeing budget, the first time it is known; else None."""
        if self.told or not self.disagrees():
            return None
        self.told = True
        own = self.script_budget_s
        return (f"experiment {experiment}: the script trains for its own budget of about {own:.0f}s, not the "
                f"campaign's {self.budget_s:g}s (its progress line's `remaining:` and percent say so). Fix: make "
                f"the script read its budget with `float(os.environ.get(\"{ENV_BUDGET}\", {own:.0f}))`, or start "
                f"the campaign with `--budget {own:.0f}`")

    def timeout_reason(self) -> str | None:
        """Returns a timeout's crash reason in the script's own terms, when its budget disagrees."""
        if not self.disagrees() or self.last_percent is None:
            return None
        return (f"timeout: killed at {self.last_percent:.0f}% of the script's own {self.script_budget_s:.0f} s "
                f"budget; the campaign's budget is {self.budget_s:g} s")


def time_use(rows: list[dict]) -> dict | None:
    """Returns the campaign's time use over the rows that recorded their phases: {"runs", "wall_s"
    (the runs' wall time plus the tool's overhead), "training_s", "training_share", "experiments_per_hour"};
    None when no row has them. Every run counts, crashes too: their time is spent all the same."""
    runs, wall, training = 0, 0.0, 0.0
    for row in rows:
        try:
            elapsed = float(row.get("elapsed_min") or "nan") * 60.0
            train = float(row.get("train_wall_s") or "nan")
        except ValueError:
            continue
        if elapsed != elapsed or train != train:
            continue
        try:
            overhead = float(row.get("overhead_s") or 0.0)
        except ValueError:
            overhead = 0.0
        runs += 1
        wall += elapsed + overhead
        training += train
    if not runs or wall <= 0:
        return None
    return {"runs": runs, "wall_s": round(wall, 1), "training_s": round(training, 1),
            "training_share": round(training / wall, 3), "experiments_per_hour": round(3600.0 * runs / wall, 1)}


def budget_constant_warning(root: Path, budget_s: float) -> str | None:
    """Returns the message for a checkout whose script sets its own budget as a constant and never reads
    AUTORESEARCH_BUDGET_S (train.py, prepare.py), else None."""
    texts = {}
    for name in BUDGET_FILES:
        try:
            texts[name] = (Path(root) / name).read_text(errors="replace")
        except OSError:
            continue
    if any(ENV_BUDGET in text for text in texts.values()):
        return None
    for name, text in texts.items():
        found = _BUDGET_CONSTANT.search(text)
        if found:
            constant, value = found.group(1), float(found.group(2))
            return (f"{name} sets its own time budget ({constant} = {value:g}) and does not read {ENV_BUDGET}: "
                    f"the campaign's budget of {budget_s:g}s will not apply, and runs may be killed at the timeout. "
                    f"Fix: in {name}, `{constant} = float(os.environ.get(\"{ENV_BUDGET}\", {value:g}))`, or "
                    f"start the campaign with `--budget {value:g}`")
    return None
