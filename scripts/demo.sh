#!/usr/bin/env bash
# The main job: a small CPU campaign on the embedded tinylm template, no download needed.
#   BUDGET   training seconds per experiment (default 30)
#   RUNS     experiments after the baseline (default 2)
#   OUT      output folder (default ./out)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
OUT=${OUT:-out}
BUDGET=${BUDGET:-30}
RUNS=${RUNS:-2}
CAMPAIGN="$OUT/campaign"
mkdir -p "$OUT"
autoresearch init "$CAMPAIGN" --tag demo --budget "$BUDGET"
autoresearch run -C "$CAMPAIGN" -m baseline
autoresearch loop -C "$CAMPAIGN" --max "$RUNS" -m "re-run: measures run-to-run noise"
autoresearch results -C "$CAMPAIGN"
echo
echo "campaign folder: $(cd "$CAMPAIGN" && pwd)  (results.tsv, logs/, git branch autoresearch/demo)"
