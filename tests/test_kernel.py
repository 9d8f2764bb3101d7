"""The magics in a real kernel: a notebook executed headless with nbclient, and a kernel restart mid-run."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from autoresearch_magics.core.live import read_json
from autoresearch_magics.core.templates import path_of

KERNEL = "autoresearch-test"


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """Returns a kernelspec name for this interpreter, installed in a temporary JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "autoresearch test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def widget_states(nb) -> list[dict]:
    """Returns the saved state of every widget model in an executed notebook."""
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [{"model": m["model_name"], **m["state"]} for m in saved.values()]


def text_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def test_notebook_runs_baseline_and_edit_then_waits(tmp_path, kernel_name):
    wider = (path_of("toy") / "train.py").read_text().replace("WIDTH = 128 ", "WIDTH = 256 ")
    cells = [
        "%load_ext autoresearch_magics",
        "%autoresearch init campaign --tag nb --template toy --budget 1",
        "%autoresearch run -m baseline",
        f'%%experiment -m "wider MLP"\n{wider}',
        "%autoresearch wait",
        "import json\ndf = %autoresearch results\n"
        "print(json.dumps({'dtypes': {c: str(t) for c, t in df.dtypes.items()},\n"
        "                  'rows': df[['experiment', 'status', 'description']].astype(str).values.tolist()}))",
        "%autoresearch status",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name=kernel_name, store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    waited = text_of(nb.cells[4])
    assert "experiment 1 " in waited and "'baseline': KEEP" in waited
    assert "experiment 2 " in waited and "'wider MLP': KEEP" in waited
    table = json.loads(text_of(nb.cells[5]))
    assert table["rows"] == [["1", "keep", "baseline"], ["2", "keep", "wider MLP"]]
    assert table["dtypes"]["val_bpb"] == "float64" and table["dtypes"]["status"] == "category"
    assert table["dtypes"]["started_at"].startswith("datetime64")

    states = widget_states(nb)
    outcomes = [s["value"] for s in states if s["model"] == "HTMLModel" and "vs best" in s.get("value", "")]
    assert any("wider MLP" in v and "KEEP" in v for v in outcomes)
    bars = [s for s in states if s["model"] == "FloatProgressModel" and s.get("bar_style") == "success"]
    assert len(bars) == 2 and all(b["value"] == 1.0 for b in bars)
    assert any("best val_bpb" in s.get("value", "") for s in states if s["model"] == "HTMLModel")


def test_kernel_restart_mid_run_leaves_no_training_process_and_a_recorded_row(tmp_path, kernel_name):
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    current = tmp_path / "camp" / ".autoresearch" / "current.json"
    try:
        client.wait_for_ready(timeout=30)
        run(client, "%load_ext autoresearch_magics\n%autoresearch init camp --tag r --template toy --budget 60")
        run(client, '%autoresearch run -m "stopped by the restart"')
        first = child_of(current)
        km.restart_kernel(now=False)         # what a front end's "restart kernel" does
        assert gone(first)
        client.wait_for_ready(timeout=30)
        run(client, '%load_ext autoresearch_magics\n%autoresearch init camp\n%autoresearch run -m "cut off"')
        second = child_of(current)
        km.restart_kernel(now=True)          # the kernel is killed: its training process is left behind
        client.wait_for_ready(timeout=30)
        out = run(client, "%load_ext autoresearch_magics\n%autoresearch init camp\n"
                          "df = %autoresearch results\nprint(df['crash_reason'].tolist())")
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    assert "experiment #2 ('cut off') was cut off" in out
    assert "['interrupted', 'interrupted']" in out   # a restart cuts the run off, like a kill
    assert gone(second)


def child_of(current: Path) -> int:
    """Returns the training process of the running experiment, once it has started."""
    deadline = time.monotonic() + 20
    while not child_pid(current) and time.monotonic() < deadline:
        time.sleep(0.1)
    return child_pid(current)


def child_pid(current: Path) -> int | None:
    """Returns the training process the runner's journal names, or None yet."""
    runs = (read_json(current) or {}).get("runs") or [{}]
    return runs[0].get("child_pid")


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def run(client, code: str) -> str:
    """Executes `code` in the kernel; returns its stream output, failing on an error."""
    chunks = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            chunks.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            chunks.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(code, timeout=30, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(chunks)
    return "".join(chunks)
