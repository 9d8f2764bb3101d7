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


DIFF_MAX_LINES = 400     # a longer diff is cut here (its whole text: `%autoresearch show N`)
DIFF_MAX_CHARS = 60_000
STALE_AFTER_S = 30       # a live view with no news from its kernel for this long says so


def diff_html(diff: str, label: str, open_up_to_lines: int = 40, max_lines: int = DIFF_MAX_LINES,
              max_chars: int = DIFF_MAX_CHARS) -> str:
    """Returns a collapsible, coloured unified diff, scrollable and cut at a size bound; short diffs
    start unfolded."""
    if not diff.strip():
        return f"<div style='{MONO}; color:#57606a'>{esc(label)}</div>"
    lines = diff.splitlines()
    added = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
    removed = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
    shown, size = [], 0
    for line in lines[:max_lines]:
        size += len(line) + 1
        if size > max_chars:
            break
        shown.append(line)
    body = []
    for line in shown:
        colour = ("#1a7f37" if line.startswith("+") and not line.startswith("+++") else
                  "#cf222e" if line.startswith("-") and not line.startswith("---") else
                  "#8250df" if line.startswith("@@") else "inherit")
        body.append(f"<span style='color:{colour}'>{esc(line)}</span>")
    if len(shown) < len(lines):
        body.append(f"<i>&hellip; {len(lines) - len(shown)} more lines not shown "
                    f"(<code>%autoresearch show N</code> prints the whole diff)</i>")
    state = " open" if len(lines) <= open_up_to_lines else ""
    return (f"<details{state}><summary style='{MONO}; cursor:pointer'>{esc(label)}: +{added} &minus;{removed} "
            f"lines</summary><pre style='{MONO}; max-height:24em; overflow:auto; margin:2px 0'>"
            + "\n".join(body) + "</pre></details>")


def params_html(params: dict | None) -> str:
    """Returns the values a proposal tries, as `NAME = value` items ('' without any)."""
    if not params:
        return ""
    items = " &middot; ".join(f"<code>{esc(name)} = {esc(_short(value))}</code>" for name, value in params.items())
    return f"<div style='{MONO}'>trying {items}</div>"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def stale_note(beat: int, after_s: float | None = None) -> str:
    """Returns a note that stays hidden (and takes no room) while the view keeps being redrawn and appears
    `after_s` (default STALE_AFTER_S) seconds after the last redraw: CSS only, so it works when the
    kernel is gone."""
    after_s = STALE_AFTER_S if after_s is None else after_s
    shown = "visibility: visible; font-size: 12px; line-height: 1.5"
    # ipywidgets marks the views of a kernel it lost with .jupyter-widgets-disconnected: say it at once then
    return (f"<style>@keyframes autoresearch-stale {{to {{{shown}}}}} "
            f".jupyter-widgets-disconnected .autoresearch-stale {{{shown}}}</style>"
            f"<div class='autoresearch-stale' data-beat='{beat}' style='{MONO}; color:#9a6700; visibility:hidden; "
            f"font-size:0; line-height:0; animation: autoresearch-stale 0s linear {after_s:g}s forwards'>&#9888; no "
            f"news from the kernel for {after_s:g}s or more: if it stopped or restarted, this view is no longer "
            f"live (the outcome is in results.tsv; <code>%autoresearch status</code> in a running kernel)</div>")


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
