"""The agent's briefing for one step: objective, stop rules, branch, best, the researcher's notes and
skipped proposals, what was already tried, recent results, curves, the last crash and program.md.

Every section is bounded, so the prompt of experiment 2,000 is about as long as that of experiment
20: the history lists the kept steps first, then the closest misses, then counts the rest.
"""
from __future__ import annotations

from pathlib import Path

from .notes import latest_notes, skipped_proposals
from .stop_rules import stop_state
from .results import measured

RECENT_ROWS = 15
NOTES_SHOWN = 10
SKIPS_SHOWN = 10
MAX_NOTE_CHARS = 600          # per note in the prompt (the journal keeps it whole)
MAX_REASON_CHARS = 300
MAX_DESCRIPTION_CHARS = 90
HISTORY_MAX_CHARS = 6000      # the tried-experiments table
KEPT_SHOWN = 25               # the latest kept steps (the ratchet); older ones are counted
CRASHES_SHOWN = 5
MAX_CURVES_CHARS = 3000
CRASH_TAIL_LINES = 30


def build_prompt(campaign, workdir: Path, curve_summary: str | None = None) -> str:
    """Returns the agent's briefing for the next experiment of `campaign`, run in `workdir`."""
    config, root = campaign.config, campaign.paths.root
    metric = config.metric
    best = campaign.best()
    state = stop_state(config, campaign.attempted(), best["value"] if best else None)
    best_text = (f"{best['value']:.6f} (experiment {best.get('experiment')}: {best['description']})"
                 if best else "none yet")
    sections = [
        f"""You are running one step of an autoresearch campaign.

Objective: {'minimise' if config.direction == 'min' else 'maximise'} {metric}; each run trains for {config.budget_s:g} s.
Stop rules: {state.progress}.
Branch: {config.branch} (its tip is the best so far; a change that does not improve {metric} is reverted).
Best so far: {best_text}

You work in {workdir}, a scratch copy of the campaign's current best. Edit only: {', '.join(config.editable)}.
Only those files are taken back; changes to any other file are discarded.
Make ONE focused change that you expect to improve {metric}. Then write a one-line description of
the hypothesis to the file named by $AUTORESEARCH_DESCRIPTION_FILE (or print `description: ...`).
Do not run the training yourself. Do not repeat an experiment listed below or a proposal the
researcher skipped; follow the researcher's notes (the newest wins where they disagree) and say in
your description which note you followed.""",
        _notes_section(campaign),
        _skipped_section(campaign),
        _history_section(campaign),
        _recent_section(campaign),
        _curves_section(curve_summary),
        _crash_section(campaign),
        "## Research charter (program.md)\n" + (_read_text(root / "program.md") or "(no program.md)"),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _notes_section(campaign) -> str:
    notes = latest_notes(campaign.paths, NOTES_SHOWN)
    if not notes:
        return ""
    lines = [f"- {n.date} UTC: {_clip(n.text, MAX_NOTE_CHARS)}" for n in notes]
    return "## The researcher's notes (oldest first; the newest wins)\n" + "\n".join(lines)


def _skipped_section(campaign) -> str:
    skipped = skipped_proposals(campaign.paths, SKIPS_SHOWN)
    if not skipped:
        return ""
    lines = []
    for s in skipped:
        label = f"#{s.experiment} " if s.experiment is not None else ""
        why = _clip(s.reason, MAX_REASON_CHARS) or "no reason given"
        lines.append(f"- {label}{_clip(s.description, MAX_DESCRIPTION_CHARS)!r}: {why}")
    return "## Proposals the researcher skipped (not run; do not propose them again)\n" + "\n".join(lines)


def summaries(campaign) -> list[dict]:
    """Returns one summary per numbered experiment: number, value (mean over usable runs), verdict,
    description and crash reason, in experiment order."""
    metric = campaign.config.metric
    out = []
    for key, rows in campaign.experiments().items():
        if not key.isdigit():
            continue
        values = measured(rows, metric)
        last = rows[-1]
        verdict = "crash" if not values else ("discard" if last["status"] == "crash" else last["status"])
        out.append({"experiment": int(key), "value": sum(values) / len(values) if values else None,
                    "verdict": verdict, "description": last.get("description", ""),
                    "crash_reason": last.get("crash_reason", "")})
    return out


def tried_table(campaign, max_chars: int = HISTORY_MAX_CHARS) -> str:
    """Returns the experiments already tried as a compact table of at most about `max_chars`: the
    latest kept steps, then the discarded ones closest to the best, then the latest crashes, then a
    count of what is not listed."""
    items = summaries(campaign)
    if not items:
        return ""
    metric, minimise = campaign.config.metric, campaign.config.direction == "min"
    best = campaign.best()
    best_value = best["value"] if best else None
    kept = [e for e in items if e["verdict"] == "keep"]
    misses = [e for e in items if e["verdict"] == "discard" and e["value"] is not None]
    if best_value is not None:
        misses.sort(key=lambda e: (e["value"] - best_value) if minimise else (best_value - e["value"]))
    crashes = [e for e in items if e["verdict"] == "crash"]
    groups = [("Kept (each a step of the ratchet)", kept[-KEPT_SHOWN:]),
              ("Closest misses (discarded)", misses),
              ("Crashed (latest)", crashes[-CRASHES_SHOWN:][::-1])]
    out = [f"exp\t{metric}\tverdict\tdescription"]
    listed: set[int] = set()
    used = len(out[0])
    for title, group in groups:
        if not group:
            continue
        header = f"# {title}"
        lines = []
        for e in group:
            line = _row(e)
            if used + len(header) + len(line) + 2 > max_chars:
                break
            lines.append(line)
            used += len(line) + 1
            listed.add(e["experiment"])
        if lines:
            out.append(header)
            used += len(header) + 1
            out.extend(lines)
    rest = [e for e in items if e["experiment"] not in listed]
    if rest:
        out.append(_rest_line(rest, metric))
    return "\n".join(out)


def _row(e: dict) -> str:
    value = f"{e['value']:.6f}" if e["value"] is not None else "-"
    reason = f" ({_clip(e['crash_reason'], 60)})" if e["verdict"] == "crash" and e["crash_reason"] else ""
    return f"{e['experiment']}\t{value}\t{e['verdict']}\t{_clip(e['description'], MAX_DESCRIPTION_CHARS)}{reason}"


def _rest_line(rest: list[dict], metric: str) -> str:
    counts = {}
    for e in rest:
        counts[e["verdict"]] = counts.get(e["verdict"], 0) + 1
    values = [e["value"] for e in rest if e["value"] is not None]
    spread = f", {metric} {min(values):.6f}..{max(values):.6f}" if values else ""
    what = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    return f"# Not listed: {len(rest)} more ({what}{spread})"


def _history_section(campaign) -> str:
    table = tried_table(campaign)
    if not table:
        return ""
    return (f"## Experiments already tried ({campaign.attempted()} in all; most relevant first)\n{table}")


def _recent_section(campaign) -> str:
    metric = campaign.config.metric
    rows = campaign.rows()[-RECENT_ROWS:]
    table = "\n".join(f"{r.get('experiment', '?')}\t{r[metric]}\t{r['status']}\t"
                      f"{_clip(r['description'], MAX_DESCRIPTION_CHARS)}"
                      + (f"\t({r['crash_reason']})" if r.get("crash_reason") else "") for r in rows)
    return f"## Recent results (experiment, {metric}, status, description)\n{table or '(none yet)'}"


def _curves_section(curve_summary: str | None) -> str:
    if not curve_summary or not curve_summary.strip():
        return ""
    return "## Training curves\n" + _clip(curve_summary.strip(), MAX_CURVES_CHARS)


def _crash_section(campaign) -> str:
    crash = next((r for r in reversed(campaign.rows()) if r["status"] == "crash"), None)
    if not crash or not crash.get("experiment", "").isdigit():
        return ""
    tail = campaign.show(int(crash["experiment"]), tail_lines=CRASH_TAIL_LINES)["log_tail"]
    return (f"## Last crash: experiment {crash['experiment']} ({crash.get('crash_reason', '')})\n"
            + "\n".join(tail))


def _clip(text: str, limit: int) -> str:
    """Returns `text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _read_text(path: Path) -> str:
    """Returns a text file's content, or '' when it is missing or unreadable."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
