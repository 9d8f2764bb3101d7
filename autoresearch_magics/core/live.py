"""The running experiment's state as a small JSON file, so other processes (the sidebar, a
second terminal) can show it without a kernel. Written at most once per second."""
from __future__ import annotations

import json
import os
import time
from collections import deque

import psutil

from .paths import CampaignPaths
from .phases import live_progress
from .summary import parse_progress

WRITE_EVERY_S = 1.0


def write_json_atomic(path, data: dict) -> None:
    """Writes `data` as JSON so readers never see half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_json(path) -> dict | None:
    """Returns the JSON in `path`, or None when it is missing or unreadable."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def process_alive(pid: int | None, create_time: float | None = None) -> bool:
    """Returns True when `pid` runs (and, if given, was started at `create_time`)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_live(paths: CampaignPaths) -> dict | None:
    """Returns the live state when an experiment is running now, else None."""
    state = read_json(paths.live)
    if not state or state.get("state") != "running":
        return None
    if not process_alive(state.get("runner_pid")):
        return None
    return state


class LiveState:
    """Tracks one run's progress; `snapshot()` is what the live file and the widgets show."""

    def __init__(self, paths: CampaignPaths, experiment: int, description: str, commit: str,
                 budget_s: float, run: int = 1) -> None:
        self.paths = paths
        self.started = time.time()
        self.data = {"state": "running", "experiment": experiment, "run": run, "description": description,
                     "commit": commit[:7], "budget_s": budget_s, "started_at": self.started,
                     "runner_pid": os.getpid(), "child_pid": None, "step": None, "percent": None,
                     "loss": None, "tok_per_s": None, "remaining_s": None, "rss_mb": 0.0, "peak_rss_mb": 0.0,
                     "training_fraction": 0.0, "elapsed_s": 0.0, "tail": [],
                     # start-up (launch -> first progress line), training, evaluation (after the last one)
                     "phase": "start-up", "training_seconds": None}
        self._tail: deque[str] = deque(maxlen=12)
        self._last_write = 0.0
        self._training_started: float | None = None

    def on_start(self, pid: int) -> None:
        self.data["child_pid"] = pid
        self.flush(force=True)

    def on_lines(self, lines: list[str]) -> None:
        self._follow_phase(lines)
        for line in reversed(lines):
            progress = parse_progress(line)
            if progress is not None:
                self.data.update(step=progress.step, percent=progress.percent, loss=progress.loss,
                                 tok_per_s=progress.tok_per_s, remaining_s=progress.remaining_s)
                break
        self._tail.extend(line for line in lines[-12:] if line.strip() and parse_progress(line) is None)

    def _follow_phase(self, lines: list[str]) -> None:
        """Moves the phase on: training from the first progress line, evaluation once training is
        complete (100%), the budget has passed since the first progress line (`snapshot`) or the
        summary block starts."""
        for line in lines:
            progress = parse_progress(line)
            if progress is not None:
                if self._training_started is None:
                    self._training_started = time.time()
                if self.data["phase"] != "evaluation":
                    self.data["phase"] = "training"
                if progress.percent is not None:
                    self.data["training_seconds"] = round(progress.percent / 100.0 * self.data["budget_s"], 1)
                    if progress.percent >= 100.0:
                        self.data["phase"] = "evaluation"
                else:
                    self.data["training_seconds"] = round(time.time() - self._training_started, 1)
            elif line.strip() == "---" and self._training_started is not None:
                self.data["phase"] = "evaluation"

    def on_rss(self, rss_mb: float) -> None:
        self.data["rss_mb"] = round(rss_mb, 1)
        # the highest so far: the current figure falls to the shepherd's own few MB once training exits
        self.data["peak_rss_mb"] = max(self.data["peak_rss_mb"], self.data["rss_mb"])

    def snapshot(self) -> dict:
        """Returns the current state with time-derived fields filled in."""
        elapsed = time.time() - self.started
        self.data["elapsed_s"] = round(elapsed, 1)
        if self.data["phase"] == "training" and time.time() - self._training_started >= self.data["budget_s"]:
            self.data["phase"] = "evaluation"   # the budget has passed since training began
        # training time over the budget (phases.live_progress): nothing during start-up, whatever the wall time
        self.data["training_fraction"] = live_progress(self.data)["fraction"] or 0.0
        self.data["tail"] = list(self._tail)
        self.data["updated_at"] = time.time()
        return dict(self.data)

    def flush(self, force: bool = False) -> None:
        """Writes the live file when a second has passed since the last write (or when forced)."""
        now = time.monotonic()
        if force or now - self._last_write >= WRITE_EVERY_S:
            self._last_write = now
            write_json_atomic(self.paths.live, self.snapshot())

    def finish(self, outcome: dict) -> None:
        """Marks the run finished with its outcome."""
        self.data.update(state="finished", outcome=outcome)
        write_json_atomic(self.paths.live, self.snapshot())


def publish_waiting_proposal(paths: CampaignPaths, proposal: dict, budget_s: float = 0.0) -> dict | None:
    """Writes live.json as this runner waiting on `proposal` ({"experiment", "description", "diff", ...}):
    a running record with the fields every reader knows, plus `waiting_proposal`. Returns the record
    it replaced, for clear_waiting_proposal to put back."""
    previous = read_json(paths.live)
    record = LiveState(paths, proposal["experiment"], proposal.get("description", ""), "", budget_s).snapshot()
    record["waiting_proposal"] = proposal
    write_json_atomic(paths.live, record)
    return previous


def clear_waiting_proposal(paths: CampaignPaths, previous: dict | None) -> None:
    """Takes the waiting proposal out of live.json, putting back the record it replaced (or removing the
    file when there was none); leaves live.json alone when a run has written it since."""
    current = read_json(paths.live)
    if not current or "waiting_proposal" not in current or current.get("runner_pid") != os.getpid():
        return
    if previous is None:
        paths.live.unlink(missing_ok=True)
    else:
        write_json_atomic(paths.live, previous)
