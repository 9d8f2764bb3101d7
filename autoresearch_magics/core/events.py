"""What the engine tells front ends while an experiment runs, and what it returns after."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ExperimentResult:
    """One finished run, as decided and recorded."""

    experiment: int
    run: int
    commit: str
    parent: str
    status: str                  # keep | discard | crash
    metric: float | None
    best_before: float | None
    description: str
    crash_reason: str = ""
    evidence: str = ""
    log_path: str = ""
    wall_s: float = 0.0
    training_seconds: float | None = None
    memory_gb: float = 0.0
    peak_rss_gb: float = 0.0
    summary: dict = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)
    seed: int | None = None
    started_at: str = ""
    launcher: str = "local"      # local | ray | slurm
    job_id: str = ""
    node: str = ""

    @property
    def delta(self) -> float | None:
        """Returns metric minus the best before this run, or None."""
        if self.metric is None or self.best_before is None:
            return None
        return self.metric - self.best_before

    def to_dict(self) -> dict:
        """Returns a JSON-able dict (the delta included)."""
        out = asdict(self)
        out["delta"] = self.delta
        return out


class CampaignListener:
    """Callbacks from a running experiment; the default ignores them. Called on the worker
    thread: implementations must not print or display, only update state (widget traits)."""

    wants_diff = False  # True: experiment_started's info carries the diff (one more git call)

    def experiment_started(self, info: dict) -> None:
        """An experiment was committed and launched: number, run, description, commit, diff."""

    def updated(self, snapshot: dict) -> None:
        """Progress of the running experiment (throttled: a few times a second at most)."""

    def experiment_finished(self, result: ExperimentResult) -> None:
        """The run ended and its row is written."""

    def message(self, text: str) -> None:
        """A line of loop narration (stop-rule state, periodic progress reports)."""
