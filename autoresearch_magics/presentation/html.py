"""Small HTML renderings shared by the panel and the dashboard (no widgets here)."""
from __future__ import annotations

import html

import pandas as pd

STATUS_COLOURS = {"keep": "#1a7f37", "discard": "#6e7781", "crash": "#cf222e", "running": "#0969da",
                  "queued": "#9a6700", "stopped": "#9a6700", "failed": "#cf222e", "cancelled": "#6e7781"}
MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px"


def esc(text) -> str:
    """Returns `text` escaped for HTML."""
    return html.escape("" if text is None else str(text))


def badge(status: str) -> str:
    """Returns a coloured upper-case status word."""
    colour = STATUS_COLOURS.get(status, "#57606a")
    return f"<b style='color:{colour}'>{esc(status.upper())}</b>"


def number(value, digits: int = 6) -> str:
    """Returns a number with fixed decimals, or '-' for missing values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.{digits}f}"


def diff_html(diff: str, label: str, open_up_to_lines: int = 40) -> str:
    """Returns a collapsible, coloured unified diff; short diffs start unfolded."""
    if not diff.strip():
        return f"<div style='{MONO}; color:#57606a'>{esc(label)}</div>"
    lines = diff.splitlines()
    added = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
    removed = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
    body = []
    for line in lines:
        colour = ("#1a7f37" if line.startswith("+") and not line.startswith("+++") else
                  "#cf222e" if line.startswith("-") and not line.startswith("---") else
                  "#8250df" if line.startswith("@@") else "inherit")
        body.append(f"<span style='color:{colour}'>{esc(line)}</span>")
    state = " open" if len(lines) <= open_up_to_lines else ""
    return (f"<details{state}><summary style='{MONO}'>{esc(label)}: +{added} &minus;{removed} lines</summary>"
            f"<pre style='{MONO}; max-height:24em; overflow:auto; margin:2px 0'>" + "\n".join(body) + "</pre></details>")


def pre(lines: list[str]) -> str:
    """Returns lines as a monospaced block."""
    return f"<pre style='{MONO}; margin:2px 0'>" + esc("\n".join(lines)) + "</pre>"


def results_table(frame: pd.DataFrame, metric: str, last: int = 12) -> str:
    """Returns the last `last` results rows as an HTML table, status coloured."""
    if frame.empty:
        return "<i>no experiments yet</i>"
    shown = frame.tail(last)
    head = ["#", "commit", metric, "memory GB", "status", "description"]
    rows = []
    for _, row in shown.iterrows():
        note = row.get("crash_reason") if row["status"] == "crash" else ""
        description = esc(row["description"]) + (f" <span style='color:#cf222e'>({esc(note)})</span>"
                                                  if isinstance(note, str) and note else "")
        experiment = row.get("experiment")
        cells = ["" if pd.isna(experiment) else str(experiment), f"<code>{esc(row['commit'])}</code>",
                 number(row[metric]), number(row["memory_gb"], 1), badge(str(row["status"])), description]
        rows.append("<tr>" + "".join(f"<td style='padding:1px 8px; text-align:left'>{c}</td>" for c in cells)
                    + "</tr>")
    earlier = len(frame) - len(shown)
    caption = f"<caption style='text-align:left'>{earlier} earlier rows not shown</caption>" if earlier else ""
    header = "".join(f"<th style='padding:1px 8px; text-align:left'>{esc(h)}</th>" for h in head)
    return f"<table style='{MONO}'>{caption}<tr>{header}</tr>{''.join(rows)}</table>"
