"""The campaign report: `autoresearch-summary.md`, a Markdown account a colleague can read cold."""
from __future__ import annotations

import platform
from pathlib import Path

import pandas as pd

from ..core.outputs import OWN_FOLDER, OutputRecord, check_folder_writable
from ..core.paths import CURVES_NAME, PLOT_NAME, SUMMARY_NAME
from .text import format_value



def _experiments(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Returns one row per experiment: mean metric over usable runs, runs, final status."""
    grouped = frame.groupby("experiment", sort=True, observed=True)
    table = grouped.agg(commit=("commit", "last"), description=("description", "last"),
                        status=("status", lambda s: str(s.iloc[-1])), runs=("status", "size"),
                        value=(metric, "mean"), crash_reason=("crash_reason", "last") if "crash_reason" in frame
                        else ("status", lambda s: ""),
                        started_at=("started_at", "min") if "started_at" in frame else ("status", lambda s: None),
                        elapsed_min=("elapsed_min", "sum") if "elapsed_min" in frame else ("status", lambda s: 0.0))
    return table.reset_index()


def _platform(hardware: dict | None) -> str:
    parts = [f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"]
    if hardware:
        if hardware.get("device") == "cuda":
            gpus = ", ".join(d["name"] for d in hardware.get("cuda_devices", []))
            parts.append(f"CUDA: {gpus}")
        elif hardware.get("device") == "cpu":
            speed = "" if "bf16_fast" not in hardware else f", bf16 {'fast' if hardware['bf16_fast'] else 'slow'}"
            parts.append(f"CPU only, {hardware.get('cpu_count')} cores{speed}")
        else:
            parts.append(str(hardware.get("device")))
        if hardware.get("torch"):
            parts.append(f"torch {hardware['torch']}")
    return "; ".join(parts)


def next_steps(table: pd.DataFrame, status: dict, noise_sd: float | None) -> list[str]:
    """Returns suggestions derived from the results: streaks, crash patterns, noise, stop rules."""
    steps = []
    if table.empty:
        return ["Run the baseline: `%autoresearch run -m baseline`."]
    tail = table["status"].tolist()
    streak = 0
    for s in reversed(tail):
        if s == "keep":
            break
        streak += 1
    if streak >= 5:
        steps.append(f"The last {streak} experiments did not improve: try a different direction (the kept "
                     f"steps below show what has worked) or a larger change.")
    crashes = table[table["status"] == "crash"]
    reasons = crashes["crash_reason"].astype(str)
    if (reasons.str.startswith("timeout")).any():
        steps.append("Some runs hit the timeout: shrink the model or batch, or raise `--timeout`.")
    if reasons.str.contains("out of memory|signal SIGKILL|OutOfMemory", case=False).any():
        steps.append("Some runs were killed for memory: reduce batch size or model width.")
    if len(crashes) and len(crashes) / len(table) > 0.25:
        steps.append(f"{len(crashes)} of {len(table)} experiments crashed: check `show N` for the log tails "
                     f"before trying more ideas.")
    kept = table[table["status"] == "keep"]
    if len(kept) > 1:
        gains = kept["value"].diff().abs().dropna()
        smallest = gains.min()
        if noise_sd is not None and smallest < 3 * noise_sd:
            steps.append(f"The smallest kept gain ({smallest:.6f}) is under 3x the measured noise "
                         f"({noise_sd:.6f}): confirm it with repeats.")
        elif noise_sd is None and status["keep_rule"] == "strict":
            steps.append("The strict rule keeps any improvement, noise included: measure the noise with "
                         "`--keep-rule repeats` before trusting small gains.")
    if status["stop"]["reached"]:
        steps.append(f"Stop rule reached ({status['stop']['reason']}): raise it to continue.")
    if not steps:
        steps.append("Keep going: the campaign is still finding improvements.")
    return steps


def campaign_report(campaign, hardware: dict | None = None, plot_path: str | None = None,
                    notebook_html: str | None = None, curves_path: str | None = None) -> str:
    """Returns the campaign summary as Markdown."""
    status = campaign.status()
    metric = status["metric"]
    frame = campaign.frame()
    table = _experiments(frame, metric) if not frame.empty else frame
    lines = [f"# Campaign `{status['tag']}`", "",
             f"- Objective: {status['objective']}, {status['budget_s']:g} s of training per experiment, "
             f"keep rule `{status['keep_rule']}`",
             f"- Branch `{status['branch']}` in `{status['root']}`",
             f"- Platform: {_platform(hardware)}"]
    if not frame.empty and "started_at" in frame and frame["started_at"].notna().any():
        lines.append(f"- Dates: {frame['started_at'].min():%Y-%m-%d %H:%M} to "
                     f"{frame['started_at'].max():%Y-%m-%d %H:%M} UTC")
    counts = status["counts"]
    lines.append(f"- Experiments: {status['attempted']} ({counts['keep']} kept, {counts['discard']} discarded, "
                 f"{counts['crash']} crashed; {status['runs']} runs)")
    lines.append(f"- {status['stop']['progress']}")
    baseline, best = status["baseline"], status["best"]
    if baseline and best and baseline["value"] is not None and best["value"] is not None:
        delta = best["value"] - baseline["value"]
        rel = 100 * delta / baseline["value"] if baseline["value"] else float("nan")
        lines += ["", "## Result", "",
                  f"Baseline {metric} **{baseline['value']:.6f}** → best **{best['value']:.6f}** "
                  f"(experiment {best['experiment']}, `{best['commit']}`: {best['description']}), "
                  f"a change of {delta:+.6f} ({rel:+.2f}%)."]
    noise_sd, _ = campaign.noise()
    if noise_sd is not None:
        lines.append(f"Measured run-to-run noise: sd {noise_sd:.6f}.")
    if plot_path:
        lines += ["", f"![progress]({plot_path})"]
    if curves_path:
        lines += ["", "Learning curves of the kept steps, by training time (the best highlighted):", "",
                  f"![learning curves]({curves_path})"]
    if notebook_html:
        lines += ["", f"The campaign notebook, as it ran: [{notebook_html}]({notebook_html})."]
    if not table.empty:
        kept = table[table["status"] == "keep"]
        lines += ["", "## Kept steps", "", f"| # | commit | {metric} | delta | description |", "|---|---|---|---|---|"]
        previous = None
        for _, row in kept.iterrows():
            delta = "" if previous is None else f"{row['value'] - previous:+.6f}"
            lines.append(f"| {row['experiment']} | `{row['commit']}` | {format_value(row['value'])} | {delta} | "
                         f"{_cell(row['description'])} |")
            previous = row["value"]
        discarded = table[table["status"] == "discard"]
        if len(discarded):
            ascending = status["direction"] == "min"
            lines += ["", "## What did not work", "", "Discarded, closest to the best first:", "",
                      f"| # | {metric} | description |", "|---|---|---|"]
            for _, row in discarded.sort_values("value", ascending=ascending).iterrows():
                lines.append(f"| {row['experiment']} | {format_value(row['value'])} | {_cell(row['description'])} |")
        crashes = table[table["status"] == "crash"]
        if len(crashes):
            lines += ["", "## Crashes", "", "| # | description | reason |", "|---|---|---|"]
            for _, row in crashes.iterrows():
                lines.append(f"| {row['experiment']} | {_cell(row['description'])} | {_cell(row['crash_reason'])} |")
    lines += _steering(campaign)
    lines += ["", "## Next steps", "", *[f"- {step}" for step in next_steps(table, status, noise_sd)], ""]
    return "\n".join(lines)


def _steering(campaign) -> list[str]:
    """Returns the report's notes and skipped-proposals sections (none when there are none)."""
    from ..core.notes import latest_notes, skipped_proposals
    lines = []
    notes = latest_notes(campaign.paths, None)
    if notes:
        lines += ["", "## Notes", "", *[f"- {note.date}: {note.text}" for note in notes]]
    skipped = skipped_proposals(campaign.paths)
    if skipped:
        lines += ["", "## Skipped proposals", "", "Not run; the reason was given to the next proposals.", "",
                  "| # | description | by | reason |", "|---|---|---|---|"]
        for s in skipped:
            lines.append(f"| {s.experiment if s.experiment is not None else ''} | {_cell(s.description)} | "
                         f"{s.source} | {_cell(s.reason or '-')} |")
    return lines


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def write_report(campaign, folder: str | Path | None = None, hardware: dict | None = None,
                 notebook: str | Path | None = None) -> Path:
    """Writes autoresearch-summary.md (and progress.png beside it; with `notebook`, that saved notebook
    as HTML too, its live widgets replaced by their final state); returns the summary's path.

    A name in `folder` that holds a file the tool did not write (tracked in git, or yours) is left
    alone: the whole report then goes to a folder of the tool's own, named in the returned path."""
    requested = Path(folder).expanduser() if folder else campaign.paths.root
    frame = campaign.frame()
    html_name = Path(notebook).stem + ".html" if notebook else None
    curves = _kept_curves(campaign, frame)
    names = [SUMMARY_NAME] + ([PLOT_NAME] if not frame.empty else []) + ([html_name] if html_name else []) \
        + ([CURVES_NAME] if curves is not None else [])
    outputs = OutputRecord(campaign)
    alternative = campaign.paths.state / "report" if not folder else requested / OWN_FOLDER
    target = outputs.choose_folder(requested, names, alternative)
    check_folder_writable(target, "write the report elsewhere with --out FOLDER")
    target.mkdir(parents=True, exist_ok=True)
    if notebook:
        from .notebook_export import export_html
        outputs.remember(export_html(notebook, target / html_name))
    plot_name = None
    if not frame.empty:
        from .plot import figure_png, plot_progress
        fig = plot_progress(frame, campaign.config.metric, campaign.config.direction,
                            title=f"campaign {campaign.config.tag}")
        outputs.write(target / PLOT_NAME, figure_png(fig))
        plot_name = PLOT_NAME
    curves_name = None
    if curves is not None:
        from .curves_plot import plot_curves
        from .plot import figure_png
        frame_of_curves, best = curves
        fig = plot_curves(frame_of_curves, best, title=f"campaign {campaign.config.tag}: learning curves of the kept steps")
        outputs.write(target / CURVES_NAME, figure_png(fig))
        curves_name = CURVES_NAME
    report = campaign_report(campaign, hardware, plot_name, html_name, curves_name)
    return outputs.write(target / SUMMARY_NAME, report.encode())


def _kept_curves(campaign, frame: pd.DataFrame):
    """Returns (curves of the kept experiments, the best's number), or None when none has a curve."""
    if frame.empty or "experiment" not in frame:
        return None
    kept = sorted({int(n) for n in frame.loc[frame["status"] == "keep", "experiment"].dropna()})
    if not kept:
        return None
    curves = campaign.curves(kept)
    if curves.empty or curves["loss"].isna().all():
        return None
    best = campaign.best()
    return curves, int(best["key"]) if best and str(best.get("key", "")).isdigit() else None
