"""The engine: runs a batch of candidates on an executor, judges them, records them, moves the branch.

A single experiment is a batch of one, on the same path as a parallel batch on the local pool,
Ray or Slurm. Follow a batch through `Engine.run`:

1. `_place` decides where a run's files come from: a batch of one on this machine runs in the
   campaign folder (the working copy then holds the candidate, as a researcher expects); every
   other run gets the candidate commit's files in a fresh folder, wherever the executor runs it.
2. `_start` submits each run; the executor's events come back on a queue that this thread alone
   reads (`_on_event`), so only this thread touches the listener, the live file and the journal.
3. A finished run becomes a result in `outcome.result_of` (the one place, crash verdict included);
   `_judge` asks the keep rule, which may want more runs.
   Every run's output lines become its learning curve (curves.py) here, whatever the executor:
   with the campaign's `prune` setting, a run whose curve is hopeless against the best's (pruning.py)
   is cancelled and recorded as a discard whose evidence says where it was stopped.
4. Honest verdicts (verdict_checks.py): a candidate with the best's own code is another measurement
   of the best, never a keep; a verdict on runs that got a very different share of the machine than
   the best's is re-run once, then marked (a keep on it becomes a discard).
5. `_record` keeps at most one candidate (the best the rule would keep), writes one row per run
   through `outcome.row_for`, and `_settle` moves the branch: the one place it moves.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .candidate import Candidate, files_at
from .curves import CurveRecorder, CurveWatch, curve_path_for, campaign_curves
from .config import ENV_BUDGET, ENV_EXPERIMENT, ENV_SEED, now_utc
from .events import CampaignListener, ExperimentResult
from .executors.base import ClusterLostError, Executor, TaskResult, TaskSink, TaskSpec
from .journal import clear_journal, digest, write_journal
from .keep_rules import Decision, KeepRule
from .live import LiveState, write_json_atomic
from .outcome import result_of, row_for
from .phases import BudgetCheck
from .progress_line import parse_progress_line
from .pruning import prune_reference
from .status import STOPPED_BY_USER, Status
from .verdict_checks import load_fairness, remeasure_decision, same_code_as
from .working_copy import tree_files, working_copy, write_working_copy

POLL_S = 0.25          # stop checks while a batch runs
LIVE_EVERY_S = 1.0     # live.json rewrites
UPDATE_EVERY_S = 0.5   # front-end progress callbacks per run; well under 10 widget messages a second
CURVE_POINTS_SHOWN = 60  # curve points a front-end event carries (thinned evenly)


def thin_curve(points, limit: int = CURVE_POINTS_SHOWN, column: str = "loss") -> list[list[float]]:
    """Returns [[training_seconds, value], ...] of `points`, at most `limit` of them evenly spread (the
    last one always kept): small enough for a widget message."""
    pairs = [[p.get("training_seconds"), p.get(column)] for p in points]
    pairs = [[round(float(t), 2), float(v)] for t, v in pairs
             if isinstance(t, (int, float)) and isinstance(v, (int, float)) and v == v]
    if len(pairs) <= limit:
        return pairs
    step = len(pairs) / (limit - 1)
    return [pairs[int(i * step)] for i in range(limit - 1)] + [pairs[-1]]


@dataclass(eq=False)
class _Run:
    """One run of a candidate, from submission to its result."""

    candidate: Candidate
    index: int
    seed: int | None
    log_path: Path
    started_at: str
    live: LiveState
    handle: object = None
    job_id: str = ""
    node: str = ""
    pid: int | None = None
    child_started: float | None = None
    run_id: str = ""
    next_update: float = 0.0
    watch: CurveWatch | None = None   # its curve, and the pruner judging it
    budget: BudgetCheck | None = None  # whether the script's own budget is the campaign's (phases.py)
    planned_at: float = 0.0           # monotonic: the engine began starting it (its overhead counts from here)
    finished_at: float = 0.0          # monotonic: its end reached the engine
    pruned: str = ""                  # the pruner's evidence once it gave up on the run

    def note(self, root: Path, launcher: str) -> dict:
        """Returns what the journal and the result need to know about this run."""
        c = self.candidate
        note = {"experiment": c.number, "run": self.index, "commit": c.sha, "parent": c.parent,
                "description": c.description, "started_at": self.started_at, "seed": self.seed,
                "log": os.path.relpath(self.log_path, root), "launcher": launcher, "job_id": self.job_id,
                "node": self.node, "child_pid": self.pid, "child_started": self.child_started,
                "run_id": self.run_id}
        where = getattr(self.handle, "journal", dict)()   # a cluster job that outlives its runner
        if where:
            note["task"] = where
        return note


class _Sink(TaskSink):
    """Hands a run's events to the engine's thread."""

    def __init__(self, events: queue.Queue, run: _Run) -> None:
        self.events, self.run = events, run

    def started(self, job_id, node, pid=None):
        self.events.put(("started", self.run, (job_id, node, pid)))

    def lines(self, lines):
        self.events.put(("lines", self.run, lines))

    def sampled(self, rss_mb):
        self.events.put(("rss", self.run, rss_mb))

    def finished(self, result):
        self.events.put(("finished", self.run, result))


class _NoHandle:
    def cancel(self) -> None:
        pass


class Engine:
    """Runs batches of candidates for one runner (which holds the campaign lock)."""

    def __init__(self, campaign, executor: Executor, slots: int, rule: KeepRule,
                 listener: CampaignListener, stop_event: threading.Event) -> None:
        self.campaign, self.executor, self.slots, self.rule = campaign, executor, max(1, slots), rule
        self.listener, self.stop_event = listener, stop_event
        self._trees: dict[str, tuple[dict, list]] = {}
        self.stopped = False             # the last batch was stopped (by the stop event or a stop request)
        self.ready = lambda: None        # waits for the executor to be open (set by the runner)

    # -- one batch -------------------------------------------------------------------------------
    def run(self, candidates: list[Candidate]) -> list[ExperimentResult]:
        """Runs, judges and records `candidates`; returns every run's result in experiment order."""
        self.ready()
        best = self.campaign.best()
        # a baseline in the batch (the campaign's first) is the best the others are judged against
        self._baseline = candidates[0] if best is None and candidates[0].proposal is None and len(candidates) > 1 \
            else None
        in_place = self._place(candidates)
        self._events: queue.Queue = queue.Queue()
        self._running: list[_Run] = []
        self._finished: list[_Run] = []
        waiting: deque[tuple[Candidate, int]] = deque((c, 1) for c in candidates)
        outstanding = {c: 1 for c in candidates}
        stopping = self.stopped = False
        next_live = 0.0
        paths = self.campaign.paths
        paths.data.mkdir(exist_ok=True)  # a worker on this machine then shares the campaign's data
        self._best_code = None
        # the best stays fixed through a batch: one pruning reference and one best curve for all its runs
        self._prune = prune_reference(self.campaign) if self.campaign.config.prune and best else None
        self._best_curve = self._curve_of_best(best)
        try:
            while waiting or self._running:
                while waiting and len(self._running) < self.slots and not stopping:
                    self._start(*waiting.popleft(), in_place)
                more = self._on_event(outstanding, best, stopping)
                for candidate, count in more:
                    waiting.extend((candidate, len(candidate.runs) + k + 1) for k in range(count))
                    outstanding[candidate] = count
                if not stopping and self._stop_requested():
                    stopping = self.stopped = True
                    self._stop(waiting, outstanding, best)
                    waiting.clear()
                now = time.monotonic()
                if now >= next_live and self._running:
                    next_live = now + LIVE_EVERY_S
                    self._write_live()
        finally:
            for run in self._running:  # interrupted (a second Ctrl-C): leave nothing running anywhere
                try:
                    run.handle.cancel()
                except Exception:
                    pass
        if self._baseline is not None:
            best = self._judge_against_baseline(candidates)
        return self._record(candidates, best, in_place)

    def record_left(self, candidates: list[Candidate], best: dict | None, baseline: Candidate | None = None,
                    no_keep: str = "") -> list[ExperimentResult]:
        """Judges and records a batch whose runs ended while no runner listened (recovery.py), on the
        same path as `run`: verdicts as for a stopped batch, at most one keep, one row per run, the
        branch moved. `no_keep` (a reason) turns every keep into a discard."""
        self._baseline, self._best_code, self._finished, self._working_copy = baseline, None, [], None
        for candidate in candidates:
            self._judge(candidate, best, True)
        if baseline is not None:
            best = self._judge_against_baseline(candidates)
        for candidate in candidates:
            if no_keep and candidate is not baseline and candidate.verdict.status == Status.KEEP:
                candidate.verdict = Decision(Status.DISCARD, f"{candidate.verdict.evidence}; not kept: {no_keep}")
        return self._record(candidates, best, False)

    def _curve_of_best(self, best: dict | None) -> list:
        """Returns the best experiment's first run's curve, thinned, for front ends ([] if none)."""
        if not best or not str(best.get("key", "")).isdigit():
            return []
        try:
            frame = campaign_curves(self.campaign, [int(best["key"])])
        except Exception:  # a curve is for display: an unreadable one shows nothing
            return []
        if frame.empty:
            return []
        first = frame[frame["run"] == frame["run"].min()]
        return thin_curve(first.to_dict("records"))

    def _judge_against_baseline(self, candidates: list[Candidate]) -> dict | None:
        """Judges a batch's candidates against the baseline that ran beside them; returns that best."""
        baseline = self._baseline
        value = baseline.value
        best = None if value is None else {"value": value, "values": [r.metric for r in baseline.runs]}
        for candidate in candidates:
            if candidate is baseline or candidate.verdict is None or candidate.verdict.status == Status.CRASH \
                    or any(r.pruned for r in candidate.runs):
                continue
            if candidate.sha == baseline.sha:  # the baseline's own code: another measurement of it
                candidate.verdict = remeasure_decision(baseline.number, [r.metric for r in candidate.runs])
            else:
                candidate.verdict = self.rule.decide(self.campaign, [r.metric for r in candidate.runs], best)
        return best

    def _place(self, candidates: list[Candidate]) -> bool:
        """Returns True when the batch runs in the working copy, after writing the candidate there.

        Only a batch of one on this machine does, and only when the working copy holds the
        candidate already or the branch tip's content: a user's other edit is never overwritten
        (the baseline of a campaign whose train.py was edited first then runs in a folder of its own).
        """
        if len(candidates) != 1 or self.slots != 1 or not self.executor.runs_here:
            self._working_copy = None
            return False
        candidate = candidates[0]
        editable = self.campaign.config.editable
        at_parent = files_at(self.campaign, candidate.parent, editable)
        wanted = {p: candidate.files.get(p, at_parent[p]) for p in editable}
        now = working_copy(self.campaign)
        self._working_copy = {"experiment": candidate.number,
                              "digests": {p: sorted({str(digest(wanted[p])), str(digest(at_parent[p]))})
                                          for p in editable}}
        if now != wanted and now != at_parent:
            self._working_copy = None
            return False
        if now != wanted:
            write_working_copy(self.campaign, {p: t for p, t in wanted.items() if t is not None})
        return True

    # -- starting and following runs ---------------------------------------------------------------
    def _start(self, candidate: Candidate, index: int, in_place: bool) -> None:
        """Submits run `index` of `candidate`, once its commit exists (so the journal can name it)."""
        planned_at = time.monotonic()
        candidate.resolve(self.campaign)
        run = self._planned(candidate, index)
        run.planned_at = planned_at
        config, paths = self.campaign.config, self.campaign.paths
        env = {ENV_BUDGET: f"{config.budget_s:g}", ENV_EXPERIMENT: str(candidate.number)}
        if run.seed is not None:
            env[ENV_SEED] = str(run.seed)
        files, executable = ({}, []) if in_place else self._tree_of(candidate)
        spec = TaskSpec(experiment=candidate.number, run=index, tag=config.tag, command=config.command, files=files,
                        executable=executable, env=env, timeout_s=config.effective_timeout_s,
                        startup_timeout_s=config.effective_startup_timeout_s,
                        log_cap_bytes=int(config.log_cap_mb * 2**20), gpus=self.executor.gpus_per_experiment,
                        data_dir=str(paths.data), workdir=str(paths.root) if in_place else "")
        run.run_id = spec.run_id   # journaled, so a later recovery finds the run's processes by their marker
        recorder = CurveRecorder(curve_path_for(run.log_path), config.budget_s)
        recorder.start()
        run.watch = CurveWatch(recorder, self._prune.pruner() if self._prune is not None else None)
        run.budget = BudgetCheck(config.budget_s)
        sink = _Sink(self._events, run)
        self._running.append(run)
        self._journal()
        self._announce(run)
        try:
            run.handle = self.executor.submit(spec, str(run.log_path), sink)
        except ClusterLostError:
            raise                 # the cluster is gone: every later run would fail the same way
        except Exception as exc:  # this run crashes; the batch goes on
            run.handle = _NoHandle()
            sink.finished(TaskResult(None, f"could not submit: {type(exc).__name__}: {exc}"))
        else:
            self._journal()   # with where the task runs, so a later recovery can find it

    def _planned(self, candidate: Candidate, index: int) -> _Run:
        paths, config = self.campaign.paths, self.campaign.config
        seed = candidate.seed if candidate.seed is not None else self.rule.seed_for(candidate.number, index)
        live = LiveState(paths, candidate.number, candidate.description, candidate.sha, config.budget_s, index)
        return _Run(candidate, index, seed, paths.log_for(candidate.number, index), now_utc().isoformat(), live)

    def _tree_of(self, candidate: Candidate) -> tuple[dict, list]:
        """Returns the candidate commit's files (the parent's tree with the candidate's files) and the
        executable ones: what a worker needs to run it without git or a shared filesystem."""
        if candidate.parent not in self._trees:
            self._trees[candidate.parent] = tree_files(self.campaign.ledger, candidate.parent,
                                                       self.campaign.paths.root)
        files, executable = self._trees[candidate.parent]
        if candidate.files:
            files = {**files, **{path: text.encode() for path, text in candidate.files.items()}}
            executable = [path for path in executable if path not in candidate.files]
        return files, executable

    def _announce(self, run: _Run) -> None:
        """Tells the listener that a run started, once its commit exists (see events.py for the fields)."""
        candidate, config = run.candidate, self.campaign.config
        sha = candidate.sha
        run.live.data["commit"] = sha[:7]
        self.listener.experiment_started({
            "experiment": candidate.number, "run": run.index, "description": candidate.description,
            "commit": sha[:7], "parent": candidate.parent[:7], "diff": candidate.diff,
            "params": dict(candidate.params), "budget_s": config.budget_s, "log_path": str(run.log_path),
            "launcher": self.executor.name, "best_curve": self._best_curve})

    def _on_event(self, outstanding: dict, best: dict | None, stopping: bool) -> list[tuple[Candidate, int]]:
        """Handles at most one executor event; returns the candidates that want more runs."""
        try:
            kind, run, payload = self._events.get(timeout=POLL_S)
        except queue.Empty:
            kind, run = None, None
        more = []
        if kind == "started":
            self._on_started(run, *payload)
        elif kind == "lines":
            run.live.on_lines(payload)
            self._watch(run, payload)
            self._check_budget(run, payload)
        elif kind == "rss":
            run.live.on_rss(payload)
        elif kind == "finished":
            self._on_finished(run, payload)
            outstanding[run.candidate] -= 1
            if outstanding[run.candidate] == 0:
                count = self._judge(run.candidate, best, stopping)
                if count:
                    more.append((run.candidate, count))
        now = time.monotonic()
        if kind in ("lines", "rss") and now >= run.next_update:
            run.next_update = now + UPDATE_EVERY_S
            snapshot = run.live.snapshot()
            if run.watch is not None:
                snapshot["curve"] = thin_curve(run.watch.recorder.points)
            self.listener.updated(snapshot)
        return more

    def _watch(self, run: _Run, lines: list[str]) -> None:
        """Adds `lines` to the run's curve; cancels the run when its pruner gives up on it."""
        if run.watch is None:
            return
        try:
            decision = run.watch.lines(lines)
        except OSError as exc:  # a curve that cannot be written costs the curve, not the run
            self.listener.message(f"experiment {run.candidate.number}: curve not recorded ({exc})")
            run.watch = None
            return
        if decision is not None and not run.pruned:
            run.pruned = decision.evidence
            self.listener.message(f"experiment {run.candidate.number}: {decision.evidence}")
            run.handle.cancel()

    def _check_budget(self, run: _Run, lines: list[str]) -> None:
        """Says once per campaign process when the script's own budget is not the campaign's."""
        if run.budget is None:
            return
        for line in lines:
            point = parse_progress_line(line)
            if point is not None:
                run.budget.point(point)
        if not getattr(self, "_budget_told", False):
            text = run.budget.message(run.candidate.number)
            if text:
                self._budget_told = True
                self.listener.message(text)

    def _on_started(self, run: _Run, job_id: str, node: str, pid: int | None) -> None:
        run.job_id, run.node, run.pid = job_id, node, pid
        run.live.data.update(job_id=job_id, node=node, child_pid=pid)
        if pid:
            try:
                import psutil
                run.child_started = psutil.Process(pid).create_time()
            except Exception:  # gone already: recovery then has nothing to kill
                pass
        self._journal()
        self._write_live()

    def _on_finished(self, run: _Run, task: TaskResult) -> None:
        if run in self._running:
            self._running.remove(run)
        self._finished.append(run)
        note = run.note(self.campaign.paths.root, self.executor.name)
        note["job_id"], note["node"] = task.job_id or run.job_id, task.node or run.node
        if run.watch is not None:
            try:
                run.watch.close()
            except OSError:
                pass
        run.finished_at = time.monotonic()
        wall = task.outcome.wall_s if task.outcome is not None else 0.0
        result = result_of(self.campaign, note, task.outcome, task.error, self._stop_reason(), pruned=run.pruned,
                           timeout_reason=(run.budget.timeout_reason() or "") if run.budget else "",
                           overhead_s=run.finished_at - run.planned_at - wall)
        result.lost_attempts = list(task.lost_attempts)
        run.candidate.runs.append(result)
        run.candidate.runs.sort(key=lambda r: r.run)
        self._journal()

    # -- stopping ------------------------------------------------------------------------------------
    def _stop_requested(self) -> bool:
        return self.stop_event.is_set() or self.campaign.stop_requested()

    def _stop_reason(self) -> str:
        """Returns the crash reason of a stopped run: 'interrupted' when the kernel shuts down."""
        if self.campaign.stop_requested():
            return STOPPED_BY_USER
        return getattr(self.stop_event, "reason", "") or STOPPED_BY_USER

    def _stop(self, waiting, outstanding: dict, best: dict | None) -> None:
        """Cancels every running run; a first run never started is recorded as stopped."""
        self.listener.message(f"stopping {len(self._running)} running experiment(s)")
        reason = self._stop_reason()
        for candidate, index in waiting:
            outstanding[candidate] -= 1
            if index == 1:  # a first run never started is still an attempt with a number and a ref
                candidate.resolve(self.campaign)
                run = self._planned(candidate, index)
                self._finished.append(run)
                candidate.runs.append(result_of(self.campaign, run.note(self.campaign.paths.root, self.executor.name),
                                                None, f"{reason} before it started"))
            if outstanding[candidate] == 0:
                self._judge(candidate, best, True)
        for run in self._running:
            run.handle.cancel()

    # -- deciding and recording ------------------------------------------------------------------------
    def _judge(self, candidate: Candidate, best: dict | None, stopping: bool) -> int:
        """Gives `candidate` its verdict from the keep rule; returns how many more runs the rule wants."""
        crashed = next((r for r in candidate.runs if r.status == Status.CRASH), None)
        if crashed is not None:
            reason = crashed.crash_reason if crashed.run == 1 else f"run {crashed.run} crashed: {crashed.crash_reason}"
            candidate.verdict = Decision(Status.CRASH, reason)
            return 0
        pruned = next((r for r in candidate.runs if r.pruned), None)
        if pruned is not None:
            candidate.verdict = Decision(Status.DISCARD, pruned.evidence)
            return 0
        if self._is_best_code(candidate, best):
            candidate.verdict = remeasure_decision(best["key"], [r.metric for r in candidate.runs])
            return 0
        verdict = self.rule.decide(self.campaign, [r.metric for r in candidate.runs], best)
        stopping = stopping or self._stop_requested()
        if verdict.more_runs <= 0 and best is not None and candidate is not self._baseline:
            verdict, rerun = self._check_load(candidate, best, verdict, stopping)
            if rerun:
                candidate.verdict = verdict
                return 1
        if verdict.more_runs > 0 and stopping:  # a verdict the rule has not reached is no keep
            verdict = Decision(Status.DISCARD, f"{verdict.evidence}; stopped before the {verdict.more_runs} more "
                                               f"run(s) the keep rule asked for")
        candidate.verdict = verdict
        return max(0, verdict.more_runs)

    def _is_best_code(self, candidate: Candidate, best: dict | None) -> bool:
        """Returns True when the candidate's editable files are byte for byte the best's."""
        if best is None or candidate is self._baseline or not best.get("commit"):
            return False
        editable = self.campaign.config.editable
        if self._best_code is None:
            try:
                self._best_code = files_at(self.campaign, best["commit"], editable)
            except Exception:  # the best's commit is unreadable: nothing to compare with
                self._best_code = {}
        if not self._best_code:
            return False
        mine = files_at(self.campaign, candidate.sha, editable)
        present = lambda files: {p: t for p, t in files.items() if t is not None}
        return same_code_as(present(self._best_code), present(mine))

    def _check_load(self, candidate: Candidate, best: dict, verdict: Decision,
                    stopping: bool) -> tuple[Decision, bool]:
        """Applies the fair-load check to the rule's verdict; returns (verdict, re-run the candidate).

        The candidate is compared by its latest run's machine share against the best's runs' shares.
        An unfair verdict is re-run once (the candidate: the one run the batch can repeat); after
        that, or when stopping, it is marked (a keep becomes a discard)."""
        floor = self.campaign.config.fair_min_cpu_s
        if (candidate.runs[-1].cpu_s or 0.0) < floor:
            return verdict, False      # too little CPU work for its share to say anything
        rows = self.campaign.experiments().get(str(best["key"]), [])
        best_shares = []
        for row in rows:
            try:
                if float(row.get("cpu_s") or 0) >= floor:
                    best_shares.append(float(row.get("machine_share") or "nan"))
            except ValueError:
                pass
        best_shares = [s for s in best_shares if s == s] or None
        latest = candidate.runs[-1].machine_share
        reruns_left = 0 if stopping or candidate.load_reruns else 1
        fairness = load_fairness(latest, best_shares, str(verdict.status), reruns_left,
                                 self.campaign.config.max_share_gap)
        if fairness.fair:
            return verdict, False
        if fairness.action == "rerun":
            candidate.load_reruns += 1
            self.listener.message(f"experiment {candidate.number}: {fairness.evidence}; running it once more")
            return Decision(verdict.status, f"{verdict.evidence}; {fairness.evidence}", 0), True
        return fairness.apply(Decision(verdict.status, verdict.evidence, verdict.more_runs)), False

    def _record(self, candidates: list[Candidate], best: dict | None, in_place: bool) -> list[ExperimentResult]:
        """Keeps at most one candidate, writes one row per run, then moves the branch; returns the results."""
        campaign = self.campaign
        baseline = self._baseline
        winner = decide(campaign.config, [c for c in candidates if c is not baseline])
        if winner is not None and campaign.ledger.tip() != winner.parent:
            winner.verdict = Decision(Status.DISCARD, f"{winner.verdict.evidence}; not kept: the branch moved "
                                                      f"during the batch")
            winner = None
        results = []
        if baseline is not None and baseline.verdict is None:
            baseline.verdict = Decision(Status.CRASH, STOPPED_BY_USER)
        # the recording after the batch is the overhead of the run that ended last: an earlier run's time
        # after its exit went to the runs that followed it, and would otherwise be counted twice
        last = max(self._finished, key=lambda r: r.finished_at, default=None)
        last_key = (last.candidate.number, last.index) if last is not None and last.finished_at else None
        for candidate in candidates:
            kept = candidate is winner or (candidate is baseline and candidate.verdict.status == Status.KEEP)
            status = Status.KEEP if kept else Status.DISCARD
            for result in candidate.runs:
                result.best_before = None if candidate is baseline else best["value"] if best else None
                if result.status != Status.CRASH:
                    result.status = status
                result.evidence = candidate.verdict.evidence
                if (result.experiment, result.run) == last_key and result.phases.get("overhead_s") is not None:
                    since_exit = time.monotonic() - last.finished_at   # the engine's time since its exit
                    result.phases["overhead_s"] = round(result.phases["overhead_s"] + since_exit, 1)
                campaign.results.append(row_for(campaign, result))
                results.append(result)
        self._journal(recorded=True)
        self._settle(candidates, winner)
        clear_journal(campaign)   # a stop request stays: one made while this batch was recorded ends the runner
        self._finish_live(results)
        for result in results:
            self.listener.experiment_finished(result)
        if winner is not None and len(candidates) > 1:
            self.listener.message(f"batch of {len(candidates)}: kept experiment {winner.number} ({winner.value:.6f})")
        elif len(candidates) > 1:
            self.listener.message(f"batch of {len(candidates)}: nothing kept")
        return results

    def _settle(self, candidates: list[Candidate], winner: Candidate | None) -> None:
        """Moves the branch to the kept candidate (if any) and brings the working copy along where it
        holds content of this batch or of the tip; a user's own edit made meanwhile stays as it is."""
        campaign, ledger = self.campaign, self.campaign.ledger
        editable = campaign.config.editable
        parent = candidates[0].parent
        target = winner.sha if winner is not None else parent
        if target != parent:
            ledger.move_branch(target)
        at_parent = files_at(campaign, parent, editable)
        ours = {p: {digest(at_parent[p])} | {digest(c.files[p]) for c in candidates if p in c.files} for p in editable}
        now = working_copy(campaign)
        at_target = at_parent if target == parent else files_at(campaign, target, editable)
        follow = [p for p in editable if digest(now[p]) in ours[p] and now[p] != at_target[p]]
        kept = [p for p in editable if digest(now[p]) not in ours[p] and now[p] != at_target[p]]
        if follow:
            ledger.write_files_from(target, follow)
        if target != parent:
            ledger.sync_index([p for p in editable if p not in follow])
        if kept:
            self.listener.message(f"kept your edit of {', '.join(kept)} (made while the experiment ran): "
                                  f"it is not what the experiment ran")

    def _journal(self, recorded: bool = False) -> None:
        """Notes the runs in flight; once `recorded`, only the working copy may still need settling."""
        runs = [] if recorded else [r.note(self.campaign.paths.root, self.executor.name)
                                   for r in self._running + self._finished]
        write_journal(self.campaign, self.executor.name, runs, self._working_copy)

    def _write_live(self) -> None:
        """Writes live.json: the lowest-numbered running run, with every running one under `parallel`."""
        if not self._running:
            return
        snapshots = [r.live.snapshot() for r in sorted(self._running, key=lambda r: (r.candidate.number, r.index))]
        state = {**snapshots[0], "launcher": self.executor.name}
        if len(snapshots) > 1:
            state["parallel"] = snapshots
        write_json_atomic(self.campaign.paths.live, state)

    def _finish_live(self, results: list[ExperimentResult]) -> None:
        if not results:
            return
        last = results[-1]
        config = self.campaign.config
        live = LiveState(self.campaign.paths, last.experiment, last.description, last.commit, config.budget_s, last.run)
        outcome = {"status": str(last.status), "metric": last.metric, "delta": last.delta,
                   "crash_reason": last.crash_reason, "evidence": last.evidence}
        if len(results) > 1:
            outcome["batch"] = [{"experiment": r.experiment, "run": r.run, "status": str(r.status),
                                 "metric": r.metric} for r in results]
        live.finish(outcome)


def decide(config, candidates: list[Candidate]) -> Candidate | None:
    """Keeps at most one candidate: the best of those the rule would keep; returns it."""
    keepers = [c for c in candidates if c.verdict is not None and c.verdict.status == Status.KEEP
               and c.value is not None]
    winner = None
    for candidate in keepers:  # in number order, so a tie goes to the earlier experiment
        if winner is None or config.better(candidate.value, winner.value):
            winner = candidate
    for candidate in keepers:
        if candidate is not winner:
            candidate.verdict = Decision(Status.DISCARD, f"{candidate.verdict.evidence}; experiment {winner.number} "
                                                         f"did better in the same batch ({winner.value:.6f})")
    for candidate in candidates:
        if candidate.verdict is None:  # stopped before its first run
            candidate.verdict = Decision(Status.CRASH, STOPPED_BY_USER)
    return winner
