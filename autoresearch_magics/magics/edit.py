"""`%autoresearch edit`: put train.py into the next cell under `%%experiment`, or, where the front
end cannot pre-fill a cell (VS Code, Colab), show the cell text to copy and the file to edit."""
from __future__ import annotations

import os
import sys


def prefill_blocker(shell) -> str:
    """Returns the name of a front end known to ignore pre-filled cells, or '' when it should work."""
    if "__vsc_ipynb_file__" in shell.user_ns or os.environ.get("VSCODE_PID"):
        return "VS Code"
    if "google.colab" in sys.modules:
        return "Colab"
    return ""


def experiment_cell(message: str, source: str) -> str:
    """Returns the text of a `%%experiment` cell running `source`."""
    quoted = message.replace('"', "'")
    return f'%%experiment -m "{quoted}"\n{source.rstrip()}\n'


def fallback_widget(cell: str, front_end: str, path: str):
    """Returns a widget holding the cell text to copy, with a note on the alternatives."""
    import ipywidgets as widgets

    from ..presentation.html import MONO, esc
    why = f"{front_end} cannot pre-fill the next cell" if front_end else "Here is the cell"
    note = widgets.HTML(
        f"<div style='{MONO}'>{esc(why)}: copy this into a new cell (click in the box, select all, copy), "
        f"edit it and run it. Or edit <code>{esc(path)}</code> in the editor and run "
        f"<code>%autoresearch run -m \"...\"</code>.</div>")
    box = widgets.Textarea(value=cell, rows=min(30, cell.count("\n") + 1),
                           layout=widgets.Layout(width="100%"))
    return widgets.VBox([note, box])
