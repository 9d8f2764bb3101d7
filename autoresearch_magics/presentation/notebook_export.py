"""Notebooks as campaign reports: run one headless, and export it to HTML that reads the same
without a kernel.

A live panel is an ipywidgets view; saved, it is only a reference to widget state, which GitHub
and an HTML page without the widget scripts cannot show. `add_static_fallbacks` renders each
widget's last saved state (HTML text, progress bars, log output, images such as the plot) into
a `text/html` entry beside the widget view, and `export_html` writes the page from those.
"""
from __future__ import annotations

import html
import json
import sys
import tempfile
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MODEL_PREFIX = "IPY_MODEL_"
BAR_COLOURS = {"success": "#1a7f37", "danger": "#cf222e", "warning": "#9a6700", "info": "#0969da", "": "#0969da"}
KERNEL_NAME = "autoresearch-notebook"
STATIC_MARK = "<div class='autoresearch-static'>"


# -- static rendering of saved widget state ---------------------------------------------------------
def widget_states(nb) -> dict[str, dict]:
    """Returns {model id: saved model} from an executed notebook's metadata (empty when none)."""
    return dict(nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}))


def render_widget(model_id: str, states: dict[str, dict]) -> str:
    """Returns static HTML for a widget and its children, from their saved state ('' if unknown)."""
    model = states.get(model_id)
    if model is None:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
        row = name == "HBoxModel"
        inner = "".join(render_widget(_ref(child), states) for child in state.get("children", []))
        layout = _layout(state, states)
        # ipywidgets 8 stores `border` as its four sides
        border = layout.get("border") or layout.get("border_top") or ""
        style = (f"display:flex; flex-direction:{'row' if row else 'column'}; gap:4px; "
                 f"align-items:{'center' if row else 'stretch'}")
        if border:
            style += f"; border:{border}; padding:4px 8px"
        return f"<div style='{style}'>{inner}</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{state.get('value', '')}</div>" if state.get("value") else ""
    if name in ("LabelModel", "TextModel", "TextareaModel"):
        return f"<div>{html.escape(str(state.get('value', '')))}</div>" if state.get("value") else ""
    if name in ("FloatProgressModel", "IntProgressModel"):
        return _progress(state)
    if name == "OutputModel":
        return "".join(_output_html(out) for out in state.get("outputs", []))
    if name == "ImageModel":
        data = next((b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
        if not data:
            return ""
        return (f"<img src='data:image/{state.get('format', 'png')};base64,{data}' "
                f"style='max-width:100%' alt='plot'>")
    return ""


def _ref(child) -> str:
    return str(child).removeprefix(MODEL_PREFIX)


def _layout(state: dict, states: dict) -> dict:
    layout = states.get(_ref(state.get("layout", "")), {})
    return layout.get("state", {})


def _progress(state: dict) -> str:
    low, high = float(state.get("min", 0.0)), float(state.get("max", 1.0))
    fraction = (float(state.get("value", 0.0)) - low) / (high - low) if high > low else 0.0
    colour = BAR_COLOURS.get(state.get("bar_style") or "", BAR_COLOURS[""])
    label = html.escape(str(state.get("description") or ""))
    return (f"<div style='display:flex; align-items:center; gap:6px; min-width:220px'>"
            f"<span style='font-family:monospace; font-size:12px; min-width:3em'>{label}</span>"
            f"<div style='flex:1; height:10px; min-width:160px; background:#eaeef2; border-radius:3px'>"
            f"<div style='width:{100 * max(0.0, min(1.0, fraction)):.1f}%; height:100%; background:{colour}; "
            f"border-radius:3px'></div></div></div>")


def _output_html(output: dict) -> str:
    """Returns one saved output of an Output widget as HTML."""
    if output.get("output_type") == "stream":
        return f"<pre style='font-size:12px; max-height:16em; overflow:auto; margin:2px 0'>" \
               f"{html.escape(_text(output.get('text', '')))}</pre>"
    data = output.get("data", {})
    if "text/html" in data:
        return _text(data["text/html"])
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{_text(data['image/png']).strip()}' style='max-width:100%'>"
    if "text/plain" in data:
        return f"<pre>{html.escape(_text(data['text/plain']))}</pre>"
    if output.get("output_type") == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
    return ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def add_static_fallbacks(nb) -> int:
    """Adds `text/html` rendered from the saved state to every widget output lacking one (or redraws
    one added before); returns how many changed."""
    states = widget_states(nb)
    added = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            ours = _text(data.get("text/html", "")).startswith(STATIC_MARK)   # redrawn: the state may be newer
            if WIDGET_VIEW not in data or ("text/html" in data and not ours):
                continue
            static = render_widget(data[WIDGET_VIEW].get("model_id", ""), states)
            if static:
                added += _text(data.get("text/html", "")) != STATIC_MARK + static + "</div>"
                data["text/html"] = STATIC_MARK + static + "</div>"
    return added


# -- export -----------------------------------------------------------------------------------------
def export_html(notebook: str | Path, target: str | Path | None = None) -> Path:
    """Writes the notebook as a self-contained HTML page (widgets as their final state); returns its path."""
    from nbconvert import HTMLExporter  # heavy: loaded only when exporting

    notebook = Path(notebook)
    target = Path(target) if target else notebook.with_suffix(".html")
    nb = nbformat.read(notebook, as_version=4)
    add_static_fallbacks(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                # the page shows the static state; without this, a page with the widget scripts
                # would draw an empty live widget over it
                del data[WIDGET_VIEW]
    nb.metadata.pop("widgets", None)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": notebook.stem}})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


# -- headless runs ----------------------------------------------------------------------------------
def run_notebook(notebook: str | Path, target: str | Path, cwd: str | Path | None = None,
                 timeout_s: float | None = None) -> Path:
    """Executes a notebook headless in a kernel of this Python, saves it with widget state and static
    fallbacks to `target`, and returns `target`; raises nbclient's CellExecutionError on an error."""
    from nbclient import NotebookClient

    notebook, target = Path(notebook), Path(target)
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory() as specs:
        client = NotebookClient(nb, timeout=timeout_s, kernel_name=KERNEL_NAME, store_widget_state=True,
                                resources={"metadata": {"path": str(cwd or notebook.parent)}},
                                kernel_manager_class=_manager_class(Path(specs)))
        try:
            client.execute()
        finally:
            add_static_fallbacks(nb)
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)   # also when a cell failed: the saved notebook shows where
    return target


def _manager_class(folder: Path):
    """Returns a KernelManager class whose kernel runs this interpreter, whatever kernelspecs exist."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from traitlets import default

    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (autoresearch)", "language": "python"}))

    class _Specs(KernelSpecManager):
        @default("kernel_dirs")
        def _only_ours(self):
            return [str(folder / "kernels")]

    class _Manager(KernelManager):
        @default("kernel_spec_manager")
        def _our_specs(self):
            return _Specs(parent=self)

    return _Manager
