"""Plain-text renderings of campaign data, shared by the CLI and the magics."""
from __future__ import annotations

import math

from ..core.events import ExperimentResult


def format_value(value, digits: int = 6) -> str:
    """Returns a metric value with fixed decimals, or '-'."""
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_result(result: ExperimentResult, metric: str) -> str:
    """Returns one line describing a finished run: outcome, metric, delta, reason."""
    head = f"experiment {result.experiment}"
    if result.run > 1:
        head += f" (run {result.run})"
    head += f" [{result.commit[:7]}] {result.description!r}: {result.status.upper()}"
    if result.status == "crash":
        return f"{head} - {result.crash_reason}"
    if result.metric is None:  # stopped early by --prune: its evidence says where and why
        return f"{head} - {result.evidence}"
    text = f"{head} {metric}={result.metric:.6f}"
    if result.delta is not None:
        text += f" (delta {result.delta:+.6f} vs best {result.best_before:.6f})"
    if any(note in result.evidence for note in ("same code as the best", "unfair comparison")):
        text += f" - {result.evidence}"   # the verdict checks' word, not only the keep rule's
    return text


def format_status(status: dict) -> str:
    """Returns the status report restating objective, stop rules, branch, best and latest."""
    metric = status["metric"]
    lines = [f"campaign {status['tag']} in {status['root']}",
             f"objective: {status['objective']} (budget {status['budget_s']:g}s of training per experiment, "
             f"keep rule {status['keep_rule']})",
             status["stop"]["progress"],
             f"branch: {status['branch']}" + ("" if status["current_branch"] == status["branch"]
                                              else f" (working copy is on {status['current_branch']}!)"),
             f"workdir: {status['workdir']}"]
    counts = status["counts"]
    lines.append(f"experiments: {status['attempted']} ({counts['keep']} kept, {counts['discard']} discarded, "
                 f"{counts['crash']} crashed)")
    for label in ("baseline", "best", "latest"):
        row = status[label]
        if row:
            value = format_value(row["value"])
            extra = f" - {row['crash_reason']}" if row["status"] == "crash" and row.get("crash_reason") else ""
            lines.append(f"{label}: #{row['experiment']} {row['commit']} {metric}={value} {row['status']} "
                         f"{row['description']!r}{extra}")
    if status["best"] and status["baseline"] and status["best"]["value"] is not None \
            and status["baseline"]["value"] is not None:
        lines.append(f"improvement over baseline: {status['best']['value'] - status['baseline']['value']:+.6f}")
    noise = status.get("noise")
    if noise:
        floor = f"noise floor: run-to-run sd {noise['sd']:.6f} (df {noise['df']}); "
        if noise["keep_rule"] == "strict":
            floor += (f"the strict rule keeps any gain, so gains below about {2 * noise['sd']:.6f} (2 sd) "
                      f"are often noise: --keep-rule repeats tells them apart")
        else:
            floor += f"smallest gain the {noise['keep_rule']} rule keeps: {noise['smallest_gain']:.6f}"
        lines.append(floor)
    use = status.get("time_use")
    if use:
        lines.append(f"time: {100 * use['training_share']:.0f}% of the wall clock is training "
                     f"({use['training_s']:.0f}s of {use['wall_s']:.0f}s over {use['runs']} run(s)), "
                     f"{use['experiments_per_hour']:.1f} runs per hour")
    running = status.get("running")
    if running:
        phase = f" ({running['phase']})" if running.get("phase") else ""
        lines.append(f"running: #{running['experiment']} {running['description']!r}{phase} "
                     f"{100 * running.get('training_fraction', 0):.0f}% of budget, loss {running.get('loss')}")
    for note in status.get("notes") or ():
        lines.append(f"note ({note['at'][:16].replace('T', ' ')}): {note['text']}")
    if status.get("skipped"):
        lines.append(f"skipped proposals: {status['skipped']} (not run; `show N` shows one, the agent's prompt "
                     f"lists their reasons)")
    return "\n".join(lines)


def format_results(frame, metric: str) -> str:
    """Returns the results table as aligned text."""
    if frame.empty:
        return "no experiments yet"
    columns = [c for c in ("experiment", "run", "commit", metric, "memory_gb", "status", "description",
                           "crash_reason") if c in frame]
    shown = frame[columns].copy()
    shown[metric] = shown[metric].map(format_value)
    if "run" in shown and (shown["run"].fillna(1) == 1).all():
        shown = shown.drop(columns="run")
    if "crash_reason" in shown and not shown["crash_reason"].astype(bool).any():
        shown = shown.drop(columns="crash_reason")
    return shown.to_string(index=False)


def format_show(detail: dict) -> str:
    """Returns one experiment's record, diff and log tail as text (and any proposal skipped under its number)."""
    skipped = [_format_skipped(s) for s in detail.get("skipped") or ()]
    if detail["commit"] is None and not detail["rows"] and skipped:
        return "\n\n".join(skipped)
    return "\n\n".join([_format_run(detail), *skipped])


def _format_skipped(skipped: dict) -> str:
    why = skipped.get("reason") or "no reason given"
    head = (f"proposal {skipped['experiment']} skipped ({skipped.get('source', 'user')}, "
            f"{str(skipped.get('at', ''))[:16].replace('T', ' ')}): {skipped['description']}")
    return "\n".join([head, f"reason: {why}", "", "--- proposed diff ---", skipped.get("diff") or "(no diff recorded)"])


def _format_run(detail: dict) -> str:
    row = detail["row"] or {}
    lines = [f"experiment {detail['experiment']} commit {(detail['commit'] or '?')[:7]} "
             f"parent {(detail['parent'] or '?')[:7]}"]
    if row:
        lines.append(f"status {row['status']}: {row['description']}"
                     + (f" ({row['crash_reason']})" if row.get("crash_reason") else ""))
    lines += ["", "--- diff against parent ---", detail["diff"] or "(no change: a re-run of the parent)", "",
              f"--- log tail ({detail['log_path']}) ---", *(detail["log_tail"] or ["(no log)"])]
    return "\n".join(lines)
