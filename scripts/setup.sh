#!/usr/bin/env bash
# Installs everything the project needs into ./.venv (idempotent, safe to re-run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# torch first and pinned: on this kind of machine 2.13.0 is a local CPU wheel; an
# unpinned resolve could pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
# Browser for the sidebar tests and the JupyterLab extension build (Node only builds it).
[ -f scripts/install_browser.sh ] && bash scripts/install_browser.sh
pip install -q -e ".[test,ray,slurm]"
# An editable install does not place setup.cfg's data files: copy the built extension and the
# server-extension config into the venv as a wheel would.
bash scripts/build_labextension.sh --install-into .venv
