"""The campaign config: one record, saved in the campaign folder so any process resumes it."""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone

from .errors import CampaignError, NotACampaign
from .keep_rules import RULES
from .paths import CampaignPaths
from .verdict_checks import FAIR_MIN_CPU_S, MAX_SHARE_GAP
from .validation import FieldError, check_config, check_duration_s, field_message

DEFAULT_METRIC = "val_bpb"
DEFAULT_BUDGET_S = 300.0
DEFAULT_COMMAND = "python train.py"
STARTUP_ALLOWANCE_S = 60.0  # imports, data loading and compilation before training starts
DIRECTIONS = ("min", "max")
KEEP_RULES = tuple(RULES)

# Environment variables a training script reads.
ENV_BUDGET = "AUTORESEARCH_BUDGET_S"      # training-time budget in seconds
ENV_SEED = "AUTORESEARCH_SEED"            # integer seed for repeated runs
ENV_DATA_DIR = "AUTORESEARCH_DATA_DIR"    # the campaign's data folder (absolute)
ENV_EXPERIMENT = "AUTORESEARCH_EXPERIMENT"  # experiment number, for the script's own logs


@dataclass
class CampaignConfig:
    """Everything that defines a campaign; saved as .autoresearch/campaign.json."""

    tag: str
    metric: str = DEFAULT_METRIC
    direction: str = "min"                 # "min": lower is better
    budget_s: float = DEFAULT_BUDGET_S     # training-time budget handed to the script
    timeout_s: float | None = None         # hard kill; None means 2 x budget + startup allowance
    startup_timeout_s: float | None = None  # limit before a run's first progress line; None: the timeout
    prepare_command: str = ""              # one-time data preparation run by init ("" = none)
    command: str = DEFAULT_COMMAND         # run with /bin/sh in the working copy
    editable: list[str] = field(default_factory=lambda: ["train.py"])  # files an experiment may change
    max_experiments: int | None = None     # stop rule: attempts, crashes included
    deadline: str | None = None            # stop rule: absolute ISO-8601 time
    target: float | None = None            # stop rule: stop once the best reaches this value
    keep_rule: str = "strict"
    keep_margin: float = 0.0               # margin rule: required improvement
    repeats: int = 3                       # repeats rule: runs of a promising candidate
    noise_runs: int = 5                    # repeats rule: baseline runs (seeds) that measure the noise
    confidence: float = 0.95               # repeats rule: one-sided confidence of a keep
    template: str | None = None
    created_at: str = ""
    log_cap_mb: float = 64.0               # per-run log size cap; the tail is always kept
    prune: bool = False                    # stop a run early when its curve is hopeless (pruning.py)
    max_share_gap: float = MAX_SHARE_GAP   # machine shares further apart make a comparison unfair
    fair_min_cpu_s: float = FAIR_MIN_CPU_S  # runs with less CPU time, seconds, are not judged for fairness

    @property
    def branch(self) -> str:
        """Returns the campaign branch name."""
        return f"autoresearch/{self.tag}"

    @property
    def effective_timeout_s(self) -> float:
        """Returns the hard timeout in seconds."""
        if self.timeout_s is not None:
            return float(self.timeout_s)
        return 2.0 * float(self.budget_s) + STARTUP_ALLOWANCE_S

    @property
    def effective_startup_timeout_s(self) -> float:
        """Returns how long a run may take before its first progress line (see `runner._Limits`)."""
        if self.startup_timeout_s is not None:
            return float(self.startup_timeout_s)
        return self.effective_timeout_s

    @property
    def deadline_at(self) -> datetime | None:
        """Returns the deadline as an aware datetime, or None."""
        return datetime.fromisoformat(self.deadline) if self.deadline else None

    def better(self, a: float, b: float | None) -> bool:
        """Returns True when metric value `a` is strictly better than `b` (None counts as worst)."""
        if b is None:
            return True
        return a < b if self.direction == "min" else a > b

    def validate(self) -> "CampaignConfig":
        """Returns self after checking every field; raises CampaignError naming the field and the fix."""
        check_config(self, {"direction": DIRECTIONS, "keep_rule": KEEP_RULES})
        return self

    def save(self, paths: CampaignPaths) -> None:
        """Writes the config atomically."""
        paths.state.mkdir(parents=True, exist_ok=True)
        tmp = paths.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, paths.config)

    @classmethod
    def load(cls, paths: CampaignPaths) -> "CampaignConfig":
        """Returns the saved config, checked; raises NotACampaign when there is none and CampaignError
        (one line naming the field and the fix) when it cannot be used."""
        if not paths.config.is_file():
            raise NotACampaign(f"{paths.root} holds no campaign: run `autoresearch init {paths.root}` first")
        try:
            raw = json.loads(paths.config.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CampaignError(f"{paths.config} is not valid JSON ({exc}): fix or delete it and run init "
                                f"again") from None
        except OSError as exc:
            raise CampaignError(f"cannot read {paths.config} ({exc.strerror}): make it readable") from None
        if not isinstance(raw, dict) or not raw.get("tag"):
            raise CampaignError(f"{paths.config} holds no campaign settings (no \"tag\"): fix or delete it and "
                                f"run init again")
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in raw.items() if k in known})
        try:
            return config.validate()
        except FieldError as exc:
            raise CampaignError(field_message(exc.field, exc.value, exc.rule, exc.example, paths.config)) from None


def now_utc() -> datetime:
    """Returns the current time, timezone-aware, second resolution."""
    return datetime.now(timezone.utc).replace(microsecond=0)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.I)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str) -> float:
    """Returns seconds for '90', '45m', '8h', '1h30m' or '2d'; raises CampaignError otherwise."""
    text = str(text).strip()
    try:
        float(text)
    except ValueError:
        pass
    else:
        return check_duration_s(text, float(text))
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise CampaignError(f"cannot read duration {text!r}: write e.g. 8h, 45m, 1h30m or 3600")
    return check_duration_s(text, sum(float(n) * _UNIT_S[u.lower()] for n, u in parts))


def deadline_from_duration(text: str) -> str:
    """Returns the ISO time `text` (a duration) from now."""
    return (now_utc() + timedelta(seconds=parse_duration_s(text))).isoformat()
