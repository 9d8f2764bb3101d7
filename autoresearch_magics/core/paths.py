"""Where a campaign keeps its files: one place, so every layer agrees."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".autoresearch"
CONFIG_NAME = "campaign.json"
RESULTS_NAME = "results.tsv"
LOGS_DIR = "logs"
DATA_DIR = "data"
SUMMARY_NAME = "autoresearch-summary.md"   # the shareable report
PLOT_NAME = "progress.png"                 # the report's plot
CURVES_NAME = "curves.png"                 # the learning curves of the kept steps

# Files a campaign writes that must never be committed (kept in .git/info/exclude,
# so the user's own .gitignore is not touched).
UNTRACKED_PATTERNS = (f"/{STATE_DIR}/", f"/{RESULTS_NAME}", f"/{LOGS_DIR}/", f"/{DATA_DIR}/",
                      f"/{SUMMARY_NAME}", f"/{PLOT_NAME}", f"/{CURVES_NAME}", "__pycache__/")


@dataclass(frozen=True)
class CampaignPaths:
    """Absolute paths of one campaign folder's files."""

    root: Path

    @classmethod
    def of(cls, folder) -> "CampaignPaths":
        """Returns the paths for a campaign rooted at `folder`."""
        return cls(Path(folder).expanduser().resolve())

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def config(self) -> Path:
        return self.state / CONFIG_NAME

    @property
    def results(self) -> Path:
        return self.root / RESULTS_NAME

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def data(self) -> Path:
        return self.root / DATA_DIR

    @property
    def lock(self) -> Path:
        return self.state / "runner.lock"

    @property
    def owner(self) -> Path:
        """JSON naming the process that holds the runner lock."""
        return self.state / "runner.json"

    @property
    def current(self) -> Path:
        """JSON describing the experiment in flight; its presence after a crash means 'interrupted'."""
        return self.state / "current.json"

    @property
    def live(self) -> Path:
        """JSON snapshot of the running experiment's progress, for other processes (sidebar)."""
        return self.state / "live.json"

    @property
    def stop_request(self) -> Path:
        """A file whose presence asks the runner to stop the running experiment."""
        return self.state / "stop-request"

    @property
    def records(self) -> Path:
        """Full per-run records (JSON lines) for fields a reference-format results.tsv cannot hold."""
        return self.state / "runs.jsonl"

    @property
    def decision(self) -> Path:
        """JSON answer (run or skip) to the proposal the runner waits on in approve mode."""
        return self.state / "decision.json"

    @property
    def notes(self) -> Path:
        """The campaign journal: dated steering notes (JSON lines, append-only)."""
        return self.state / "notes.jsonl"

    @property
    def skipped(self) -> Path:
        """Proposals skipped before they ran, with their reasons (JSON lines, append-only)."""
        return self.state / "skipped.jsonl"

    def log_for(self, experiment: int, run: int = 1) -> Path:
        """Returns the log file path of one run of one experiment."""
        suffix = "" if run == 1 else f"-r{run}"
        return self.logs / f"{experiment:04d}{suffix}.log"


def find_campaign_root(start) -> Path | None:
    """Returns the nearest folder at or above `start` that holds a campaign config, or None."""
    here = Path(start).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / STATE_DIR / CONFIG_NAME).is_file():
            return folder
    return None
