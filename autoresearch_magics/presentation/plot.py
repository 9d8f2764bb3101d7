"""The campaign's ratchet plot: every experiment by number, kept ones labelled, the running best.

Uses matplotlib's object API (no pyplot), so it draws the same in a kernel, a script or a
background thread, and never touches the notebook's figure state.
"""
from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

KEEP, DISCARD, CRASH, BEST = "#1a7f37", "#b0b7bf", "#cf222e", "#1a7f37"
LABEL_CHARS = 34          # longer descriptions are cut with an ellipsis
MAX_LABELS = 25           # beyond this, only the latest kept experiments are labelled
PAD = 0.12                # headroom beyond the best, as a fraction of the best-to-baseline range
WORSE_PAD = 0.4           # room for near misses beyond the baseline, same unit


def focus_range(values: np.ndarray, best: float, baseline: float, direction: str = "min") -> tuple[float, float]:
    """Returns y limits spanning the best and the baseline, with room for near misses on the worse side.

    Results much worse than the baseline (a diverged run) would squash the interesting part,
    so they are left out of the range and drawn as markers on the edge instead.
    """
    lo, hi = min(best, baseline), max(best, baseline)
    if hi <= lo:  # nothing beat the baseline yet: frame what was tried near it
        near = values[np.abs(values - best) <= max(abs(best) * 0.05, 1e-9)]
        lo, hi = min(lo, float(near.min())), max(hi, float(near.max()))
    span = (hi - lo) or max(abs(best) * 0.01, 1e-3)
    if direction == "min":
        return lo - PAD * span, hi + WORSE_PAD * span
    return lo - WORSE_PAD * span, hi + PAD * span


def plot_progress(frame: pd.DataFrame, metric: str, direction: str = "min", title: str | None = None,
                  figsize: tuple[float, float] = (10.0, 5.0)) -> Figure:
    """Returns a figure of the campaign: discarded grey, kept green and labelled, best as a step line,
    crashes as red crosses on the bottom edge."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("experiment")
    ax.set_ylabel(f"{metric} ({'lower' if direction == 'min' else 'higher'} is better)")
    ax.grid(alpha=0.25)
    if frame.empty:
        ax.text(0.5, 0.5, "no experiments yet", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(title or "campaign progress")
        return fig

    runs = frame.copy()
    x = runs["experiment"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    runs["x"] = np.where(np.isnan(x), np.arange(1, len(runs) + 1), x)
    data = per_experiment(runs, metric)
    if len(data) < len(runs):  # repeated runs: each one faintly, the experiment at their mean
        ax.scatter(runs["x"], runs[metric], s=8, color="#57606a", alpha=0.35, zorder=1, label="single runs")
    status = data["status"].astype(str)
    kept, crashed = data[status == "keep"], data[status == "crash"]
    valued = data[status != "crash"]
    better = np.minimum if direction == "min" else np.maximum

    edge = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes fraction
    if not valued.empty:
        values = valued[metric].to_numpy(dtype=float)
        baseline = float((kept if not kept.empty else valued)[metric].iloc[0])
        best = float(better.reduce(kept[metric].to_numpy(dtype=float))) if not kept.empty else baseline
        lo, hi = focus_range(values, best, baseline, direction)
        ax.set_ylim(lo, hi)
        inside = valued[(valued[metric] >= lo) & (valued[metric] <= hi)]
        outside = valued[(valued[metric] < lo) | (valued[metric] > hi)]
        in_discard = inside[inside["status"].astype(str) == "discard"]
        if not in_discard.empty:
            ax.scatter(in_discard["x"], in_discard[metric], s=22, color=DISCARD, zorder=2, label="discarded")
        if not outside.empty:  # off-scale results, pinned to the edge they fell beyond
            top = (outside[metric] > hi).to_numpy()
            ax.scatter(outside["x"][top], np.full(top.sum(), 0.985), transform=edge, marker="^", s=26,
                       color=DISCARD, clip_on=False, zorder=2, label="off scale")
            ax.scatter(outside["x"][~top], np.full((~top).sum(), 0.015), transform=edge, marker="v", s=26,
                       color=DISCARD, clip_on=False, zorder=2)
        if not kept.empty:
            ax.scatter(kept["x"], kept[metric], s=46, color=KEEP, edgecolor="white", linewidth=0.8, zorder=4,
                       label="kept")
            # the running best: from each keep until the next one, and on to the last experiment
            steps_x = list(kept["x"]) + [float(data["x"].max())]
            steps_y = list(better.accumulate(kept[metric].to_numpy(dtype=float)))
            steps_y.append(steps_y[-1])
            ax.step(steps_x, steps_y, where="post", color=BEST, alpha=0.6, linewidth=1.6, zorder=3,
                    label="running best")
    if not crashed.empty:
        ax.scatter(crashed["x"], np.full(len(crashed), 0.04), transform=edge, marker="x", s=40, color=CRASH,
                   linewidth=1.6, clip_on=False, zorder=5, label=f"crash ({len(crashed)})")
    ax.set_xlim(0.5, float(data["x"].max()) + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True, min_n_ticks=1)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(title or _title(data, kept, metric, direction), fontsize=11)
    if not kept.empty and not valued.empty:
        _label_kept(ax, kept, metric, direction)  # last: it measures text against the final limits
    return fig


def per_experiment(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Returns one row per experiment: the mean metric of its usable runs and its final status, as the
    campaign status reports them (every run crashed: a crash; the last run crashed: discarded)."""
    if not runs["x"].duplicated().any():
        return runs
    rows = []
    for x, group in runs.groupby("x", sort=True):
        usable = group[group["status"].astype(str) != "crash"]
        last = group.iloc[-1]
        status = ("crash" if usable.empty else str(last["status"]) if str(last["status"]) != "crash"
                  else "discard")  # a later run crashed: the experiment is not kept
        rows.append({"x": x, metric: usable[metric].mean() if not usable.empty else np.nan, "status": status,
                     "description": last["description"]})
    return pd.DataFrame(rows)


def _label_kept(ax, kept: pd.DataFrame, metric: str, direction: str) -> None:
    """Writes each kept experiment's description beside its point, on the side where the ratchet
    leaves room (below-left when lower is better), nudged so labels do not overlap."""
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    frame_box = ax.get_window_extent(renderer)
    away = -1 if direction == "min" else 1   # earlier, worse results lie on the other side
    spots = [(side, dy) for dy in (6, 16, 26, 36, 46) for side in (-1, 1)]
    placed = []
    for _, row in kept.tail(MAX_LABELS).iterrows():
        text = textwrap.shorten(str(row["description"]), LABEL_CHARS, placeholder="…")
        for side, dy in spots:
            note = ax.annotate(text, (row["x"], row[metric]), xytext=(5 * side, away * dy),
                               textcoords="offset points", fontsize=7.5, color="#1f2328",
                               ha="right" if side < 0 else "left", va="top" if away < 0 else "bottom", zorder=6,
                               bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.7))
            box = note.get_window_extent(renderer)
            fits = frame_box.x0 <= box.x0 and box.x1 <= frame_box.x1 and frame_box.y0 <= box.y0 <= frame_box.y1
            if fits and not any(box.overlaps(other) for other in placed):
                break
            if (side, dy) != spots[-1]:
                note.remove()
        placed.append(box)


def _title(data: pd.DataFrame, kept: pd.DataFrame, metric: str, direction: str) -> str:
    counts = data["status"].astype(str).value_counts()
    head = (f"{len(data)} experiment{'s' if len(data) != 1 else ''}: {counts.get('keep', 0)} kept, {counts.get('discard', 0)} discarded, "
            f"{counts.get('crash', 0)} crashed")
    if kept.empty:
        return head
    best_row = kept.loc[kept[metric].idxmin() if direction == "min" else kept[metric].idxmax()]
    return f"{head} · best {metric} {best_row[metric]:.6f} (#{int(best_row['x'])})"


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Returns the figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
