"""The example notebooks, executed headless (nbclient) on the CPU with small budgets; any error fails."""
from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autoresearch_magics.presentation.notebook_export import WIDGET_VIEW, export_html
from autoresearch_magics.presentation.notebook_runner import run_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "example_notebooks"
SAMPLE = NOTEBOOKS / "sample_results.tsv"


def outputs(nb, kinds=("stream",)) -> str:
    """Returns the text of every stream output (and error) in the notebook."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type in kinds:
                parts.append(out.get("text", ""))
            if out.output_type == "error":
                parts.append(f"{out.ename}: {out.evalue}")
    return "\n".join(parts)


def stderr_of(nb) -> str:
    return "\n".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", [])
                     if out.output_type == "stream" and out.name == "stderr")


def execute(name: str, tmp_path: Path, timeout_s: float = 240):
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = run_notebook(NOTEBOOKS / name, tmp_path / name, cwd=tmp_path, timeout_s=timeout_s)
    return nbformat.read(target, as_version=4), target


WIDGET_REPRS = ("VBox(", "HBox(", "HTML(value=", "FloatProgress(", "Output(", "model not found", "Loading widget")
EXAMPLES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def output_texts(nb) -> str:
    """Returns every text field of every output (all mime types), joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            parts += [str(value) for value in out.get("data", {}).values()]
    return "\n".join(parts)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_notebook_is_committed_executed_with_its_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if all(not c.outputs and c.execution_count is None for c in code):
        pytest.skip(f"{name} is committed unexecuted: `python scripts/execute_examples.py` executes the examples "
                    f"in place (a real tinylm run), then commit them")
    assert all(c.execution_count is not None for c in code), "every code cell ran"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(o.output_type in ("display_data", "execute_result") for c in code for o in c.outputs)


@pytest.mark.parametrize("name", EXAMPLES)
def test_committed_example_holds_no_widget_reprs_or_widget_state(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    text = output_texts(nb)
    assert not [r for r in WIDGET_REPRS if r in text]
    assert "widgets" not in nb.metadata
    assert WIDGET_VIEW not in text and not [o for c in nb.cells for o in c.get("outputs", [])
                                           if WIDGET_VIEW in o.get("data", {})]


def test_execute_examples_saves_static_panels_and_no_widgets(tmp_path, monkeypatch):
    import subprocess
    import sys
    script = NOTEBOOKS.parent / "scripts" / "execute_examples.py"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), "--only", "02", "--template", "toy", "--budget", "0.2",
                           "--max", "3", "--out", str(out), "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(out / "02_autonomous_campaign.ipynb", as_version=4)
    source = nbformat.read(NOTEBOOKS / "02_autonomous_campaign.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in source.cells]    # cells untouched
    text = output_texts(nb)
    assert "autoresearch-static" in text and "reached the maximum of 3 experiments" in text
    assert not [r for r in WIDGET_REPRS if r in text] and WIDGET_VIEW not in text
    assert "widgets" not in nb.metadata and all("execution" not in c.metadata for c in nb.cells)


def test_quickstart_runs_a_tinylm_campaign_end_to_end(tmp_path, monkeypatch):
    campaign = tmp_path / "quickstart"
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_BUDGET", "1")
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_CAMPAIGN", str(campaign))
    nb, _ = execute("01_quickstart.ipynb", tmp_path)

    rows = list(csv.DictReader((campaign / "results.tsv").open(), delimiter="\t"))
    assert [r["description"].split(":")[0] for r in rows] == [
        "baseline", "peak learning rate 1e-3 (half)", "three blocks instead of two", "one block instead of two",
        *["QK-norm"] * (len(rows) - 4)]  # the repeats decision: one to three runs of one candidate
    assert 5 <= len(rows) <= 7
    assert all(r["status"] in ("keep", "discard") for r in rows), [r["crash_reason"] for r in rows]
    assert "tinylm" in (campaign / ".autoresearch" / "campaign.json").read_text()
    assert (campaign / "progress.png").stat().st_size > 10_000
    assert not stderr_of(nb).strip()
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the plot cell shows the ratchet plot"


def test_autonomous_campaign_loops_until_its_stop_rule_and_reports(tmp_path, monkeypatch):
    campaign = tmp_path / "autonomous"
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_TEMPLATE", "toy")
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_BUDGET", "0.2")
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_MAX", "5")
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_CAMPAIGN", str(campaign))
    nb, executed = execute("02_autonomous_campaign.ipynb", tmp_path)

    frame = pd.read_csv(campaign / "results.tsv", sep="\t")
    assert len(frame) == 5 and (frame["status"] != "crash").all()
    assert "reached the maximum of 5 experiments" in outputs(nb)
    summary = (campaign / "autoresearch-summary.md").read_text()
    assert "## Kept steps" in summary and "keep rule `margin`" in summary
    assert not stderr_of(nb).strip()

    # the shared report: widget views replaced by their last state, the panels' verdicts readable
    page = export_html(executed, tmp_path / "report.html").read_text()
    assert WIDGET_VIEW not in page
    assert "autoresearch-static" in page and "sweep #0" in page and "KEEP" in page
    assert page.count("data:image/png;base64") >= 1


def test_explore_results_reads_the_sample_and_a_five_column_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_RESULTS", str(SAMPLE))
    nb, _ = execute("03_explore_results.ipynb", tmp_path, timeout_s=120)
    text = outputs(nb)
    assert "keep rate after the baseline" in text and "baseline" in text

    five = tmp_path / "five.tsv"
    pd.read_csv(SAMPLE, sep="\t").iloc[:, :5].to_csv(five, sep="\t", index=False)
    monkeypatch.setenv("AUTORESEARCH_NOTEBOOK_RESULTS", str(five))
    nb, _ = execute("03_explore_results.ipynb", tmp_path / "five", timeout_s=120)
    assert "columns: commit, val_bpb, memory_gb, status, description" in outputs(nb)
