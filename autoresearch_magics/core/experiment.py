"""One experiment: commit the hypothesis, run it, decide keep / discard / crash, record it.

Follow one experiment through `run_experiment`: `commit_candidate` (ledger), `execute`
(runner), `decide` (keep rule) and `record` (results.tsv, then the ratchet move).
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .config import ENV_BUDGET, ENV_DATA_DIR, ENV_EXPERIMENT, ENV_SEED, now_utc
from .errors import CampaignError
from .events import CampaignListener, ExperimentResult
from .keep_rules import Decision, KeepRule, keep_rule_for
from .ledger import experiment_ref
from .live import LiveState, write_json_atomic
from .results import ResultRow
from .runner import RunListener, RunOutcome, RunSpec, run
from .summary import is_finite_number

UPDATE_EVERY_S = 0.5   # front-end progress callbacks; well under 10 widget messages a second


def run_experiment(campaign, description: str, files: dict[str, str] | None = None, *,
                   seed: int | None = None, listener: CampaignListener | None = None,
                   stop_event: threading.Event | None = None, keep_rule: KeepRule | None = None,
                   launcher: str = "local") -> list[ExperimentResult]:
    """Runs one experiment (preceded by the baseline if the campaign has none); returns the results.

    `files` replaces editable files before committing; without it the working copy is run as it is.
    """
    listener = listener or CampaignListener()
    own_lock = not campaign.lock.held
    if own_lock:
        campaign.lock.acquire("run")
    try:
        campaign.recover_locked()
        campaign.ledger.check_on_branch(campaign.config.branch)
        if files:
            write_editable(campaign, files)
        rule = keep_rule or keep_rule_for(campaign.config)
        results = []
        if not campaign.rows() and campaign.ledger.changed_paths(campaign.config.editable):
            results += _run_isolated_baseline(campaign, seed, listener, stop_event, rule, launcher)
        number, sha, parent = commit_candidate(campaign, description)
        results += run_and_decide(campaign, number, sha, parent, description, seed, listener, stop_event, rule,
                                  launcher)
        return results
    finally:
        if own_lock:
            campaign.lock.release()


def write_editable(campaign, files: dict[str, str]) -> None:
    """Writes new content for editable files; refuses any other path."""
    allowed = set(campaign.config.editable)
    for path, text in files.items():
        if path not in allowed:
            raise CampaignError(f"an experiment may only change {', '.join(sorted(allowed))}, not {path}")
        target = campaign.paths.root / path
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)


def commit_candidate(campaign, description: str) -> tuple[int, str, str]:
    """Commits the editable files as experiment N's hypothesis; returns (N, commit, parent).

    An unchanged working copy re-runs the tip: the experiment's commit is then the tip itself.
    """
    ledger, config = campaign.ledger, campaign.config
    parent = ledger.tip()
    sha = ledger.commit_files(config.editable, description or "experiment") or parent
    number = campaign.next_experiment()
    ledger.set_ref(experiment_ref(config.tag, number), sha)
    return number, sha, parent


class _Progress(RunListener):
    """Feeds runner output to the live file and, throttled, to the front-end listener."""

    def __init__(self, live: LiveState, listener: CampaignListener, record: dict, current_path) -> None:
        self.live, self.listener, self.record, self.current_path = live, listener, record, current_path
        self._next = 0.0

    def started(self, pid: int) -> None:
        import psutil
        try:
            self.record["child_started"] = psutil.Process(pid).create_time()
        except psutil.Error:
            pass
        self.record["child_pid"] = pid
        write_json_atomic(self.current_path, self.record)
        self.live.on_start(pid)

    def lines(self, lines: list[str]) -> None:
        self.live.on_lines(lines)
        self._tick()

    def sampled(self, rss_mb: float) -> None:
        self.live.on_rss(rss_mb)
        self._tick()

    def _tick(self) -> None:
        self.live.flush()
        now = time.monotonic()
        if now >= self._next:
            self._next = now + UPDATE_EVERY_S
            self.listener.updated(self.live.snapshot())


def execute(campaign, number: int, run_index: int, sha: str, parent: str, description: str,
            seed: int | None, listener: CampaignListener, stop_event: threading.Event | None,
            launcher: str = "local", workdir: Path | None = None,
            pending: list[dict] | None = None) -> tuple[ExperimentResult, LiveState]:
    """Runs experiment `number`'s command once; returns the classified outcome (undecided unless
    a crash) and the live state to finish once it is decided."""
    paths, config = campaign.paths, campaign.config
    log_path = paths.log_for(number, run_index)
    started_at = now_utc().isoformat()
    current = {"experiment": number, "run": run_index, "commit": sha, "parent": parent,
               "description": description, "started_at": started_at, "seed": seed,
               "log": os.path.relpath(log_path, paths.root), "runner_pid": os.getpid(), "launcher": launcher,
               "pending": pending or []}  # finished runs of this experiment still awaiting the verdict
    write_json_atomic(paths.current, current)
    paths.stop_request.unlink(missing_ok=True)
    live = LiveState(paths, number, description, sha, config.budget_s, run_index)
    diff = "" if sha == parent or not listener.wants_diff else campaign.ledger.diff(parent, sha, config.editable)
    listener.experiment_started({"experiment": number, "run": run_index, "description": description,
                                 "commit": sha[:7], "parent": parent[:7], "diff": diff,
                                 "budget_s": config.budget_s, "log_path": str(log_path)})
    env = child_env(campaign, number, seed)

    def should_stop() -> bool:
        return (stop_event is not None and stop_event.is_set()) or paths.stop_request.exists()

    spec = RunSpec(command=config.command, cwd=str(workdir or paths.root), log_path=str(log_path), env=env,
                   timeout_s=config.effective_timeout_s, log_cap_bytes=int(config.log_cap_mb * 2**20))
    outcome = run(spec, _Progress(live, listener, current, paths.current), should_stop)
    metric, reason = classify(outcome, config.metric, config.effective_timeout_s)
    summary = outcome.summary
    vram_mb = summary.get("peak_vram_mb")
    memory_gb = (vram_mb / 1024 if is_finite_number(vram_mb) and vram_mb > 0 else outcome.peak_rss_mb / 1024)
    training_s = summary.get("training_seconds")
    result = ExperimentResult(
        experiment=number, run=run_index, commit=sha, parent=parent,
        status="crash" if reason else "pending", metric=metric, best_before=None, description=description,
        crash_reason=reason, log_path=os.path.relpath(log_path, paths.root), wall_s=outcome.wall_s,
        training_seconds=training_s if is_finite_number(training_s) else None, memory_gb=memory_gb,
        peak_rss_gb=outcome.peak_rss_mb / 1024, summary=summary, tail=outcome.tail[-15:], seed=seed,
        started_at=started_at, launcher=launcher)
    return result, live


def child_env(campaign, number: int, seed: int | None) -> dict:
    """Returns the environment variables a training run gets on top of the inherited ones."""
    paths, config = campaign.paths, campaign.config
    env = {ENV_BUDGET: f"{config.budget_s:g}", ENV_DATA_DIR: str(paths.data), ENV_EXPERIMENT: str(number),
           # `python` in the command means this interpreter, also in a kernel whose PATH lacks its venv
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    if seed is not None:
        env[ENV_SEED] = str(seed)
    return env


def classify(outcome: RunOutcome, metric: str, timeout_s: float) -> tuple[float | None, str]:
    """Returns (metric value, "") for a usable run, or (None, crash reason)."""
    if outcome.stopped:
        return None, "stopped by user"
    if outcome.timed_out:
        return None, f"timeout: killed after {timeout_s:g}s"
    if outcome.returncode != 0:
        if outcome.saw_fail:
            return None, "FAIL: training diverged (loss NaN or exploding)"
        if outcome.returncode is not None and outcome.returncode < 0:
            name = signal.Signals(-outcome.returncode).name if -outcome.returncode in signal.valid_signals() else ""
            return None, f"killed by signal {name or -outcome.returncode} (out of memory?)"
        return None, f"exit code {outcome.returncode}" + _error_hint(outcome.tail)
    if not outcome.summary:
        return None, "no summary block: the script must end by printing '---' and 'key: value' lines"
    value = outcome.summary.get(metric)
    if value is None:
        return None, f"summary has no {metric} (keys: {', '.join(list(outcome.summary)[:8])})"
    if not is_finite_number(value):
        return None, f"{metric} is {value} (not a finite number)"
    return float(value), ""


def _error_hint(tail: list[str]) -> str:
    """Returns ': <last exception line>' from a traceback in the output tail, or ''."""
    for line in reversed(tail):
        text = line.strip()
        head = text.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt", "Exit")) and " " not in head:
            return ": " + text[:200]
    return ""


def run_and_decide(campaign, number: int, sha: str, parent: str, description: str, seed: int | None,
                   listener: CampaignListener, stop_event: threading.Event | None, rule: KeepRule,
                   launcher: str = "local", workdir: Path | None = None,
                   move_branch: bool = True) -> list[ExperimentResult]:
    """Runs experiment `number` as many times as the keep rule asks, then records every run."""
    best = campaign.best()
    runs: list[tuple[ExperimentResult, LiveState]] = []
    while True:
        run_index = len(runs) + 1
        run_seed = seed if seed is not None else rule.seed_for(number, run_index)
        result, live = execute(campaign, number, run_index, sha, parent, description, run_seed, listener,
                               stop_event, launcher, workdir, pending=[row_for(campaign, r).record(
                                   campaign.config.metric) for r, _ in runs])
        runs.append((result, live))
        if result.status == "crash":
            verdict = Decision("crash", result.crash_reason if run_index == 1 else
                               f"run {run_index} crashed: {result.crash_reason}")
            break
        verdict = rule.decide(campaign, [r.metric for r, _ in runs], best)
        if verdict.more_runs <= 0 or (stop_event is not None and stop_event.is_set()):
            break
    return record(campaign, runs, verdict, best, listener, move_branch)


def record(campaign, runs: list, verdict: Decision, best: dict | None, listener: CampaignListener,
           move_branch: bool = True) -> list[ExperimentResult]:
    """Appends one row per run with the verdict, then advances or reverts the branch."""
    config, paths = campaign.config, campaign.paths
    best_value = best["value"] if best else None
    status = "keep" if verdict.status == "keep" else "discard"
    results = []
    for result, _ in runs:
        result.best_before = best_value
        if result.status != "crash":
            result.status = status
        result.evidence = verdict.evidence
        campaign.results.append(row_for(campaign, result))
        results.append(result)
    first = results[0]
    write_json_atomic(paths.current, {"experiment": first.experiment, "commit": first.commit,
                                      "parent": first.parent, "recorded": True, "kept": status == "keep"})
    if move_branch and verdict.status != "keep" and first.commit != first.parent:
        campaign.ledger.revert_to(first.parent, config.editable)
    paths.current.unlink(missing_ok=True)
    paths.stop_request.unlink(missing_ok=True)
    for result, live in runs:
        live.finish({"status": result.status, "metric": result.metric, "delta": result.delta,
                     "crash_reason": result.crash_reason, "evidence": result.evidence})
        listener.experiment_finished(result)
    return results


def row_for(campaign, result: ExperimentResult) -> ResultRow:
    """Returns the results.tsv row of a decided run."""
    config = campaign.config
    crash = result.status == "crash"
    return ResultRow(
        commit=result.commit, metric=None if crash else result.metric,
        memory_gb=0.0 if crash else round(result.memory_gb, 1), status=result.status,
        description=result.description,
        extra={"experiment": result.experiment, "run": result.run, "parent": result.parent[:7],
               "branch": config.branch, "started_at": result.started_at,
               "elapsed_min": f"{result.wall_s / 60:.2f}",
               "training_seconds": "" if result.training_seconds is None else f"{result.training_seconds:.1f}",
               "peak_rss_gb": f"{result.peak_rss_gb:.2f}", "crash_reason": result.crash_reason,
               "seed": "" if result.seed is None else result.seed, "log": result.log_path,
               "command": config.command, "launcher": result.launcher, "job_id": result.job_id,
               "node": result.node,
               "evidence": result.evidence})


def _run_isolated_baseline(campaign, seed, listener, stop_event, rule, launcher) -> list[ExperimentResult]:
    """Runs the unchanged tip as the baseline in a temporary worktree, leaving the edited files alone."""
    ledger = campaign.ledger
    tip = ledger.tip()
    number = campaign.next_experiment()
    ledger.set_ref(experiment_ref(campaign.config.tag, number), tip)
    with tempfile.TemporaryDirectory(prefix="baseline-", dir=campaign.paths.state) as tmp:
        workdir = Path(tmp) / "tree"
        ledger.add_worktree(workdir, tip)
        try:
            sub = os.path.relpath(campaign.paths.root, ledger.repo.working_tree_dir)
            return run_and_decide(campaign, number, tip, tip, "baseline", seed, listener, stop_event, rule,
                                  launcher, workdir=workdir / sub, move_branch=False)
        finally:
            ledger.remove_worktree(workdir)
