"""Runs a notebook headless in a kernel of this Python (nbclient) and saves it with widget state and
static copies of its widgets."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import nbformat

from .notebook_export import add_static_fallbacks

KERNEL_NAME = "autoresearch-notebook"


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
                                kernel_manager_class=kernel_manager_class(Path(specs)))
        try:
            client.execute()
        finally:
            add_static_fallbacks(nb)
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)   # also when a cell failed: the saved notebook shows where
    return target


def kernel_manager_class(folder: Path):
    """Returns a KernelManager class whose kernel runs this interpreter, whatever kernelspecs exist
    (its kernelspec is written under `folder`)."""
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
