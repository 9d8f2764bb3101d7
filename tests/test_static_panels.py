"""Panels leave a static copy in the cell: a notebook executed headless, saved without widget state
(JupyterLab's default) and exported with plain nbconvert shows every panel's final state."""
from __future__ import annotations

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autoresearch_magics.core.events import ExperimentResult
from autoresearch_magics.presentation.html import DIFF_MAX_LINES
from autoresearch_magics.presentation.live_output import SLOT_CLASS, WIDGET_VIEW
from autoresearch_magics.presentation.notebook_export import WIDGET_STATE, export_html
from autoresearch_magics.presentation.notebook_runner import run_notebook
from autoresearch_magics.presentation.panel import ExperimentPanel
from autoresearch_magics.presentation.static_html import STATIC_CLASS, html_to_text

PATCH = """@@ -13 +13 @@
-LEARNING_RATE = 0.003   # step size (dimensionless); optimum 0.01
+LEARNING_RATE = 0.01    # step size (dimensionless); optimum 0.01
"""


def campaign_notebook(folder) -> nbformat.NotebookNode:
    """Returns a notebook running a toy campaign: a baseline, a patch and a sweep loop, then a wait."""
    cells = [
        f"from autoresearch_magics import Campaign\n"
        f"Campaign.init({str(folder)!r}, tag='report', template='toy', budget_s=0.3)\n"
        f"%cd {folder}",
        "%load_ext autoresearch_magics\n%autoresearch init",
        "%autoresearch run -m baseline",
        f'%%experiment --patch -m "learning rate at its optimum"\n{PATCH}',
        '%autoresearch loop --proposer sweep --space "WIDTH=int(64,512)" --max 2',
        "%autoresearch wait",
        "%autoresearch status",
        '%autoresearch run -m "cut off: no cell waits for it"',
    ]
    return new_notebook(cells=[new_code_cell(c) for c in cells],
                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Runs the campaign notebook with nbclient (widget state stored), then strips the widget state as
    JupyterLab saves by default; returns (notebook, path)."""
    folder = tmp_path_factory.mktemp("static")
    source = folder / "campaign.ipynb"
    nbformat.write(campaign_notebook(folder / "campaign"), source)
    executed = run_notebook(source, folder / "executed.ipynb", cwd=folder, timeout_s=180)
    nb = nbformat.read(executed, as_version=4)
    assert WIDGET_STATE in nb.metadata["widgets"]      # nbclient stored it; JupyterLab would not
    del nb.metadata["widgets"]
    stripped = folder / "saved-by-jupyterlab.ipynb"
    nbformat.write(nb, stripped)
    return nb, stripped


def html_outputs(nb) -> list[str]:
    return [out["data"]["text/html"] for cell in nb.cells for out in cell.get("outputs", [])
            if "text/html" in out.get("data", {})]


def plain_nbconvert(path) -> str:
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab").from_filename(str(path))
    return body


def test_each_panel_cell_saves_its_final_state_and_no_widget(executed):
    nb, _ = executed
    run, experiment, loop = (nb.cells[i] for i in (2, 3, 4))
    for cell in (run, experiment, loop):
        datas = [out["data"] for out in cell.outputs if out.output_type == "display_data"]
        static = [d for d in datas if STATIC_CLASS in d.get("text/html", "")]
        assert len(static) == 1, cell.source
        assert not any(WIDGET_VIEW in d for d in datas)    # the finished panel's widget was replaced
        assert "not live" not in static[0]["text/plain"]   # the final state, not the copy made at the start
    baseline_text = run.outputs[0]["data"]["text/plain"]
    assert re.search(r"#1 baseline .*KEEP", baseline_text) and "val_bpb" in baseline_text
    experiment_html = experiment.outputs[0]["data"]["text/html"]
    assert "learning rate at its optimum" in experiment_html and "KEEP" in experiment_html
    assert "+LEARNING_RATE = 0.01" in experiment_html                 # the diff against the best
    assert re.search(r"\(-0\.\d+ vs best", experiment.outputs[0]["data"]["text/plain"])   # metric and delta
    loop_html = loop.outputs[0]["data"]["text/html"]
    assert "now: sweep #1: WIDTH=" in loop_html and "DONE" in loop_html   # the values tried, by name
    assert re.search(r"#3 \[\w+\] sweep #0: WIDTH=\d+: .*(KEEP|DISCARD)", html_to_text(loop_html))


def test_a_run_nobody_waited_for_keeps_a_copy_that_says_it_is_not_live(executed):
    nb, _ = executed
    static, live = nb.cells[-1].outputs
    assert "cut off" in static["data"]["text/plain"] and "NOT LIVE" in static["data"]["text/plain"]
    assert "RUNNING" not in static["data"]["text/plain"]
    assert WIDGET_VIEW in live["data"] and SLOT_CLASS in live["data"]["text/html"] and not live["data"]["text/plain"]


def test_plain_nbconvert_of_the_saved_notebook_reads_as_a_report(executed):
    nb, path = executed
    page = plain_nbconvert(path)
    text = html_to_text(page)
    for needle in ("#1 baseline — KEEP", "#2 learning rate at its optimum — KEEP", "+LEARNING_RATE = 0.01",
                   "loop (sweep) · now #4 — DONE", "vs best", "val_bpb:"):
        assert needle in text, needle
    assert "NOT LIVE" in text and "RUNNING" not in text
    assert "VBox(" not in page and "HTML(value=" not in page
    assert "model not found" not in page.lower()
    assert "Loading widget" not in page


def test_report_html_of_the_saved_notebook_has_only_static_panels(executed, tmp_path):
    _, path = executed
    page = export_html(path, tmp_path / "report.html").read_text()
    assert WIDGET_VIEW not in page and WIDGET_STATE not in page
    assert "learning rate at its optimum" in page and "VBox(" not in page


# -- the panel without a kernel ----------------------------------------------------------------
def result(**fields) -> ExperimentResult:
    values = dict(experiment=3, run=1, commit="abc1234def", parent="0123456789", status="keep", metric=1.2,
                  best_before=1.25, description="wider MLP", tail=["step 9", "val_bpb: 1.2"])
    values.update(fields)
    return ExperimentResult(**values)


def test_static_copy_of_a_running_panel_says_it_is_not_live():
    panel = ExperimentPanel("val_bpb", 60, "wider MLP")
    panel.experiment_started({"experiment": 3, "run": 1, "description": "wider MLP", "commit": "abc1234",
                              "parent": "0123456", "diff": "", "budget_s": 60})
    panel.updated({"training_fraction": 0.36, "step": 40, "loss": 3.1, "elapsed_s": 21})
    text = html_to_text(panel.static_html())
    assert "NOT LIVE" in text and "RUNNING" not in text and "36%" in panel.static_html()
    assert "no news from the kernel" not in panel.static_html()   # the live-only note stays out


def test_final_static_copy_has_verdict_delta_diff_and_log_tail():
    panel = ExperimentPanel("val_bpb", 60, "wider MLP")
    panel.show_diff("--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-WIDTH = 128\n+WIDTH = 256\n", "diff against the best (#2 0123456)")
    panel.experiment_started({"experiment": 3, "run": 1, "description": "wider MLP", "commit": "abc1234",
                              "parent": "0123456", "budget_s": 60})   # no diff in the event: the cell's stays
    panel.experiment_finished(result())
    panel.finished = True
    text = html_to_text(panel.static_html())
    assert "#3 wider MLP — KEEP" in text
    assert "val_bpb 1.200000 (-0.050000 vs best 1.250000)" in text
    assert "+WIDTH = 256" in text and "val_bpb: 1.2" in text


def test_start_event_fields_show_description_diff_and_sweep_values():
    panel = ExperimentPanel("val_bpb", 60, "sweep", kind="loop")
    panel.experiment_started({"experiment": 4, "run": 1, "description": "sweep #2: LR=0.0042", "commit": "abc1234",
                              "parent": "0123456", "diff": "@@ -1 +1 @@\n-LR = 0.001\n+LR = 0.0042\n",
                              "params": {"LR": 0.0042123, "ACT": "gelu"}, "budget_s": 60})
    html = panel.static_html()
    assert "now: sweep #2: LR=0.0042" in html
    assert "<code>LR = 0.004212</code>" in html and "<code>ACT = gelu</code>" in html
    assert "+LR = 0.0042" in html


def test_long_diffs_are_cut_and_scroll():
    panel = ExperimentPanel("val_bpb", 60, "big change")
    long_diff = "@@ -1,900 +1,900 @@\n" + "".join(f"+line {i}\n" for i in range(900))
    panel.show_candidate("big change", long_diff, None)
    html = panel.diff.value
    assert f"+line {DIFF_MAX_LINES - 2}" in html and "+line 899" not in html
    assert "more lines not shown" in html and "overflow:auto" in html and "<details>" in html
