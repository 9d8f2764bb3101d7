"""Static HTML (and plain text) of ipywidgets, drawn from widget state in the format notebooks save
(`metadata.widgets`), so a panel reads the same where no widget can run: GitHub, nbviewer, an
exported page, JupyterLab after a restart.

One renderer serves both sources: the state saved in a notebook, and the state of live widgets in
this kernel (`widget_states`). Widgets marked LIVE_ONLY (the "no news from the kernel" note) are
left out: a static copy never claims to be live.
"""
from __future__ import annotations

import html
from html.parser import HTMLParser

MODEL_PREFIX = "IPY_MODEL_"
STATIC_CLASS = "autoresearch-static"
STATIC_MARK = f"<div class='{STATIC_CLASS}'>"
LIVE_ONLY = "autoresearch-live-only"       # a _dom_class: shown live, never in a static copy
BAR_COLOURS = {"success": "#1a7f37", "danger": "#cf222e", "warning": "#9a6700", "info": "#0969da", "": "#0969da"}
BOXES = ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel")


def widget_states(widget) -> dict[str, dict]:
    """Returns {model id: state} of a live widget and everything it refers to, as a notebook saves it."""
    from ipywidgets.embed import dependency_state
    return dependency_state(widget, drop_defaults=True)


def render_widget(model_id: str, states: dict[str, dict]) -> str:
    """Returns static HTML for a widget and its children, from their saved state ('' if unknown)."""
    model = states.get(model_id)
    if model is None:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    if LIVE_ONLY in state.get("_dom_classes", ()):
        return ""
    if name in BOXES:
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
        return progress_html(state)
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


def progress_html(state: dict) -> str:
    """Returns a progress bar as plain HTML (value, min, max, bar_style, description as saved)."""
    low, high = float(state.get("min", 0.0)), float(state.get("max", 1.0))
    fraction = (float(state.get("value", 0.0)) - low) / (high - low) if high > low else 0.0
    colour = BAR_COLOURS.get(state.get("bar_style") or "", BAR_COLOURS[""])
    label = html.escape(str(state.get("description") or ""))
    return (f"<div style='display:flex; align-items:center; gap:6px; min-width:220px'>"
            f"<span style='font-family:monospace; font-size:12px; min-width:3em'>{label}</span>"
            f"<div style='flex:1; height:10px; min-width:160px; max-width:420px; background:#eaeef2; "
            f"border-radius:3px'><div style='width:{100 * max(0.0, min(1.0, fraction)):.1f}%; height:100%; "
            f"background:{colour}; border-radius:3px'></div></div></div>")


def _output_html(output: dict) -> str:
    """Returns one saved output of an Output widget as HTML."""
    if output.get("output_type") == "stream":
        return f"<pre style='font-size:12px; max-height:16em; overflow:auto; margin:2px 0'>" \
               f"{html.escape(text_of(output.get('text', '')))}</pre>"
    data = output.get("data", {})
    if "text/html" in data:
        return text_of(data["text/html"])
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{text_of(data['image/png']).strip()}' style='max-width:100%'>"
    if "text/plain" in data:
        return f"<pre>{html.escape(text_of(data['text/plain']))}</pre>"
    if output.get("output_type") == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
    return ""


def text_of(value) -> str:
    """Returns a notebook text field (a string or a list of lines) as one string."""
    return "".join(value) if isinstance(value, list) else str(value)


def static_block(inner: str) -> str:
    """Returns `inner` wrapped as a static copy (the class export and the page styles look for)."""
    return f"{STATIC_MARK}{inner}</div>"


class _TextCollector(HTMLParser):
    BLOCKS = {"div", "p", "pre", "tr", "br", "summary", "details", "table", "caption", "li"}
    SKIPPED = {"style", "script"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("  ")
        elif tag == "img":
            self.parts.append("[plot]")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Returns the readable text of an HTML fragment: blocks on their own lines, no blank runs."""
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    lines = [line.rstrip() for line in "".join(collector.parts).splitlines()]
    return "\n".join(line for line in lines if line.strip())
