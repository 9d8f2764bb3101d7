"""The waiting proposal in a loop's live panel: description, similarity note, diff, and the
Run / Edit / Skip (with a reason) / Stop buttons of approve mode.

The gate tells the view (on the loop's worker thread) when a proposal starts and stops waiting;
the view only sets traits, through the panel's TraitBatcher, so the panel stays within its message
budget. Button callbacks run on the kernel's main thread and answer through `gate.decide`. The
buttons are live-only: a saved notebook's static copy shows "waiting for approval" and the diff.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

from .html import MONO, diff_html, esc
from .static_html import LIVE_ONLY
from .throttle import TraitBatcher

HIDDEN, SHOWN = "none", ""


class ProposalView:
    """Shows the proposal an ApprovalGate waits on and answers it from buttons."""

    def __init__(self, gate, batch: TraitBatcher, on_edit: Callable | None = None) -> None:
        self.gate, self._batch, self.on_edit = gate, batch, on_edit
        self.summary = widgets.HTML()
        self.diff = widgets.HTML()
        self.reason = widgets.Text(placeholder="reason for skipping (optional; the agent reads it)",
                                   layout=widgets.Layout(width="40%"))
        self.buttons = {name: widgets.Button(description=name, button_style=style, tooltip=tip)
                        for name, style, tip in (
                            ("Run", "success", "run this proposal"),
                            ("Edit", "", "put it into a %%experiment cell to change and run (ends the loop)"),
                            ("Skip", "warning", "do not run it; the reason goes to the next prompt"),
                            ("Stop", "danger", "end the loop here"))}
        for name, button in self.buttons.items():
            button.on_click(lambda _, choice=name.lower(): self.answer(choice))
        self.controls = widgets.HBox([*self.buttons.values(), self.reason], _dom_classes=(LIVE_ONLY,))
        self.edit_area = widgets.Box()
        self.widget = widgets.VBox([self.summary, self.diff, self.controls, self.edit_area],
                                   layout=widgets.Layout(display=HIDDEN))
        self._edited = False
        gate.watchers.append(self.waiting)

    def waiting(self, info) -> None:
        """Shows `info` as the waiting proposal, or hides the view when None (worker thread)."""
        if info is None:
            with self._batch.hold():
                self._batch.set(self.controls.layout, display=HIDDEN)
                if not self._edited:   # the cell to copy stays in view
                    self._batch.set(self.summary, value="")
                    self._batch.set(self.diff, value="")
                    self._batch.set(self.widget.layout, display=HIDDEN)
            return
        similar = (info.similarity or {}).get("message") if (info.similarity or {}).get("kind") else ""
        note = f"<br><span style='color:#9a6700'>&#9888; {esc(similar)}</span>" if similar else ""
        summary = (f"<div style='{MONO}'><b>waiting for approval</b>: proposal #{info.experiment} "
                   f"{esc(info.description)}{note}</div>")
        with self._batch.hold():
            self._batch.set(self.summary, value=summary)
            self._batch.set(self.diff, value=diff_html(info.diff, "diff against the best"))
            self._batch.set(self.reason, value="")
            self._batch.set(self.controls.layout, display=SHOWN)
            self._batch.set(self.widget.layout, display=SHOWN)

    def answer(self, choice: str) -> bool:
        """Answers the waiting proposal with `choice` (a button's callback, main thread)."""
        info = self.gate.waiting
        if info is None:
            return False
        if choice == "edit" and self.on_edit is not None:
            shown = self.on_edit(info)
            if shown is not None:
                self._edited = True
                self._batch.set(self.edit_area, children=(shown,))
        return self.gate.decide(choice, self.reason.value if choice == "skip" else "",
                                experiment=info.experiment, source="panel")
