"""Stop rules: max experiments, deadline, target metric. The per-experiment timeout lives in the runner."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .config import CampaignConfig, now_utc


@dataclass
class StopState:
    """Whether a stop rule holds, and a one-line account of every rule's progress."""

    reached: bool
    reason: str
    progress: str


def format_duration(seconds: float) -> str:
    """Returns '6h12m', '4m05s' or '12s'."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def stop_state(config: CampaignConfig, attempted: int, best: float | None,
               now: datetime | None = None) -> StopState:
    """Returns which stop rule (if any) holds for a campaign with `attempted` experiments so far."""
    now = now or now_utc()
    parts, reasons = [], []
    if config.max_experiments is not None:
        parts.append(f"{attempted}/{config.max_experiments} attempted")
        if attempted >= config.max_experiments:
            reasons.append(f"reached the maximum of {config.max_experiments} experiments")
    else:
        parts.append(f"{attempted} attempted (no maximum)")
    if config.deadline_at is not None:
        left = (config.deadline_at - now).total_seconds()
        parts.append(f"{format_duration(left)} remaining" if left > 0 else "deadline passed")
        if left <= 0:
            reasons.append(f"passed the deadline {config.deadline}")
    if config.target is not None:
        parts.append(f"target {config.metric} {'<=' if config.direction == 'min' else '>='} {config.target:g}")
        if best is not None and (best <= config.target if config.direction == "min" else best >= config.target):
            reasons.append(f"best {config.metric} {best:.6f} reached the target {config.target:g}")
    parts.append(f"timeout {format_duration(config.effective_timeout_s)} per experiment")
    progress = ", ".join(parts)
    if reasons:
        return StopState(True, "; ".join(reasons), f"stop condition met: {'; '.join(reasons)} ({progress})")
    return StopState(False, "", f"stop condition not yet met: {progress}")
