"""Notebook export: widget outputs get static fallbacks from their saved state; `report --html`."""
from __future__ import annotations

import base64

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autoresearch_magics.cli import main
from autoresearch_magics.presentation.notebook_export import (WIDGET_STATE, WIDGET_VIEW, add_static_fallbacks,
                                                              export_html)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


def model(name: str, **state) -> dict:
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": state}


def panel_notebook():
    """Returns an executed-looking notebook: a panel (HTML, progress bar, log output, image) and its state."""
    states = {
        "box": model("VBoxModel", children=["IPY_MODEL_head", "IPY_MODEL_row", "IPY_MODEL_tail", "IPY_MODEL_plot"],
                     layout="IPY_MODEL_lay"),
        "lay": model("LayoutModel", border="1px solid #d0d7de"),
        "head": model("HTMLModel", value="<b>#2</b> wider MLP &mdash; <b style='color:#1a7f37'>KEEP</b>"),
        "row": model("HBoxModel", children=["IPY_MODEL_bar"]),
        "bar": model("FloatProgressModel", value=1.0, min=0.0, max=1.0, bar_style="success", description="done"),
        "tail": model("OutputModel", outputs=[{"output_type": "stream", "name": "stdout",
                                              "text": "val_bpb: 1.234 <end>\n"}]),
        "plot": {**model("ImageModel", format="png"),
                 "buffers": [{"data": PNG, "encoding": "base64", "path": ["value"]}]},
    }
    view = new_output("display_data", data={WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
                                            "text/plain": "VBox(...)"})
    nb = new_notebook(cells=[new_code_cell("%autoresearch run -m 'wider MLP'", outputs=[view])])
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": states, "version_major": 2, "version_minor": 0}}
    return nb


def test_widget_output_gets_html_of_its_last_state():
    nb = panel_notebook()
    assert add_static_fallbacks(nb) == 1
    data = nb.cells[0].outputs[0]["data"]
    static = data["text/html"]
    assert WIDGET_VIEW in data                         # a live front end still draws the widget
    assert "wider MLP" in static and "KEEP" in static
    assert "width:100.0%" in static and "#1a7f37" in static
    assert "val_bpb: 1.234 &lt;end&gt;" in static      # log text escaped
    assert f"data:image/png;base64,{PNG}" in static
    assert add_static_fallbacks(nb) == 0               # idempotent


def test_widget_without_saved_state_is_left_alone():
    nb = panel_notebook()
    nb.metadata.pop("widgets")
    assert add_static_fallbacks(nb) == 0
    assert "text/html" not in nb.cells[0].outputs[0]["data"]


def test_exported_page_shows_the_static_state_and_no_widget_view(tmp_path):
    path = tmp_path / "campaign.ipynb"
    nbformat.write(panel_notebook(), path)
    page = export_html(path).read_text()
    assert path.with_suffix(".html").exists()
    assert "wider MLP" in page and "autoresearch-static" in page
    assert WIDGET_VIEW not in page and WIDGET_STATE not in page


def test_report_html_writes_the_notebook_page_beside_the_summary(toy_campaign, tmp_path, capsys):
    toy_campaign.run("baseline")
    notebook = tmp_path / "campaign.ipynb"
    nbformat.write(panel_notebook(), notebook)
    out = tmp_path / "report"
    assert main(["report", "-C", str(toy_campaign.paths.root), "--out", str(out), "--no-hardware",
                 "--html", str(notebook)]) == 0
    assert "wider MLP" in (out / "campaign.html").read_text()
    summary = (out / "autoresearch-summary.md").read_text()
    assert "[campaign.html](campaign.html)" in summary and (out / "progress.png").exists()
    assert str(out / "campaign.html") in capsys.readouterr().out


def test_widget_saved_without_state_becomes_a_note_not_its_repr(tmp_path):
    nb = panel_notebook()
    nb.metadata.pop("widgets")                        # JupyterLab's default: no widget state saved
    nb.cells[0].outputs[0]["data"]["text/plain"] = "VBox(children=(HTML(value='<b>#2</b>'),))"
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    page = export_html(path).read_text()
    assert "VBox(" not in page and "HTML(value=" not in page
    assert "saved without its state" in page


def test_panel_static_copy_is_kept_and_its_widget_slot_stays_hidden(tmp_path):
    from autoresearch_magics.presentation.live_output import SLOT_CLASS
    from autoresearch_magics.presentation.panel import ExperimentPanel
    panel = ExperimentPanel("val_bpb", 60, "wider MLP")
    panel.finished = True
    static, live = panel.output.static_bundle(), panel.output.live_bundle()
    nb = new_notebook(cells=[new_code_cell("%autoresearch run -m 'wider MLP'", outputs=[
        new_output("display_data", data=static), new_output("display_data", data=live)])])
    path = tmp_path / "panel.ipynb"
    nbformat.write(nb, path)
    page = export_html(path).read_text()
    assert "wider MLP" in page and SLOT_CLASS in page and WIDGET_VIEW not in page
    # the page's own styles hide the slot, and the copy whenever a live widget is drawn after it
    assert f":has(.{SLOT_CLASS})" in page and ".autoresearch-copy" in page and ":has(+ .jp-OutputArea-child .autoresearch-live)" in page
