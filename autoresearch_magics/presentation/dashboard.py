"""The campaign dashboard: best so far, stop-rule progress, the live run, recent results, the plot.

It reads only the campaign's files (config, results.tsv, the live file), so it follows runs
started anywhere: this kernel, another notebook, a terminal. One shared poller thread refreshes
the live dashboards every REFRESH_S, sending a widget update only when what it shows changed;
only the newest dashboard of a campaign keeps refreshing.

Shown with `show()`, it leaves a static copy in the cell (live_output.py); while it refreshes, a
hidden "no news from the kernel" note is redrawn, and appears if the kernel dies.
"""
from __future__ import annotations

import copy
import os
import threading
import time

import ipywidgets as widgets

from ..core.live import read_live
from .html import MONO, badge, esc, number, results_table, stale_note
from .live_output import LIVE_CLASS, LiveOutput
from .static_html import LIVE_ONLY, render_widget, widget_states
from .throttle import TraitBatcher

REFRESH_S = 1.0          # how often the poller looks at the campaign files
TABLE_ROWS = 12          # recent results shown
HEARTBEAT_S = 10.0       # the liveness note is redrawn this often while the dashboard refreshes


class Dashboard:
    """A live view of one campaign; `refresh()` redraws what changed (safe from any thread)."""

    def __init__(self, campaign, with_plot: bool = True) -> None:
        self.campaign = campaign            # a reader: this object never runs anything
        self.with_plot = with_plot
        self.live = True
        self._batch = TraitBatcher()
        self._lock = threading.Lock()
        self._seen_results = None
        self._beats, self._last_beat = 0, 0.0
        self.summary = widgets.HTML()
        self.pulse = widgets.HTML(_dom_classes=(LIVE_ONLY,))
        self.running = widgets.HTML()
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="50%"))
        self.table = widgets.HTML()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(max_width="900px"))
        self.footer = widgets.HTML()
        children = [self.summary, self.pulse, widgets.HBox([self.progress, self.running]), self.table]
        self.widget = widgets.VBox(children + ([self.plot] if with_plot else []) + [self.footer],
                                   layout=widgets.Layout(border="1px solid #d0d7de", padding="4px 8px"),
                                   _dom_classes=("autoresearch-dashboard", LIVE_CLASS))
        self.output = LiveOutput(self.widget, self.static_html)

    def _repr_mimebundle_(self, **kwargs):
        return self.output.combined_bundle()

    def show(self) -> None:
        """Displays the dashboard and its static copy in the current cell (main thread)."""
        self.output.show()

    def static_html(self) -> str:
        """Returns the dashboard as static HTML, dated, its 'running' line marked as a saved copy."""
        with self._lock:
            self._batch.flush(wait=True)
            states = copy.deepcopy(widget_states(self.widget))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        states[self.footer.model_id]["state"]["value"] = (
            f"<span style='{MONO}; color:#57606a'>a copy of this dashboard as of {stamp}; the live view needs "
            f"the kernel that showed it</span>")
        return render_widget(self.widget.model_id, states)

    def _set(self, widget, **traits) -> None:
        self._batch.set(widget, **traits)

    def refresh(self) -> None:
        """Redraws the parts whose source files changed."""
        with self._lock, self._batch.hold():
            self._refresh_results()
            self._refresh_live()
            if self.live and time.monotonic() - self._last_beat >= HEARTBEAT_S:
                self._beats, self._last_beat = self._beats + 1, time.monotonic()
                self._set(self.pulse, value=stale_note(self._beats))

    def _refresh_results(self) -> None:
        signature = _file_signature(self.campaign.paths.results), _file_signature(self.campaign.paths.config)
        if signature == self._seen_results:
            return
        self._seen_results = signature
        status = self.campaign.status()
        self._set(self.summary, value=summary_html(status))
        frame = self.campaign.frame()
        self._set(self.table, value=results_table(frame, status["metric"], TABLE_ROWS))
        if self.with_plot and not frame.empty:
            from .plot import figure_png, plot_progress  # matplotlib loads on first use, not with the magics
            figure = plot_progress(frame, status["metric"], status["direction"], figsize=(9.0, 3.6))
            self._set(self.plot, value=figure_png(figure, dpi=90))

    def _refresh_live(self) -> None:
        live = read_live(self.campaign.paths)
        if live is None:
            self._set(self.running, value=f"<span style='{MONO}; color:#57606a'>nothing running</span>")
            self._set(self.progress, value=0.0, bar_style="", description="idle")
            return
        fraction = float(live.get("training_fraction") or 0.0)
        loss = f", loss {live['loss']:.4f}" if live.get("loss") is not None else ""
        self._set(self.progress, value=fraction, bar_style="info",
                  description=f"{100 * fraction:.0f}%" if fraction < 1 else "eval")
        self._set(self.running, value=(f"<span style='{MONO}'>{badge('running')} #{live['experiment']} "
                                       f"{esc(live['description'])}{esc(loss)}, {live.get('elapsed_s', 0):.0f}s "
                                       f"elapsed (budget {live['budget_s']:g}s)</span>"))

    def freeze(self, why: str) -> None:
        """Stops refreshing, saying why."""
        self.live = False
        with self._lock:
            self._set(self.pulse, value="")
            self._set(self.footer, value=f"<span style='{MONO}; color:#57606a'>{esc(why)}</span>")


def summary_html(status: dict) -> str:
    """Returns the dashboard's heading: objective, best so far, counts and stop-rule progress."""
    metric, best, baseline = status["metric"], status["best"], status["baseline"]
    counts = status["counts"]
    lines = [f"<b>campaign {esc(status['tag'])}</b> &middot; {esc(status['objective'])} &middot; budget "
             f"{status['budget_s']:g}s &middot; branch <code>{esc(status['branch'])}</code>"]
    if best and best["value"] is not None:
        gain = ""
        if baseline and baseline["value"] is not None and baseline["experiment"] != best["experiment"]:
            gain = f" ({best['value'] - baseline['value']:+.6f} vs baseline {number(baseline['value'])})"
        lines.append(f"best {esc(metric)} <b>{number(best['value'])}</b> &mdash; #{best['experiment']} "
                     f"{esc(best['description'])}{gain}")
    else:
        lines.append("no result yet: the first run becomes the baseline")
    lines.append(f"{status['attempted']} attempted: {counts['keep']} kept, {counts['discard']} discarded, "
                 f"{counts['crash']} crashed")
    stop = status["stop"]
    lines.append(f"<span style='color:{'#cf222e' if stop['reached'] else '#57606a'}'>{esc(stop['progress'])}</span>")
    return f"<div style='{MONO}'>" + "<br>".join(lines) + "</div>"


def _file_signature(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class _Poller:
    """One daemon thread refreshing every live dashboard; it ends when none is left."""

    def __init__(self) -> None:
        self._dashboards: dict[str, Dashboard] = {}   # the live one per campaign folder
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, dashboard: Dashboard) -> None:
        key = str(dashboard.campaign.paths.root)
        with self._lock:
            previous = self._dashboards.get(key)
            self._dashboards[key] = dashboard
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="autoresearch-dashboard", daemon=True)
                self._thread.start()
        if previous is not None and previous is not dashboard:
            previous.freeze("not refreshing: a newer dashboard of this campaign is live")

    def close(self) -> list[Dashboard]:
        """Stops every dashboard (the kernel is closing); returns them."""
        with self._lock:
            boards = list(self._dashboards.values())
            self._dashboards.clear()
        for board in boards:
            board.live = False
        return boards

    def _run(self) -> None:
        while True:
            self._wake.wait(REFRESH_S)
            self._wake.clear()
            with self._lock:
                boards = [b for b in self._dashboards.values() if b.live]
                if not boards:
                    self._thread = None
                    return
            for board in boards:
                try:
                    board.refresh()
                except Exception as exc:  # a half-written file or a vanished folder: say so, keep polling
                    with board._lock:
                        board._set(board.footer, value=f"<span style='{MONO}; color:#cf222e'>"
                                                       f"refresh failed: {esc(exc)}</span>")


POLLER = _Poller()


def live_dashboard(campaign, with_plot: bool = True) -> Dashboard:
    """Returns a dashboard drawn now and kept fresh by the shared poller."""
    if with_plot:
        from . import plot  # noqa: F401  matplotlib loads here, not in the poller while a run trains
    board = Dashboard(campaign, with_plot)
    board.refresh()
    POLLER.add(board)
    return board
