"""The live panel of one background job (an experiment or a loop), as ipywidgets.

The panel is a listener: the worker thread calls it, and it only sets widget traits (never
prints or displays). Every change goes through a TraitBatcher, which merges them and keeps the
panel under 10 widget messages a second; a job's end is flushed before the job reports done.

`show()` displays it with a static copy (live_output.py), so the saved notebook reads without a
kernel; while its job runs, a heartbeat redraws a hidden "no news from the kernel" note, which
appears in the browser if the kernel dies and the redraws stop.
"""
from __future__ import annotations

import copy
import threading

import ipywidgets as widgets

from ..core.background import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobListener
from ..core.errors import CampaignError
from ..core.events import ExperimentResult
from ..core.phases import duration_text, live_progress
from .html import MONO, badge, diff_html, esc, number, params_html, pre, stale_note
from .live_output import LIVE_CLASS, LiveOutput
from .static_html import LIVE_ONLY, render_widget, widget_states
from .curves_plot import live_curve_svg
from .throttle import TraitBatcher

TAIL_LINES = 12          # log lines shown while running and after the end
HISTORY_LINES = 20       # finished experiments listed in a loop's panel
NOTES = 3                # loop messages kept
HEARTBEAT_S = 10.0       # a running job's view is redrawn at least this often (well under STALE_AFTER_S)
BAR_LABELS = {"start-up": "start-up", "preparation": "preparing", "evaluation": "evaluating"}  # else "N%"


class ExperimentPanel(JobListener):
    """Experiment number and description, the candidate's diff (and a sweep's values), budget progress,
    loss and throughput, log tail, outcome."""

    wants_diff = True   # the start event should carry the diff against the best

    def __init__(self, metric: str, budget_s: float, description: str = "", kind: str = "experiment") -> None:
        self.metric, self.budget_s, self.kind = metric, budget_s, kind
        self.description = description
        self.experiment: int | None = None
        self.run = 1                          # repeat runs of one experiment count from 1
        self.finished_lines: list[str] = []
        self.notes_text: list[str] = []
        self.state = "queued"
        self.finished = False
        self._state_extra = ""
        self._diff_from_cell = False          # the cell showed the diff before the run started
        self._beats = 0
        self._heartbeat: threading.Event | None = None
        self._batch = TraitBatcher()
        self._lock = threading.RLock()        # the main thread (queueing) and the worker both update
        self.header = widgets.HTML()
        self.pulse = widgets.HTML(_dom_classes=(LIVE_ONLY,))
        self.candidate = widgets.HTML()
        self.diff = widgets.HTML()
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="0%", bar_style="info",
                                              layout=widgets.Layout(width="38%", min_width="220px"))
        self.stats = widgets.HTML()
        self.curve = widgets.HTML()               # the running loss curve over the best's
        self._best_curve: list[dict] = []
        self._last_snapshot: dict = {}            # the run's latest live state, for the line its end leaves
        self.tail = widgets.Output(layout=widgets.Layout(max_height="16em", overflow="auto"))
        self.outcome = widgets.HTML()
        self.history = widgets.HTML()
        self.notes = widgets.HTML()
        self.widget = widgets.VBox([self.header, self.pulse, self.candidate, self.diff,
                                    widgets.HBox([self.progress, self.stats],
                                                 layout=widgets.Layout(align_items="center")),
                                    self.curve, self.tail, self.outcome, self.history, self.notes],
                                   layout=widgets.Layout(border="1px solid #d0d7de", padding="4px 8px"),
                                   _dom_classes=("autoresearch-panel", LIVE_CLASS))
        self.output = LiveOutput(self.widget, self.static_html, lambda: self.finished)

    def attach_gate(self, gate, on_edit=None):
        """Adds approve mode's proposal view (waiting proposal and its buttons) below the header."""
        from .proposal_view import ProposalView
        self.proposal_view = ProposalView(gate, self._batch, on_edit)
        children = list(self.widget.children)
        children.insert(children.index(self.pulse) + 1, self.proposal_view.widget)
        self.widget.children = tuple(children)
        return self.proposal_view

    def _repr_mimebundle_(self, **kwargs):
        return self.output.combined_bundle()

    # -- display (main thread) ---------------------------------------------------------------------
    def show(self) -> None:
        """Displays the panel and its static copy in the current cell."""
        self.output.show()

    def static_html(self) -> str:
        """Returns the panel as static HTML: its final state once the job is over, else the state so far
        under a heading saying the copy is not live."""
        with self._lock:
            self._batch.flush(wait=True)
            states = copy.deepcopy(widget_states(self.widget))
            if not self.finished:
                states[self.header.model_id]["state"]["value"] = self._header_html(
                    "not live", "&middot; a copy saved when the cell ran; the live view needs the kernel that "
                                "ran it (the outcome: <code>%autoresearch status</code>, results.tsv)")
        return render_widget(self.widget.model_id, states)

    # -- helpers -------------------------------------------------------------------------------
    @property
    def messages(self) -> int:
        """Returns how many widget update messages the panel sent."""
        return self._batch.messages

    def _set(self, widget, **traits) -> None:
        self._batch.set(widget, **traits)

    def _get(self, widget, name: str):
        return self._batch.value(widget, name)

    def _show_tail(self, lines: list[str]) -> None:
        # replacing `outputs` is thread-safe; `with out:` / clear_output() are not
        text = "\n".join(lines[-TAIL_LINES:])
        outputs = ({"output_type": "stream", "name": "stdout", "text": text + "\n"},) if text else ()
        self._set(self.tail, outputs=outputs)

    def _title(self, state: str, extra: str = "") -> None:
        self.state, self._state_extra = state, extra
        self._set(self.header, value=self._header_html(state, extra))

    def _header_html(self, state: str, extra: str = "") -> str:
        number_text = f"#{self.experiment}" if self.experiment is not None else "next experiment"
        if self.run > 1:
            number_text += f" (run {self.run})"
        what = f"loop ({esc(self.description)})" if self.kind == "loop" else esc(self.description)
        current = (f" &middot; now #{self.experiment}" if self.kind == "loop" and self.experiment else "")
        head = (f"<b>{what}</b>{current}" if self.kind == "loop" else f"<b>{number_text}</b> {what}")
        return f"<div style='{MONO}'>{head} &mdash; {badge(state)}{' ' + extra if extra else ''}</div>"

    def show_diff(self, diff: str, label: str) -> None:
        """Shows the change this job makes, collapsible (before it starts: the cell's own diff)."""
        with self._lock:
            self._diff_from_cell = self.experiment is None and bool(diff.strip())
            self._set(self.diff, value=diff_html(diff, label))

    def show_candidate(self, description: str, diff: str | None = None, params: dict | None = None,
                       label: str = "diff against the best") -> None:
        """Shows what the starting experiment tries: its description (in a loop's panel), the values a
        sweep proposes, and its unified diff against the best (kept when `diff` is None or empty and
        the cell already showed one)."""
        with self._lock, self._batch.hold():
            line = f"<div style='{MONO}'>now: {esc(description)}</div>" if self.kind == "loop" and description else ""
            self._set(self.candidate, value=line + params_html(params))
            if diff and diff.strip():
                self._set(self.diff, value=diff_html(diff, label))
            elif not self._diff_from_cell:
                self._set(self.diff, value=diff_html("", label))
            self._diff_from_cell = False

    # -- JobListener ---------------------------------------------------------------------------
    def job_changed(self, job: Job) -> None:
        with self._lock, self._batch.hold():
            self._show_job(job)
            self.finished = job.finished
            self._beat()
        if job.finished:
            self._stop_heartbeat()
            self._batch.flush(wait=True)  # before the job reports done: a waiting cell sees the end
        else:
            self._start_heartbeat()

    # -- liveness: a hidden note, redrawn while the job runs, that shows once redraws stop ------------
    def _beat(self) -> None:
        self._beats += 1
        self._set(self.pulse, value="" if self.finished else stale_note(self._beats))

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None:
                return
            self._heartbeat = stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                with self._lock, self._batch.hold():
                    if not self.finished:
                        self._beat()

        threading.Thread(target=beat, name="autoresearch-panel-heartbeat", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None:
                self._heartbeat.set()

    def _show_job(self, job: Job) -> None:
        if job.state == QUEUED and job.ahead == 0:
            self._title("running")  # it starts at once: no "queued" flash
        elif job.state == QUEUED:
            self._title("queued", f"&middot; {job.ahead} ahead; starts when they end "
                                  f"(<code>%autoresearch stop</code> cancels the queue)")
        elif job.state == RUNNING:
            self._title("running")
        elif job.state == CANCELLED:
            self._title("cancelled", "&middot; by <code>%autoresearch stop</code>; run the cell again to retry")
        elif job.state == FAILED:
            error = job.error
            text = str(error) if isinstance(error, CampaignError) else f"{type(error).__name__}: {error}"
            self._title("failed")
            self._set(self.outcome, value=f"<div style='{MONO}'>{badge('failed')}: {esc(text)}</div>")
            if not isinstance(error, CampaignError):
                self._show_tail(job.error_trace.splitlines())
            self._set(self.progress, bar_style="danger")
        elif job.state == DONE:
            last = job.results[-1] if job.results else None
            if self.kind == "loop":
                self._title("done", f"&middot; {len(job.results)} experiments")
            elif last is not None:
                self._title(last.status)
            else:
                self._title("stopped", "&middot; before it started")

    def experiment_started(self, info: dict) -> None:
        with self._lock, self._batch.hold():
            self.experiment, self.run = info["experiment"], info.get("run", 1)
            if self.kind != "loop":
                self.description = info["description"]
            self._title("running")
            unchanged = info.get("commit") is not None and info.get("commit") == info.get("parent")
            label = (f"runs train.py as committed ({info['commit']}), unchanged" if unchanged
                     else f"diff against the best ({info.get('parent', '?')})")
            if not unchanged and not info.get("diff") and not self._diff_from_cell:
                label += f"; %autoresearch show {self.experiment} prints it"
            self.show_candidate(info.get("description", ""), info.get("diff"), info.get("params"), label)
            self.budget_s = info.get("budget_s", self.budget_s)
            self._last_snapshot = {}
            self._set(self.progress, value=0.0, description=BAR_LABELS["start-up"], bar_style="info")
            self._set(self.stats, value=f"<span style='{MONO}'>starting up&hellip;</span>")
            self._best_curve = _curve_points(info.get("best_curve"))
            self._set(self.curve, value=live_curve_svg([], self._best_curve, self.budget_s))
            earlier = self._get(self.outcome, "value")
            if earlier:  # an earlier experiment of this job (a baseline, a loop step)
                self.finished_lines.append(earlier)
                self._show_history()
            self._set(self.outcome, value="")
            self._show_tail([])

    def updated(self, snapshot: dict) -> None:
        with self._lock, self._batch.hold():
            self._show_progress(snapshot)

    def _show_progress(self, snapshot: dict) -> None:
        # one rule with the sidebar (phases.live_progress): the bar follows training time, not wall time
        progress = live_progress({"budget_s": self.budget_s, **snapshot})
        self._last_snapshot = snapshot
        fraction = progress["fraction"]
        label = BAR_LABELS.get(progress["phase"]) or (f"{100 * fraction:.0f}%" if fraction is not None else "running")
        self._set(self.progress, value=fraction or 0.0, description=label)
        parts = _step_parts(snapshot) + [progress["text"]]
        if snapshot.get("peak_rss_mb"):
            parts.append(f"peak RSS {snapshot['peak_rss_mb']:.0f} MB")
        self._set(self.stats, value=f"<span style='{MONO}'>{esc(' · '.join(parts))}</span>")
        if snapshot.get("curve"):  # sent with the progress, within the batcher's message budget
            self._set(self.curve, value=live_curve_svg(_curve_points(snapshot["curve"]), self._best_curve,
                                                       self.budget_s))
        if snapshot.get("tail"):
            self._show_tail(snapshot["tail"])

    def _final_stats(self, result: ExperimentResult) -> str:
        """Returns the stats line a finished run leaves: its last step and loss, where its wall time went and
        its peak memory (the run's own peak, never the last sample taken as it exited)."""
        parts = [p for p in _step_parts(self._last_snapshot) if not p.endswith("tok/s")]
        phases = result.phases or {}
        spent = [f"{name} {duration_text(phases[key])}" for name, key in
                 (("start-up", "startup_s"), ("training", "train_wall_s"), ("evaluation", "eval_s"))
                 if phases.get(key) is not None]
        if result.wall_s:
            parts.append(f"{duration_text(result.wall_s)} wall" + (f" ({', '.join(spent)})" if spent else ""))
        peak = peak_rss_mb(result)
        if peak is not None:
            parts.append(f"peak RSS {peak:.0f} MB")
        return f"<span style='{MONO}'>{esc(' · '.join(parts))}</span>" if parts else ""

    def experiment_finished(self, result: ExperimentResult) -> None:
        with self._lock, self._batch.hold():
            self._set(self.outcome, value=describe_outcome(result, self.metric))
            style = {"keep": "success", "discard": "", "crash": "danger"}[result.status]
            final = 1.0 if result.status != "crash" else self._get(self.progress, "value")
            self._set(self.progress, value=final, bar_style=style,
                      description="done" if result.status != "crash" else "crash")
            self._set(self.stats, value=self._final_stats(result))
            self._show_tail(result.tail)
            self._title(result.status)

    def _show_history(self) -> None:
        shown = self.finished_lines[-HISTORY_LINES:]
        more = len(self.finished_lines) - len(shown)
        self._set(self.history, value=(f"<div style='{MONO}; color:#57606a'>earlier in this {self.kind}"
                                       f"{f' ({more} more not shown)' if more else ''}:</div>" + "".join(shown)))

    def message(self, text: str) -> None:
        with self._lock, self._batch.hold():
            self.notes_text = (self.notes_text + [text])[-NOTES:]
            self._set(self.notes, value=pre(self.notes_text))


def _step_parts(snapshot: dict) -> list[str]:
    """Returns the step, loss and throughput of a live state, as short texts."""
    parts = []
    if snapshot.get("step") is not None:
        parts.append(f"step {int(snapshot['step'])}")
    if snapshot.get("loss") is not None:
        parts.append(f"loss {snapshot['loss']:.4f}")
    if snapshot.get("tok_per_s") is not None:
        parts.append(f"{snapshot['tok_per_s']:,.0f} tok/s")
    return parts


def peak_rss_mb(result: ExperimentResult) -> float | None:
    """Returns a finished run's peak memory in MB: the higher of the tool's measurement of its processes
    and the script's own `peak_rss_mb` summary line (each can miss part of it); None when neither has one."""
    own = result.summary.get("peak_rss_mb") if result.summary else None
    candidates = [result.peak_rss_gb * 1024 if result.peak_rss_gb else None,
                  float(own) if isinstance(own, (int, float)) and own == own else None]
    known = [value for value in candidates if value is not None and value > 0]
    return max(known) if known else None


def _curve_points(pairs) -> list[dict]:
    """Returns the engine's thinned [[training_seconds, loss], ...] as curve points."""
    return [{"training_seconds": t, "loss": v} for t, v in (pairs or [])]


def describe_outcome(result: ExperimentResult, metric: str) -> str:
    """Returns the outcome line: keep / discard with the delta to the best, or the crash reason."""
    head = f"#{result.experiment} [{esc(result.commit[:7])}] {esc(result.description)}: {badge(result.status)}"
    if result.status == "crash":
        return f"<div style='{MONO}'>{head} &mdash; {esc(result.crash_reason)}</div>"
    text = f"{head} {esc(metric)} {number(result.metric)}"
    if result.delta is not None:
        text += f" ({result.delta:+.6f} vs best {number(result.best_before)})"
    elif result.status == "keep":
        text += " (the first result: the baseline to beat)"
    if result.status == "discard":
        text += "; train.py reverted"
    # why (the keep rule, a prune, a re-measurement, an unfair load) and how much of the machine it got
    why = result.evidence + (f" · machine share {result.machine_share:.2f}" if result.machine_share is not None
                             else "")
    if why:
        text += f"<br><span style='color:#57606a'>{esc(why)}</span>"
    return f"<div style='{MONO}'>{text}</div>"
