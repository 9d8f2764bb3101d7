#!/usr/bin/env bash
# The main job: example_notebooks/01_quickstart.ipynb run end to end on the embedded tinylm template
# (a small GPT on CPython's own docs; CPU only, nothing downloaded): a baseline and three edits,
# about six minutes on 2 cores. Everything it makes lands in one folder.
#   BUDGET   training seconds per experiment (default 60, the notebook's own)
#   OUT      output folder (default ./out): executed notebook, its HTML page, results.tsv,
#            progress.png, autoresearch-summary.md and the campaign folder
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python scripts/run_quickstart.py "${OUT:-out}" ${BUDGET:+--budget "$BUDGET"}
