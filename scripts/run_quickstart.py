"""Runs example_notebooks/01_quickstart.ipynb end to end and gathers what it made in one folder:
the executed notebook, its HTML page, results.tsv, progress.png and autoresearch-summary.md.

Usage: python scripts/run_quickstart.py [OUT] [--budget SECONDS]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from nbclient.exceptions import CellExecutionError

from autoresearch_magics import Campaign
from autoresearch_magics.core.hardware import describe_hardware
from autoresearch_magics.presentation.notebook_runner import run_notebook
from autoresearch_magics.presentation.report import PLOT_NAME, write_report

NOTEBOOK = Path(__file__).resolve().parent.parent / "example_notebooks" / "01_quickstart.ipynb"


def main(argv=None) -> int:
    """Runs the quickstart; returns the exit code (1 if a cell failed, 2 if OUT already holds a campaign)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="out", help="output folder (default ./out)")
    parser.add_argument("--budget", type=float, help="training seconds per experiment (default: the notebook's, 60)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    campaign_dir = out / "campaign"
    if (campaign_dir / ".autoresearch").exists():
        print(f"{campaign_dir} already holds a campaign: remove it, or set OUT to another folder", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    # the notebook reads its parameters from the environment; its kernel inherits this one
    os.environ["AUTORESEARCH_NOTEBOOK_CAMPAIGN"] = str(campaign_dir)
    if args.budget is not None:
        os.environ["AUTORESEARCH_NOTEBOOK_BUDGET"] = f"{args.budget:g}"
    executed = out / NOTEBOOK.name
    started = time.monotonic()
    print(f"running {NOTEBOOK.name} (campaign in {campaign_dir}) ...", flush=True)
    try:
        run_notebook(NOTEBOOK, executed, cwd=out)
    except CellExecutionError as error:
        print(f"a cell failed; the notebook as far as it ran: {executed}\n{error}", file=sys.stderr)
        return 1
    minutes = (time.monotonic() - started) / 60
    campaign = Campaign.open(campaign_dir)
    summary = write_report(campaign, out, describe_hardware(), notebook=executed)
    shutil.copy(campaign.paths.results, out / "results.tsv")
    print(f"\nquickstart done in {minutes:.1f} min; everything is in {out}:")
    for name in (executed.name, executed.with_suffix(".html").name, "results.tsv", PLOT_NAME, summary.name):
        print(f"  {out / name}")
    print(f"  {campaign_dir}/  (the campaign: train.py on branch {campaign.config.branch}, logs/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
