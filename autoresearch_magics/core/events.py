"""What the engine tells front ends while an experiment runs, and what it returns after.

Every front end (the `%%experiment` panel, the loop panel, the CLI, a script) hears the same
events, on the engine's thread, in this order for each run: `experiment_started(info)`, a few
`updated(snapshot)` per second at most, then `experiment_finished(result)` once its row is written.
`message(text)` narrates a loop (stop-rule progress, reports, recovery).

`experiment_started`'s `info` fields:
    experiment   int   the experiment number (its ref is refs/autoresearch/<tag>/<experiment>)
    run          int   1, or the repeat run of the same commit the keep rule asked for
    description  str   the candidate's one-line hypothesis (its commit message)
    diff         str   unified diff of the editable files against the current best commit
                       (the parent); "" when the candidate changes nothing (a re-run, the baseline)
    params       dict  constant name -> value for a sweep proposal; {} otherwise
    commit       str   the candidate's 7-character commit
    parent       str   the current best commit it was made from, 7 characters
    budget_s     float the training-time budget, seconds
    log_path     str   the run's log file on this machine
    launcher     str   the executor: local, ray or slurm
    best_curve   list  the best run's curve, thinned: [[training_seconds, loss], ...]; [] before a best

`updated`'s snapshot also holds `curve`: the running curve so far, thinned the same way.

`updated`'s `snapshot` is the live state (core/live.py): step, percent, loss, tok_per_s,
remaining_s, rss_mb, training_fraction, elapsed_s, tail (the last output lines), ...
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ExperimentResult:
    """One finished run, as decided and recorded."""

    experiment: int
    run: int
    commit: str
    parent: str
    status: str                  # a Status: keep | discard | crash (pending while undecided)
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
    pruned: bool = False                 # stopped early by --prune: a discard, its evidence says why
    cpu_s: float | None = None           # CPU seconds of the run's processes (runner.py)
    other_cpu_s: float | None = None     # CPU seconds of every other process meanwhile
    machine_share: float | None = None   # the run's share of the machine's CPU work meanwhile
    lost_attempts: list[str] = field(default_factory=list)   # earlier attempts the cluster took away
    phases: dict = field(default_factory=dict)   # startup_s, train_wall_s, eval_s, overhead_s (phases.py)

    @property
    def delta(self) -> float | None:
        """Returns metric minus the best before this run, or None."""
        if self.metric is None or self.best_before is None:
            return None
        return self.metric - self.best_before

    def to_dict(self) -> dict:
        """Returns a JSON-able dict (the delta included)."""
        out = asdict(self)
        out["status"] = str(self.status)
        out["delta"] = self.delta
        return out


class CampaignListener:
    """Callbacks from a running experiment; the default ignores them. Called on the worker
    thread: implementations must not print or display, only update state (widget traits)."""

    def experiment_started(self, info: dict) -> None:
        """A run of a committed candidate was launched; `info` holds the fields listed in the module doc."""

    def updated(self, snapshot: dict) -> None:
        """Progress of the running experiment (throttled: a few times a second at most)."""

    def experiment_finished(self, result: ExperimentResult) -> None:
        """The run ended and its row is written."""

    def message(self, text: str) -> None:
        """A line of loop narration (stop-rule state, periodic progress reports)."""
