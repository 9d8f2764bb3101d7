"""Learning curves: every run's progress lines as data, stored next to its log.

Recording. A `CurveRecorder` is fed a run's output lines as they arrive (from the runner on this
machine, or from the lines a Ray/Slurm worker streams back) and appends one JSON object per kept
progress line to `logs/<NNNN>[-rK].curve.jsonl`, so a crashed, stopped or pruned run keeps the
curve it had. Each point holds `step`, `training_seconds`, `progress` (fraction of the budget),
`wall_s` (seconds since the run started) and every numeric field of the line (see
progress_line.py for names and units).

Training time. The budget counts training time only, so a point's `training_seconds` is, in
order of preference: the line's own `training_seconds` field; budget x percent when the line
shows `(P%)`; budget - `remaining` when it shows that; else the wall time since the run
started (startup included: the best available). `progress` is percent / 100, else
training_seconds / budget.

Size bound. A run keeps at most `max_points` points (default 1000) whatever its length: every
`stride`-th progress line is kept, the stride starting at 1; when the file reaches `max_points`
points the stride doubles and the file is rewritten (atomically) keeping every other point. So
the stored points are always evenly spaced over the run's progress lines, between half and all of
`max_points` of them, plus the last line seen, added when the run ends.

Reading. `read_curves` returns one long DataFrame (experiment, run, step, training_seconds,
progress, wall_s, loss, other fields); a run recorded before curves existed is read from its log.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable

from .progress_line import is_progress_line, parse_progress_line

MAX_POINTS = 1000
CURVE_SUFFIX = ".curve.jsonl"
BASE_COLUMNS = ("experiment", "run", "step", "training_seconds", "progress", "wall_s", "loss")
PROMPT_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
WINDOW_FRACTION = 0.05   # a loss "at" a fraction of the budget is the mean over this much before it
_RUN_NAME = re.compile(r"^(\d+)(?:-r(\d+))?(?:\.curve\.jsonl|\.log)$")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def curve_path_for(log_path) -> Path:
    """Returns the curve file that belongs to a run's log file (`0007-r2.log` -> `0007-r2.curve.jsonl`)."""
    log_path = Path(log_path)
    stem = log_path.name[:-4] if log_path.name.endswith(".log") else log_path.name
    return log_path.with_name(stem + CURVE_SUFFIX)


def run_of(path) -> tuple[int | None, int | None]:
    """Returns (experiment, run) read from a log or curve file name, or (None, None)."""
    match = _RUN_NAME.match(Path(path).name)
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2) or 1)


class CurveRecorder:
    """Turns one run's output lines into curve points, appended to `path` as they come."""

    def __init__(self, path, budget_s: float | None = None, max_points: int = MAX_POINTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_points < 2:
            raise ValueError("max_points must be at least 2")
        self.path = Path(path) if path is not None else None  # None: keep the points in memory only
        self.budget_s = float(budget_s) if budget_s else None
        self.max_points = max_points
        self.clock = clock
        self.started = clock()
        self.stride = 1
        self.seen = 0                                  # progress lines seen so far
        self.kept: list[tuple[int, dict]] = []         # (ordinal, point), in order
        self._last: tuple[int, str, float] | None = None   # the latest progress line, kept or not
        self._fh = None

    def start(self) -> None:
        """Marks the run's start (wall times count from here)."""
        self.started = self.clock()

    @property
    def points(self) -> list[dict]:
        """Returns the points kept so far."""
        return [point for _, point in self.kept]

    def feed(self, lines: Iterable[str]) -> list[dict]:
        """Consumes output lines; returns the points it kept from them (in order)."""
        new = []
        for line in lines:
            if not is_progress_line(line):
                continue
            ordinal = self.seen
            self.seen += 1
            now = self.clock() - self.started
            self._last = (ordinal, line, now)
            if ordinal % self.stride:
                continue
            point = self._point(line, now)
            if point is None:
                continue
            self._keep(ordinal, point)
            new.append(point)
        return new

    def close(self) -> list[dict]:
        """Adds the last progress line if it was not kept, closes the file; returns what it added."""
        added = []
        if self._last is not None and (not self.kept or self.kept[-1][0] != self._last[0]):
            point = self._point(self._last[1], self._last[2])
            if point is not None:
                self._store(self._last[0], point)
                added.append(point)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return added

    def _point(self, line: str, wall_s: float) -> dict | None:
        fields = parse_progress_line(line)
        if fields is None:
            return None
        percent = fields.pop("percent")
        step = fields.pop("step")
        budget = self.budget_s
        if "training_seconds" in fields:
            seconds = fields.pop("training_seconds")
        elif percent is not None and budget:
            seconds = budget * percent / 100.0
        elif "remaining_s" in fields and budget:
            seconds = max(0.0, budget - fields["remaining_s"])
        else:
            seconds = wall_s
        if percent is not None:
            progress = percent / 100.0
        else:
            progress = seconds / budget if budget else None
        return {"step": step, "training_seconds": round(seconds, 4),
                "progress": None if progress is None else round(progress, 6), "wall_s": round(wall_s, 3), **fields}

    def _keep(self, ordinal: int, point: dict) -> None:
        self._store(ordinal, point)
        if len(self.kept) >= self.max_points:
            self.stride *= 2
            self.kept = [(i, p) for i, p in self.kept if i % self.stride == 0]
            self._rewrite()

    def _store(self, ordinal: int, point: dict) -> None:
        self.kept.append((ordinal, point))
        if self.path is None:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w")
        self._fh.write(json.dumps(point) + "\n")
        self._fh.flush()  # a killed runner still leaves the curve up to here

    def _rewrite(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.writelines(json.dumps(p) + "\n" for _, p in self.kept)
        if self._fh is not None:
            self._fh.close()
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a")


class CurveWatch:
    """One run's curve where its output lines arrive (the runner, or the loop receiving a remote
    worker's lines): records them and, with a pruner, judges each new point."""

    def __init__(self, recorder: CurveRecorder | None, pruner=None) -> None:
        if pruner is not None and recorder is None:
            raise ValueError("a pruner judges the run's curve: give it a curve recorder too")
        self.recorder, self.pruner = recorder, pruner
        self.decision = None   # the pruner's PruneDecision, once it gives up on the run

    def lines(self, lines: list[str]):
        """Consumes output lines; returns the pruner's decision the first time it gives up, else None."""
        if self.recorder is None:
            return None
        points = self.recorder.feed(lines)
        if points and self.pruner is not None and self.decision is None:
            self.decision = self.pruner.observe(points)
            return self.decision
        return None

    def close(self) -> None:
        """Stores the run's last point and closes its curve file."""
        if self.recorder is not None:
            self.recorder.close()


def read_curve_file(path) -> list[dict]:
    """Returns the points of one curve file ([] if missing); a torn last line is skipped."""
    points = []
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    point = json.loads(line)
                except ValueError:
                    continue
                if isinstance(point, dict) and "step" in point:
                    points.append(point)
    except OSError:
        return []
    return points


def curve_from_log(log_path, budget_s: float | None = None, max_points: int = MAX_POINTS) -> list[dict]:
    """Returns the curve a log file holds (for runs recorded before curves were stored).

    Wall times are unknown there: `wall_s` is None and training time needs the budget."""
    recorder = CurveRecorder(None, budget_s, max_points, clock=lambda: math.nan)
    try:
        with open(log_path, "rb") as fh:
            pending = ""
            while chunk := fh.read(1 << 20):
                parts = _LINE_BREAKS.split(pending + chunk.decode("utf-8", errors="replace"))
                pending = parts.pop()
                recorder.feed(parts)
            recorder.feed([pending])
    except OSError:
        return []
    recorder.close()
    points = recorder.points
    for point in points:
        point["wall_s"] = None
        if budget_s is None and point["progress"] is None:
            point["training_seconds"] = None
    return points


def read_curves(items: Iterable, root=None, budget_s: float | None = None):
    """Returns one long DataFrame of curves, one row per point.

    `items` are curve files, log files (the curve next to it, else the log itself is read) or
    results.tsv rows (dicts with `experiment`, `run`, `log`; a relative `log` is under `root`).
    """
    import pandas as pd  # slow to import: only readers pay for it
    records = []
    for item in items:
        experiment, run, path = _source(item, root)
        curve = curve_path_for(path) if path.name.endswith(".log") else path
        points = read_curve_file(curve) if curve.exists() else \
            curve_from_log(path, budget_s) if path.name.endswith(".log") else []
        records.extend({"experiment": experiment, "run": run, **point} for point in points)
    frame = pd.DataFrame.from_records(records)
    for column in BASE_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype="float64")
    others = [c for c in frame.columns if c not in BASE_COLUMNS]
    frame = frame[list(BASE_COLUMNS) + others]
    for column in ("experiment", "run", "step"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("training_seconds", "progress", "wall_s", *others):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.reset_index(drop=True)


def _source(item, root) -> tuple[int | None, int | None, Path]:
    """Returns (experiment, run, path) of one `read_curves` item."""
    if isinstance(item, dict):
        path = Path(item.get("log") or item.get("path") or "")
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        experiment, run = run_of(path)
        number, index = str(item.get("experiment", "")), str(item.get("run", "") or "1")
        return (int(number) if number.isdigit() else experiment), (int(index) if index.isdigit() else run), path
    path = Path(item)
    return (*run_of(path), path)


def campaign_curves(campaign, experiments: Iterable[int] | None = None):
    """Returns the curves of a campaign's runs (all, or those of `experiments`) as one long DataFrame,
    running experiments included."""
    paths = campaign.paths
    wanted = None if experiments is None else {int(n) for n in experiments}
    sources: dict[tuple[int, int], Path] = {}
    for row in campaign.rows():
        number, index = str(row.get("experiment", "")), str(row.get("run", "") or "1")
        if not number.isdigit() or not index.isdigit():
            continue  # a reference-format row names no log
        log = Path(row.get("log") or paths.log_for(int(number), int(index)))
        sources[(int(number), int(index))] = log if log.is_absolute() else paths.root / log
    if paths.logs.is_dir():
        for curve in paths.logs.glob("*" + CURVE_SUFFIX):
            key = run_of(curve)
            if key[0] is not None:
                sources.setdefault(key, curve)
    keys = sorted(k for k in sources if wanted is None or k[0] in wanted)
    return read_curves([{"experiment": str(k[0]), "run": str(k[1]), "log": str(sources[k])} for k in keys],
                       budget_s=campaign.config.budget_s)


def default_experiments(campaign, latest: int = 3) -> list[int]:
    """Returns the experiments a curve overlay shows by default: the best and the `latest` last ones."""
    numbers = [int(k) for k in campaign.experiments() if str(k).isdigit()]
    running = campaign.current() or {}
    if str(running.get("experiment", "")).isdigit():
        numbers.append(int(running["experiment"]))
    chosen = sorted(set(numbers))[-latest:] if latest > 0 else []
    best = campaign.best()
    if best and str(best.get("key", "")).isdigit():
        chosen.append(int(best["key"]))
    return sorted(set(chosen))


def value_at(curve, fraction: float, column: str = "loss", window: float = WINDOW_FRACTION) -> float | None:
    """Returns the mean of `column` over the points of `curve` (a DataFrame) whose progress lies in
    [fraction - window, fraction], or the last value before it; None when the curve has not got there."""
    usable = curve[["progress", column]].dropna()
    if usable.empty or usable["progress"].max() < fraction - window:
        return None
    inside = usable[(usable["progress"] >= fraction - window) & (usable["progress"] <= fraction)]
    if inside.empty:
        inside = usable[usable["progress"] <= fraction].tail(1)
    return float(inside[column].mean()) if not inside.empty else None


def curve_summary_for_prompt(df, best: int | None = None, last: int | None = None,
                             fractions=PROMPT_FRACTIONS, column: str = "loss") -> str:
    """Returns a few lines comparing the best and the last experiments' curves: `column` at fixed
    fractions of the budget, steps and throughput; "" when neither has a curve."""
    if df is None or df.empty:
        return ""
    if last is None:
        last = int(df["experiment"].max())
    chosen = [("best", best)] if best is not None else []
    if last is not None and last != best:
        chosen.append(("last", last))
    lines = []
    for label, number in chosen:
        curve = df[df["experiment"] == number]
        if curve.empty or column not in curve:
            continue
        cells = [value_at(curve.sort_values("progress"), f, column) for f in fractions]
        text = "  ".join(f"{v:7.4f}" if v is not None else "      -" for v in cells)
        steps = curve["step"].max()
        extra = f"  {int(steps):>6d}" if steps is not None and steps == steps else "       -"
        if "tok_per_sec" in curve and curve["tok_per_sec"].notna().any():
            extra += f"  {curve['tok_per_sec'].median():>10,.0f}"
        lines.append(f"{label} #{number:<4d} {text}{extra}")
    if not lines:
        return ""
    head = "  ".join(f"{f:>7.0%}" for f in fractions)
    throughput = "     tok/sec" if "tok_per_sec" in df and df["tok_per_sec"].notna().any() else ""
    return (f"Learning curves ({column} at shares of the training budget, lower is better; "
            f"steps reached{', median tokens per second' if throughput else ''}):\n"
            f"           {head}   steps{throughput}\n" + "\n".join(lines))


def campaign_curve_summary(campaign, fractions=PROMPT_FRACTIONS) -> str:
    """Returns `curve_summary_for_prompt` for a campaign's best and last experiments."""
    best = campaign.best()
    best_number = int(best["key"]) if best and str(best.get("key", "")).isdigit() else None
    numbers = [int(k) for k in campaign.experiments() if str(k).isdigit()]
    last = max(numbers) if numbers else None
    wanted = [n for n in (best_number, last) if n is not None]
    if not wanted:
        return ""
    return curve_summary_for_prompt(campaign_curves(campaign, wanted), best_number, last, fractions)
