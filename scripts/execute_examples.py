"""Executes the example notebooks headless and saves them with their outputs, so they read as campaign
reports on GitHub: tables, plots and each panel's final state (static copies; no widget state).

By default the notebooks are rewritten in place (their cells' sources are untouched) and their
campaigns are made in a fresh folder under the system's temporary directory.

Usage: python scripts/execute_examples.py [--budget SECONDS] [--max N] [--only 01 02] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

from autoresearch_magics.presentation.notebook_export import static_outputs
from autoresearch_magics.presentation.notebook_runner import run_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "example_notebooks"
CELL_TIMEOUT_S = 3600


def main(argv=None) -> int:
    """Executes the notebooks; returns 0, or 1 when a cell failed (that notebook is then left unchanged)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, help="training seconds per experiment (default: each notebook's)")
    parser.add_argument("--max", type=int, help="experiments in the autonomous campaign (default: the notebook's, 8)")
    parser.add_argument("--template", help="template of the autonomous campaign (default: tinylm)")
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes to run, e.g. 01 03")
    parser.add_argument("--out", type=Path, help="write the executed notebooks here instead of in place")
    parser.add_argument("--workdir", type=Path, help="folder for the campaigns (default: a new temporary one)")
    args = parser.parse_args(argv)

    settings = {"AUTORESEARCH_NOTEBOOK_BUDGET": args.budget and f"{args.budget:g}",
                "AUTORESEARCH_NOTEBOOK_MAX": args.max and str(args.max),
                "AUTORESEARCH_NOTEBOOK_TEMPLATE": args.template}
    os.environ.update({key: value for key, value in settings.items() if value})   # the kernels inherit them
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="autoresearch-examples-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    notebooks = [p for p in sorted(NOTEBOOKS.glob("*.ipynb"))
                 if not args.only or any(p.name.startswith(prefix) for prefix in args.only)]
    failed = 0
    for notebook in notebooks:
        target = (args.out or notebook.parent) / notebook.name
        started = time.monotonic()
        print(f"executing {notebook.name} (campaigns in {workdir}) ...", flush=True)
        try:
            executed = execute(notebook, workdir)
        except CellExecutionError as error:
            print(f"{notebook.name}: a cell failed, notebook left as it was\n{error}", file=sys.stderr)
            failed += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, target)
        print(f"  wrote {target} in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 1 if failed else 0


def execute(notebook: Path, workdir: Path) -> nbformat.NotebookNode:
    """Returns the notebook executed in `workdir`, its widgets reduced to their static copies (what
    JupyterLab saves by default, and what GitHub can show) and its run timestamps dropped."""
    os.environ.setdefault("AUTORESEARCH_NOTEBOOK_RESULTS", str(NOTEBOOKS / "sample_results.tsv"))
    with tempfile.TemporaryDirectory() as scratch:
        executed = run_notebook(notebook, Path(scratch) / notebook.name, cwd=workdir, timeout_s=CELL_TIMEOUT_S)
        nb = nbformat.read(executed, as_version=4)
    static_outputs(nb)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)   # per-run timestamps: noise in a committed file
    nbformat.validate(nb)
    return nb


if __name__ == "__main__":
    sys.exit(main())
