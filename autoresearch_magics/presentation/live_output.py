"""A live widget shown with a static copy of itself, so the cell's saved output reads without a kernel.

JupyterLab (4, with ipywidgets 8) draws a widget-view output with the widget renderer whenever
the notebook is trusted, and that renderer has no fallback: with the widget model gone (a
restart, a notebook saved without widget state, the default) it writes "Error displaying
widget: model not found" and ignores any text/html beside it. So the static copy is a separate
output, just before the widget's:

1. `display_data` (display id `<id>-static`): text/html and text/plain of the panel's state;
2. `display_data` (display id `<id>-live`): the widget view, with an empty placeholder as text/html.

A small style sheet in the static copy shows exactly one of the two wherever it applies
(JupyterLab, nbconvert's lab template): the live widget while it is drawn, the static copy
otherwise (model not found, no widget state, the widget replaced). Where styles are dropped
(GitHub) the placeholder is empty, so the static copy is what reads.

`publish()` replaces the static copy (and, once the job is over, the widget itself) by display
id. It is called on the main thread only: a cell that waits (`--wait`, `%autoresearch wait`)
delivers the final state into the saved outputs, in nbclient across cells. JupyterLab applies a
display update only to the cell whose request is running, so a cell that returned at once keeps
the copy made when it ran, which says that it is not live.
"""
from __future__ import annotations

import uuid
import weakref
from typing import Callable

from .static_html import html_to_text, static_block

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE_CLASS = "autoresearch-live"           # on the root of every live panel's widget
SLOT_CLASS = "autoresearch-live-slot"      # the widget output's placeholder when no widget is drawn
COPY_CLASS = "autoresearch-copy"           # a static copy followed by its widget's output
CHILD = ".jp-OutputArea-child"
PAGE_STYLE = (
    "<style>"
    # the live widget is drawn: hide its static copy
    f"{CHILD}:has(.{COPY_CLASS}):has(+ {CHILD} .{LIVE_CLASS}){{display:none}}"
    # the widget output after it shows no live widget (placeholder, 'model not found', loading): hide it
    f"{CHILD}:has(.{SLOT_CLASS}),{CHILD}:has(.{COPY_CLASS}) + {CHILD}:not(:has(.{LIVE_CLASS})){{display:none}}"
    "</style>")

_SHOWN: "weakref.WeakSet[LiveOutput]" = weakref.WeakSet()


class LiveOutput:
    """Shows `widget` and a static copy drawn by `render` (a function returning the copy's HTML);
    `finished` says when the widget has nothing more to show (its job is over)."""

    def __init__(self, widget, render: Callable[[], str], finished: Callable[[], bool] = lambda: False) -> None:
        self.widget = widget
        self.render = render
        self.finished = finished
        self.display_id = f"autoresearch-{uuid.uuid4().hex[:12]}"
        self.shown = False
        self.widget_removed = False

    def static_bundle(self) -> dict:
        """Returns the static copy as a mime bundle (text/html with the page styles, text/plain)."""
        inner = self.render()
        return {"text/html": f"{PAGE_STYLE}<div class='{COPY_CLASS}'>{static_block(inner)}</div>",
                "text/plain": html_to_text(inner)}

    def combined_bundle(self) -> dict:
        """Returns one output holding the widget view and the static copy (for `display(panel)`; JupyterLab
        then shows the widget, or 'model not found' once it is gone: `show()` avoids that)."""
        inner = self.render()
        return {**self.live_bundle(), "text/html": static_block(inner), "text/plain": html_to_text(inner)}

    def live_bundle(self) -> dict:
        """Returns the widget's output: its view, and an empty placeholder for every other reader."""
        view = self.widget._repr_mimebundle_()[WIDGET_VIEW]
        return {WIDGET_VIEW: view, "text/html": f"<div class='{SLOT_CLASS}'></div>", "text/plain": ""}

    def show(self) -> None:
        """Displays the static copy, then the live widget (main thread: inside the cell that shows them)."""
        from IPython.display import display
        display(self.static_bundle(), raw=True, display_id=f"{self.display_id}-static")
        display(self.live_bundle(), raw=True, display_id=f"{self.display_id}-live")
        self.shown = True
        _SHOWN.add(self)

    def publish(self) -> None:
        """Replaces the static copy with the current state; once finished, the widget's output becomes
        the empty placeholder, so the saved cell holds no widget reference (main thread only)."""
        if not self.shown or self.widget_removed:
            return
        from IPython.display import update_display
        update_display(self.static_bundle(), raw=True, display_id=f"{self.display_id}-static")
        if self.finished():
            update_display({"text/html": f"<div class='{SLOT_CLASS}'></div>", "text/plain": ""}, raw=True,
                           display_id=f"{self.display_id}-live")
            self.widget_removed = True


def publish_all() -> int:
    """Publishes the current state of every live output shown in this kernel (main thread only: call it
    from a cell that waited for the runs); returns how many were published."""
    published = 0
    for output in list(_SHOWN):
        if output.shown and not output.widget_removed:
            output.publish()
            published += 1
    return published
