"""Shared pieces of the parallel-executor tests (no tests here): a training script whose metric,
duration and process tree the test chooses, a proposer of metric values, a recording listener."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil

from autoresearch_magics import Campaign
from autoresearch_magics.core.events import CampaignListener
from autoresearch_magics.core.proposers import Proposal, Proposer

SCRIPT = '''import os, subprocess, sys, time
VALUE = 1.0          # the metric this script reports
SLEEP_S = 0.3        # seconds of fake training
SPAWN = False        # start a grandchild that sleeps (to check that the whole group is killed)
PID_DIR = {pid_dir!r}

t0 = time.time()
name = os.environ["AUTORESEARCH_EXPERIMENT"]
pids = [os.getpid()]
if SPAWN:
    pids.append(subprocess.Popen(["sleep", "300"]).pid)
with open(os.path.join(PID_DIR, name + ".tmp"), "w") as fh:
    fh.write(" ".join(map(str, pids)))
os.replace(os.path.join(PID_DIR, name + ".tmp"), os.path.join(PID_DIR, name + ".pid"))
print("devices=" + repr(os.environ.get("CUDA_VISIBLE_DEVICES")), flush=True)
print("data=" + os.environ["AUTORESEARCH_DATA_DIR"], flush=True)
time.sleep(SLEEP_S)
seed = int(os.environ.get("AUTORESEARCH_SEED") or 0)
print("---")
print(f"val_bpb:          {{VALUE + 0.0001 * (seed % 7):.6f}}")
print(f"training_seconds: {{SLEEP_S}}")
print(f"t_start:          {{t0:.3f}}")
print(f"t_end:            {{time.time():.3f}}")
print(f"devices:          {{os.environ.get('CUDA_VISIBLE_DEVICES')!r}}")
'''


def script_with(source: str, **constants) -> str:
    """Returns `source` with module constants (VALUE, SLEEP_S, SPAWN) set."""
    lines = []
    for line in source.splitlines():
        name = line.split(" ", 1)[0]
        lines.append(f"{name} = {constants[name]!r}" if name in constants and " = " in line else line)
    return "\n".join(lines) + "\n"


def script_campaign(folder: Path, **settings) -> Campaign:
    """Returns a campaign on the test script (committed), its pid files in folder/pids."""
    pid_dir = folder / "pids"
    pid_dir.mkdir(parents=True)
    campaign = Campaign.init(folder / "c", tag="t", template="toy", **{"budget_s": 0.3, **settings})
    (campaign.paths.root / "train.py").write_text(SCRIPT.format(pid_dir=str(pid_dir)))
    campaign.ledger.commit_files(["train.py"], "test script")
    campaign.pid_dir = pid_dir
    return campaign


class ValuesProposer(Proposer):
    """Proposes train.py with VALUE (and optionally SLEEP_S, SPAWN) set, one proposal per entry."""

    name = "values"

    def __init__(self, *settings: dict) -> None:
        self.queue = list(settings)
        self.observed = []

    def propose(self, campaign):
        if not self.queue:
            return None
        constants = self.queue.pop(0)
        source = campaign.ledger.read_file("HEAD", "train.py")
        return Proposal(" ".join(f"{k}={v}" for k, v in constants.items()), {"train.py": script_with(source, **constants)})

    def observe(self, campaign, proposal, result):
        self.observed.append((proposal.description, result.status))


class Recorder(CampaignListener):
    """Keeps every callback, with the time it came."""

    def __init__(self) -> None:
        self.started, self.updates, self.finished, self.messages = [], [], [], []

    def experiment_started(self, info):
        self.started.append((time.monotonic(), info))

    def updated(self, snapshot):
        self.updates.append((time.monotonic(), snapshot))

    def experiment_finished(self, result):
        self.finished.append((time.monotonic(), result))

    def message(self, text):
        self.messages.append(text)


def wait_for(predicate, timeout_s: float = 30.0, every_s: float = 0.05):
    """Returns predicate()'s first truthy value; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {predicate}")


def pids_of(campaign, experiment: int) -> list[int] | None:
    """Returns the pids (script, grandchild) experiment `experiment` wrote, or None yet."""
    path = campaign.pid_dir / f"{experiment}.pid"
    return [int(p) for p in path.read_text().split()] if path.exists() else None


def alive(pid: int) -> bool:
    """Returns True while `pid` runs (zombies count as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def in_thread(target, *args, **kwargs):
    """Starts `target` on a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box: dict = {}

    def work():
        try:
            box["result"] = target(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, box


def rows_by_experiment(campaign) -> dict[int, list[dict]]:
    """Returns results.tsv rows grouped by experiment number."""
    grouped: dict[int, list[dict]] = {}
    for row in campaign.rows():
        grouped.setdefault(int(row["experiment"]), []).append(row)
    return grouped
