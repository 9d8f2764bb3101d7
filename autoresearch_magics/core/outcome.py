"""How a run ended becomes a result, and a result becomes a results.tsv row: the one place for both.

Every path goes through here: a finished run on any executor, a run stopped before it started,
and a run whose runner died (recovery).
"""
from __future__ import annotations

import signal

import psutil

from .events import ExperimentResult
from .phases import PHASE_COLUMNS, run_phases
from .results import ResultRow
from .runner import RunOutcome
from .status import STOPPED_BY_USER, Status
from .summary import is_finite_number

TAIL_KEPT = 15   # output lines a result keeps for the front ends
SHELL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGINT,
                 signal.SIGHUP}
OOM_SHARE = 0.8  # a SIGKILLed run that held this share of the machine's memory is taken as out of memory


def classify(outcome: RunOutcome, metric: str, timeout_s: float,
             startup_timeout_s: float | None = None) -> tuple[float | None, str]:
    """Returns (metric value, "") for a usable run, or (None, crash reason)."""
    if outcome.stopped:
        return None, STOPPED_BY_USER
    if outcome.timed_out:
        return None, _timeout_reason(outcome, timeout_s, startup_timeout_s)
    if outcome.returncode != 0:
        if outcome.saw_fail:
            return None, "FAIL: training diverged (loss NaN or exploding)"
        if outcome.returncode is not None and outcome.returncode < 0:
            return None, _signal_reason(outcome, -outcome.returncode)
        if outcome.returncode is not None and outcome.returncode - 128 in SHELL_SIGNALS:
            # /bin/sh reports a child killed by signal N as exit code 128 + N
            return None, f"exit code {outcome.returncode}: " + _signal_reason(outcome, outcome.returncode - 128)
        return None, f"exit code {outcome.returncode}" + _error_hint(outcome.tail)
    if not outcome.summary:
        return None, "no summary block: the script must end by printing '---' and 'key: value' lines"
    value = outcome.summary.get(metric)
    if value is None:
        return None, f"summary has no {metric} (keys: {', '.join(list(outcome.summary)[:8])})"
    if not is_finite_number(value):
        return None, f"{metric} is {value} (not a finite number)"
    return float(value), ""


def _timeout_reason(outcome: RunOutcome, timeout_s: float, startup_timeout_s: float | None) -> str:
    """Returns a timeout's crash reason, saying which limit it hit (see runner.py, Timeout)."""
    if getattr(outcome, "timed_out_in_startup", False) and startup_timeout_s not in (None, timeout_s):
        return (f"timeout: no progress line within the start-up limit of {startup_timeout_s or timeout_s:g}s "
                f"(killed after {outcome.wall_s:.0f}s)")
    first = getattr(outcome, "first_progress_s", None)
    if startup_timeout_s is not None and first is not None:
        return f"timeout: killed {timeout_s:g}s after its first progress line ({outcome.wall_s:.0f}s after the launch)"
    return f"timeout: killed after {timeout_s:g}s"


def _signal_reason(outcome: RunOutcome, number: int) -> str:
    """Returns why a run died of a signal, naming memory only where the evidence points to it: the
    kernel's OOM killer sends SIGKILL, so a SIGKILL while the run held most of the machine's memory."""
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    reason = f"killed by signal {name}"
    if number == signal.SIGKILL:
        total_mb = psutil.virtual_memory().total / 2**20
        if outcome.peak_rss_mb >= OOM_SHARE * total_mb:
            return f"{reason}: out of memory (peak {outcome.peak_rss_mb / 1024:.1f} GB of {total_mb / 1024:.1f} GB)"
        return f"{reason} by another process (not by this tool)"
    return f"{reason} from outside the run (not by this tool)"


def _error_hint(tail: list[str]) -> str:
    """Returns ': <last exception line>' from a traceback in the output tail, or ''."""
    for line in reversed(tail):
        text = line.strip()
        head = text.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt", "Exit")) and " " not in head:
            return ": " + text[:200]
    return ""


def result_of(campaign, note: dict, outcome: RunOutcome | None, error: str = "",
              stop_reason: str = STOPPED_BY_USER, pruned: str = "", timeout_reason: str = "",
              overhead_s: float | None = None) -> ExperimentResult:
    """Returns the (undecided) result of one run.

    `note` describes the run (experiment, run, commit, parent, description, seed, started_at, log,
    launcher, job_id, node); `outcome` is None when there is none, `error` then says why. A stopped
    run's reason is `stop_reason` (a kernel shutdown is 'interrupted', not a user's stop).
    A run the pruner gave up on (`pruned`: its evidence, when the engine stopped it for that; or the
    runner's own prune) is no crash: it has no metric, and its evidence says where it was stopped.
    A timeout's reason is `timeout_reason` when the engine knows it better (the script's own budget,
    phases.BudgetCheck); `overhead_s` is the tool's own time around the run (phases.py).
    """
    config = campaign.config
    evidence = ""
    if outcome is None:
        metric, reason = None, error or "worker lost"
    else:
        metric, reason = classify(outcome, config.metric, config.effective_timeout_s,
                                  config.effective_startup_timeout_s)
        if outcome.timed_out and not outcome.stopped and timeout_reason:
            reason = timeout_reason
        evidence = outcome.prune_evidence if outcome.pruned else pruned if outcome.stopped else ""
        if evidence:
            metric, reason = None, ""
        elif outcome.stopped:
            reason = stop_reason
    summary = outcome.summary if outcome else {}
    vram_mb = summary.get("peak_vram_mb")
    rss_mb = outcome.peak_rss_mb if outcome else 0.0
    training_s = summary.get("training_seconds")
    return ExperimentResult(
        experiment=note["experiment"], run=note.get("run", 1), commit=note["commit"], parent=note["parent"],
        status=Status.CRASH if reason else Status.PENDING, metric=metric, best_before=None,
        description=note.get("description", ""), crash_reason=reason, log_path=note.get("log", ""),
        wall_s=outcome.wall_s if outcome else 0.0,
        training_seconds=training_s if is_finite_number(training_s) else None,
        memory_gb=vram_mb / 1024 if is_finite_number(vram_mb) and vram_mb > 0 else rss_mb / 1024,
        peak_rss_gb=rss_mb / 1024, summary=summary, tail=(outcome.tail if outcome else [])[-TAIL_KEPT:],
        seed=note.get("seed"), started_at=note.get("started_at", ""), launcher=note.get("launcher", "local"),
        job_id=note.get("job_id", ""), node=note.get("node", ""), evidence=evidence, pruned=bool(evidence),
        cpu_s=outcome.cpu_s if outcome else None, other_cpu_s=outcome.other_cpu_s if outcome else None,
        machine_share=outcome.machine_share if outcome else None,
        phases=run_phases(outcome.wall_s, getattr(outcome, "first_progress_s", None),
                          getattr(outcome, "last_progress_s", None), overhead_s) if outcome else {})


def _cell(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def row_for(campaign, result: ExperimentResult) -> ResultRow:
    """Returns the results.tsv row of a decided run."""
    config = campaign.config
    crash = result.status == Status.CRASH
    return ResultRow(
        commit=result.commit, metric=None if crash else result.metric,
        memory_gb=0.0 if crash else round(result.memory_gb, 1), status=str(result.status),
        description=result.description,
        extra={"experiment": result.experiment, "run": result.run, "parent": result.parent[:7],
               "branch": config.branch, "started_at": result.started_at,
               "elapsed_min": f"{result.wall_s / 60:.2f}" if result.wall_s else "",
               "training_seconds": "" if result.training_seconds is None else f"{result.training_seconds:.1f}",
               "peak_rss_gb": f"{result.peak_rss_gb:.2f}" if result.wall_s else "",
               "crash_reason": result.crash_reason,
               "seed": "" if result.seed is None else result.seed, "log": result.log_path,
               "command": config.command, "launcher": result.launcher, "job_id": result.job_id,
               "node": result.node, "evidence": _with_lost_attempts(result),
               "machine_share": _cell(result.machine_share, 3), "cpu_s": _cell(result.cpu_s, 1),
               "other_cpu_s": _cell(result.other_cpu_s, 1),
               **{column: _cell(result.phases.get(column), 1) for column in PHASE_COLUMNS}})


def _with_lost_attempts(result: ExperimentResult) -> str:
    """Returns the row's evidence, naming the attempts of this run a cluster took away and ran again."""
    if not result.lost_attempts:
        return result.evidence
    lost = f"earlier attempts lost and run again: {'; '.join(result.lost_attempts)}"
    return f"{result.evidence}; {lost}" if result.evidence else lost
