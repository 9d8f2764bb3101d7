"""Learning curves drawn: an overlay of runs by training time, and a small live SVG for a panel.

`plot_curves` uses matplotlib's object API (no pyplot), so it never touches a notebook's figure
state and draws the same from a thread. `live_curve_svg` writes SVG markup by hand: a few hundred
bytes, cheap enough to send with every panel update, and readable in a saved notebook without a
kernel.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.curves import default_experiments

BEST_COLOUR, CURRENT_COLOUR = "#1a7f37", "#0969da"
OTHER_COLOURS = ("#8250df", "#bf8700", "#cf222e", "#57606a", "#1b7c83", "#a40e26", "#6e7781")
FOCUS_FROM = 0.1        # the y range covers values from this share of the budget on (early loss is huge)
LIVE_POINTS = 120       # at most this many points per line in the live SVG


def _focus(values: np.ndarray) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.06 or max(abs(hi) * 0.01, 1e-6)
    return lo - pad, hi + pad


def _after_warm_up(frame: pd.DataFrame, column: str) -> np.ndarray:
    late = frame[frame["progress"].fillna(1.0) >= FOCUS_FROM] if "progress" in frame else frame
    return (late if not late.empty else frame)[column].to_numpy(dtype=float, na_value=np.nan)


def plot_curves(df: pd.DataFrame, best: int | None = None, column: str = "loss", x: str = "training_seconds",
                labels: dict[int, str] | None = None, title: str | None = None,
                figsize: tuple[float, float] = (9.0, 4.5)) -> Figure:
    """Returns a figure overlaying every run's `column` by `x`: the best experiment's runs thick and
    green, others thin; a curve that stops short (pruned, crashed) ends in a cross."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("training seconds" if x == "training_seconds" else x.replace("_", " "))
    ax.set_ylabel(f"{column} (lower is better)")
    ax.grid(alpha=0.25)
    ax.set_title(title or "learning curves")
    usable = df.dropna(subset=[x, column]) if not df.empty and column in df else df.iloc[0:0]
    if usable.empty:
        ax.text(0.5, 0.5, "no curves yet", transform=ax.transAxes, ha="center", va="center")
        return fig
    labels = labels or {}
    others = iter(OTHER_COLOURS * (1 + len(usable["experiment"].unique()) // len(OTHER_COLOURS)))
    colours: dict = {}
    for (number, _run), curve in usable.sort_values(x).groupby(["experiment", "run"], sort=True):
        is_best = best is not None and number == best
        first = number not in colours  # one legend entry per experiment
        colour = colours.setdefault(number, BEST_COLOUR if is_best else next(others))
        text = f"#{number}" + (" best" if is_best else "") + (f" {labels[number]}" if number in labels else "")
        ax.plot(curve[x], curve[column], color=colour, lw=2.4 if is_best else 1.1, alpha=1.0 if is_best else 0.85,
                zorder=3 if is_best else 2, label=text if first else None)
        progress = curve["progress"].max() if "progress" in curve else np.nan
        if np.isfinite(progress) and progress < 0.95:
            ax.plot(curve[x].iloc[-1], curve[column].iloc[-1], marker="x", color=colour, ms=7, zorder=4)
    limits = _focus(_after_warm_up(usable, column))
    if limits:
        ax.set_ylim(*limits)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return fig


def _line(points: np.ndarray, x_max: float, y_lo: float, y_hi: float, width: int, height: int) -> str:
    if len(points) > LIVE_POINTS:
        points = points[np.linspace(0, len(points) - 1, LIVE_POINTS).round().astype(int)]
    xs = points[:, 0] / x_max * width
    ys = height - (np.clip(points[:, 1], y_lo, y_hi) - y_lo) / (y_hi - y_lo) * height
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))


def _points(curve, column: str) -> np.ndarray:
    frame = pd.DataFrame(list(curve) if not isinstance(curve, pd.DataFrame) else curve)
    if frame.empty or column not in frame or "training_seconds" not in frame:
        return np.empty((0, 2))
    data = frame[["training_seconds", column]].apply(pd.to_numeric, errors="coerce").dropna()
    return data.sort_values("training_seconds").to_numpy(dtype=float)


def live_curve_svg(current, best, budget_s: float, column: str = "loss", width: int = 320,
                   height: int = 110) -> str:
    """Returns inline SVG markup of the running curve (blue) over the best run's (green) by training
    time, the x axis spanning the budget; "" when neither has points. `current` and `best` are lists
    of curve points or DataFrames."""
    now, ref = _points(current, column), _points(best, column)
    if not len(now) and not len(ref):
        return ""
    both = np.concatenate([p for p in (now, ref) if len(p)])
    late = both[both[:, 0] >= FOCUS_FROM * budget_s]
    lo, hi = _focus((late if len(late) else both)[:, 1])
    x_max = max(float(budget_s), float(both[:, 0].max()), 1e-9)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(column)} by training time">',
             f'<rect width="{width}" height="{height}" fill="none" stroke="#d0d7de"/>']
    for points, colour, name in ((ref, BEST_COLOUR, "best"), (now, CURRENT_COLOUR, "this run")):
        if len(points):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                         f'points="{_line(points, x_max, lo, hi, width, height)}"><title>{name}</title></polyline>')
    parts.append(f'<text x="4" y="12" font-size="10" fill="#57606a">{html.escape(column)} {hi:.3g}</text>'
                 f'<text x="4" y="{height - 4}" font-size="10" fill="#57606a">{lo:.3g}</text></svg>')
    return "".join(parts)


def curves_figure(campaign, numbers: list[int] | None):
    """Returns (figure, curves DataFrame) of the curves verb: the given experiments, else the best and
    the latest ones."""
    best = campaign.best()
    best_number = int(best["key"]) if best and str(best.get("key", "")).isdigit() else None
    frame = campaign.curves(numbers or default_experiments(campaign))
    labels = {int(k): rows[-1].get("description", "")[:30] for k, rows in campaign.experiments().items()
              if str(k).isdigit()}
    return plot_curves(frame, best_number, labels=labels), frame
