"""A saved notebook as a page that reads without a kernel: every widget output becomes its static
state, and the page is written with nbconvert.

Panels shown by this package already carry a static copy (live_output.py); for other widgets, and
for notebooks saved with widget state, `add_static_fallbacks` renders each widget's saved state
into a `text/html` entry beside its view. A widget output with neither (saved without widget state
by an older version) becomes a one-line note instead of its raw repr.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from .live_output import WIDGET_VIEW
from .static_html import STATIC_MARK, render_widget, static_block, text_of

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MISSING_STATE_NOTE = ("<div style='font-family:monospace; font-size:12px; color:#57606a'>(a live widget was here; "
                      "the notebook was saved without its state)</div>")


def widget_states(nb) -> dict[str, dict]:
    """Returns {model id: saved model} from a notebook's metadata (empty when none was saved)."""
    return dict(nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}))


def add_static_fallbacks(nb) -> int:
    """Adds `text/html` rendered from the saved state to every widget output lacking one (or redraws
    one added before); returns how many changed."""
    states = widget_states(nb)
    added = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            html = text_of(data.get("text/html", ""))
            ours = html.startswith(STATIC_MARK)   # redrawn: the state may be newer
            if WIDGET_VIEW not in data or ("text/html" in data and not ours):
                continue
            static = render_widget(data[WIDGET_VIEW].get("model_id", ""), states)
            if static:
                added += html != static_block(static)
                data["text/html"] = static_block(static)
    return added


def static_outputs(nb) -> None:
    """Replaces every widget output with what reads without a kernel (its static copy, a panel's empty
    placeholder, or a note) and drops the saved widget state."""
    add_static_fallbacks(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                if "text/html" not in data:
                    data["text/html"] = MISSING_STATE_NOTE
                    data.pop("text/plain", None)   # the widget's repr: 'VBox(children=...'
    nb.metadata.pop("widgets", None)


def export_html(notebook: str | Path, target: str | Path | None = None) -> Path:
    """Writes the notebook as a self-contained HTML page (widgets as their final state); returns its path."""
    from nbconvert import HTMLExporter  # heavy: loaded only when exporting

    notebook = Path(notebook)
    target = Path(target) if target else notebook.with_suffix(".html")
    nb = nbformat.read(notebook, as_version=4)
    static_outputs(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": notebook.stem}})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target
