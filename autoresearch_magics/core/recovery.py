"""Recovering from a runner that died mid-experiment (a killed kernel, a closed terminal, a lost
login node).

Called only by a runner that holds the campaign lock, before it starts (reading a campaign never
recovers). The runs the journal lists become crash rows ('interrupted'); orphaned training
processes are killed; editable files are brought back to the branch tip only where they hold
what the engine wrote there, never where the user has written since.

A Slurm job goes on after its runner dies (a Ray task or a local run does not), so a batch on
Slurm is settled from what its jobs left: a job that finished is recorded from its result and
its own log, judged by the keep rule on the engine's path (at most one keep, the branch moved
only where it still is at the batch's parent); a job still queued or running is cancelled and
recorded as 'interrupted'. Waiting for it instead would hold the next runner for up to a
budget plus the queue's wait, with nothing to show; a cancel costs at most one budget.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .candidate import Candidate, files_at
from .curves import curve_path_for
from .engine import Engine
from .events import CampaignListener
from .executors.base import NOTE_PREFIX, Executor
from .journal import clear_journal, digest, read_journal
from .keep_rules import keep_rule_for
from .live import process_alive, read_json, write_json_atomic
from .outcome import result_of, row_for
from .containment import kill_process_tree, kill_run
from .status import INTERRUPTED, Status
from .summary import LINE_BREAKS
from .working_copy import working_copy, write_working_copy


@dataclass
class RecoveryReport:
    """What recovery did."""

    recorded: list[int] = field(default_factory=list)      # experiments recorded as interrupted
    restored: list[str] = field(default_factory=list)      # editable files put back to the branch tip
    kept: list[str] = field(default_factory=list)          # editable files holding the user's own edit, left alone
    descriptions: dict[int, str] = field(default_factory=dict)
    from_logs: list = field(default_factory=list)          # results of cluster runs that finished unheard
    left_jobs: dict[int, str] = field(default_factory=dict)  # experiment -> what became of its cluster job

    def text(self) -> str:
        """Returns one line for the user."""
        parts = []
        for result in self.from_logs:
            verdict = result.crash_reason if result.status == Status.CRASH else \
                f"{result.status}, {'no value' if result.metric is None else f'{result.metric:.6f}'}"
            parts.append(f"experiment #{result.experiment}{'' if result.run == 1 else f' run {result.run}'} "
                         f"({result.description!r}) finished while no runner was listening; recorded from its log: "
                         f"{verdict}")
        for number in self.recorded:
            if number in self.left_jobs:
                parts.append(f"experiment #{number} ({self.descriptions.get(number, '')!r}) was cut off: "
                             f"{self.left_jobs[number]}; recorded as a crash, 'interrupted'")
                continue
            parts.append(f"experiment #{number} ({self.descriptions.get(number, '')!r}) was cut off "
                         f"(kernel restart?): recorded as a crash, 'interrupted'; its training process is gone")
        if self.restored:
            parts.append(f"put {', '.join(self.restored)} back to the best commit")
        if self.kept:
            parts.append(f"kept your edited {', '.join(self.kept)} as it is (it is not what the cut-off "
                         f"experiment ran; `git diff` shows it against the best)")
        return "; ".join(parts) or "cleaned up after a runner that stopped"


def recover(campaign) -> RecoveryReport | None:
    """Records what a dead runner left (see module doc); returns what was done, or None when nothing was left."""
    assert campaign.lock.held, "recovery runs only under the runner lock"
    journal = read_journal(campaign)
    if journal is None:
        clear_journal(campaign)
        return None
    report = RecoveryReport()
    _record_runs(campaign, journal, report)
    if journal.get("legacy_branch_moved"):
        _move_branch_back(campaign, journal["working_copy"])
    if journal.get("working_copy"):
        _settle_working_copy(campaign, journal["working_copy"], report)
    live = read_json(campaign.paths.live)
    if live and live.get("state") == "running":
        live.update(state="finished", outcome={"status": str(Status.CRASH), "crash_reason": INTERRUPTED})
        write_json_atomic(campaign.paths.live, live)
    clear_journal(campaign)
    campaign.clear_stop_request()
    return report


def _record_runs(campaign, journal: dict, report: RecoveryReport) -> None:
    have = {(r.get("experiment"), r.get("run") or "1") for r in campaign.rows()}
    notes = sorted(journal.get("runs", []), key=lambda n: (n["experiment"], n["run"]))
    for note in notes:
        child = note.get("child_pid")
        if child and process_alive(child, note.get("child_started")):
            kill_process_tree(child)
        if note.get("run_id"):
            kill_run(note["run_id"])   # what survived its shepherd, found by the marker the run set
    notes = [{**n, "launcher": n.get("launcher") or journal.get("launcher", "local"),
              "job_id": n.get("job_id") or (n.get("task") or {}).get("job_id", "")} for n in notes]
    left = _settle_cluster_jobs(notes, report)
    untouched = not any((str(n["experiment"]), str(n["run"])) in have for n in notes)
    if untouched and any(job.state == "finished" for job in left.values()):
        _record_batch(campaign, notes, left, report)   # nothing of the batch recorded yet: judge it whole
        return
    for note in notes:
        if (str(note["experiment"]), str(note["run"])) in have:
            continue
        result = result_of(campaign, note, None, INTERRUPTED)
        campaign.results.append(row_for(campaign, result))
        _note_interrupted(report, note)


def _settle_cluster_jobs(notes: list[dict], report: RecoveryReport) -> dict:
    """Returns what became of each run whose job outlives its runner (a Slurm job), by (experiment, run);
    cancels those that still run or wait. The jobs are settled at once, each in its own thread, so
    waiting for Slurm to end the cancelled ones takes one wait, not one per job."""
    jobs = [n for n in notes if (n.get("task") or {}).get("kind") == "slurm"]
    if not jobs:
        return {}
    from .executors.slurm import settle_left_job   # loads no cluster library

    def settle(note: dict):
        try:
            return settle_left_job(note["task"])
        except Exception:  # a job that cannot be read is recorded as any other cut-off run: interrupted
            return None

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        settled = list(pool.map(settle, jobs))
    left = {}
    for note, job in zip(jobs, settled):
        if job is None:
            continue
        left[(note["experiment"], note["run"])] = job
        if job.state != "finished":
            report.left_jobs[note["experiment"]] = job.detail
    return left


def _note_interrupted(report: RecoveryReport, note: dict) -> None:
    if note["experiment"] not in report.recorded:
        report.recorded.append(note["experiment"])
        report.descriptions[note["experiment"]] = note.get("description", "")


def _record_batch(campaign, notes: list[dict], left: dict, report: RecoveryReport) -> None:
    """Records a batch some of whose cluster jobs finished unheard: those from their result and log,
    the rest as 'interrupted', judged and kept on the engine's path (engine.record_left)."""
    config = campaign.config
    candidates: dict[int, Candidate] = {}
    heard = []
    for note in notes:
        number = note["experiment"]
        if number not in candidates:
            candidates[number] = Candidate(number, note["parent"], note.get("description", ""),
                                           _changed_files(campaign, note["commit"], note["parent"]), sha=note["commit"])
        job = left.get((number, note["run"]))
        if job is not None and job.state == "finished":
            _complete_log(campaign.paths.root / note["log"], job.lines)
            task = job.result
            result = result_of(campaign, {**note, "job_id": task.job_id or note.get("job_id", ""),
                                          "node": task.node or note.get("node", "")}, task.outcome, task.error)
            result.lost_attempts = list(task.lost_attempts)
            heard.append(result)
        else:
            result = result_of(campaign, note, None, INTERRUPTED)
            _note_interrupted(report, note)
        candidates[number].runs.append(result)
    batch = list(candidates.values())
    best = campaign.best()
    first = batch[0]
    # the engine's rule: the campaign's first batch starts with the tip, unchanged
    baseline = first if best is None and len(batch) > 1 and first.sha == first.parent else None
    on_branch = campaign.ledger.current_branch() == config.branch
    engine = Engine(campaign, Executor(), 1, keep_rule_for(config), CampaignListener(), threading.Event())
    engine.record_left(batch, best, baseline, "" if on_branch else f"the working copy is not on {config.branch}")
    report.from_logs.extend(heard)


def _changed_files(campaign, commit: str, parent: str) -> dict[str, str]:
    """Returns the editable files a candidate's commit changed against its parent (its content)."""
    if commit == parent:
        return {}
    editable = campaign.config.editable
    mine, before = files_at(campaign, commit, editable), files_at(campaign, parent, editable)
    return {p: t for p, t in mine.items() if t is not None and t != before[p]}


def _complete_log(path: Path, lines: list[str]) -> None:
    """Appends to a run's log the output lines of its job that its runner did not live to copy.

    The runner copied the job's lines in order, so the log ends with the first lines of the job's
    own log (capped like it); only those after them are missing. Its curve, now short, is dropped:
    readers then take the curve from the whole log."""
    try:
        have = LINE_BREAKS.split(path.read_bytes().decode("utf-8", errors="replace"))
    except OSError:
        have = []
    if have and have[-1] == "":
        have.pop()
    missing = lines[_copied(have, lines):]
    if not missing:
        return
    note = f"{NOTE_PREFIX}the rest of the run's output, from its job's own log (the runner had stopped)]"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write("".join(line + "\n" for line in [note, *missing]).encode("utf-8", errors="replace"))
    curve_path_for(path).unlink(missing_ok=True)


def _copied(have: list[str], lines: list[str]) -> int:
    """Returns how many of `lines` (from the start) the end of `have` holds already; notes of ours
    ("[autoresearch: ...]", which the runner wrote between the job's lines) do not count."""
    ours = lambda line: line.startswith(NOTE_PREFIX)
    have = [line for line in have if not ours(line)]
    theirs = [i for i, line in enumerate(lines) if not ours(line)]
    wanted = [lines[i] for i in theirs]
    for start in range(max(0, len(have) - len(wanted)), len(have)):
        if have[start] == wanted[0] and have[start:] == wanted[:len(have) - start]:
            return theirs[len(have) - start - 1] + 1
    return 0


def _move_branch_back(campaign, record: dict) -> None:
    """A runner of an earlier version moved the branch to the undecided commit: move it back."""
    ledger, config = campaign.ledger, campaign.config
    if ledger.current_branch() == config.branch and ledger.tip() == record["commit"] != record["parent"]:
        ledger.move_branch(record["parent"])
        ledger.sync_index(config.editable)


def _settle_working_copy(campaign, record: dict, report: RecoveryReport) -> None:
    """Puts editable files back to the tip where they hold the engine's content; keeps the user's."""
    editable = campaign.config.editable
    tip = campaign.ledger.tip()
    at_tip = files_at(campaign, tip, editable)
    now = working_copy(campaign)
    if record.get("digests") is not None:
        ours = {p: set(record["digests"].get(p, [])) for p in editable}
    else:  # the earlier form: the engine's content is the experiment's commit
        ran = files_at(campaign, record["commit"], editable)
        ours = {p: {str(digest(ran[p]))} for p in editable}
    restore = {}
    for path in editable:
        if now[path] == at_tip[path]:
            continue
        if str(digest(now[path])) in ours[path] and at_tip[path] is not None:
            restore[path] = at_tip[path]
        else:
            report.kept.append(path)
    if restore:
        write_working_copy(campaign, restore)
        report.restored.extend(sorted(restore))
