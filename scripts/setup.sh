#!/usr/bin/env bash
# Installs everything the project needs into ./.venv (idempotent, safe to re-run): torch, the
# package in development mode with its test tools, the JupyterLab extension and Chromium for the
# browser tests. Needs Node.js >= 18 with npm to build the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "setup: Node.js >= 18 with npm is needed to build the JupyterLab extension (e.g. apt-get install nodejs npm)" >&2; exit 1; }
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# torch first and pinned: on this kind of machine 2.13.0 is a local CPU wheel; an
# unpinned resolve could pull a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
# Browser for the sidebar tests.
[ -f scripts/install_browser.sh ] && bash scripts/install_browser.sh
# The build hook (pyproject.toml, labextension/build_hook.py) runs `npm ci` from the lock and
# builds the extension when its sources changed; the editable wheel places the extension and
# the config that enables the server extension in the venv. A link left by the last run is
# dropped first: pip would otherwise replace the installed files through it, in the build output.
labext=.venv/share/jupyter/labextensions/autoresearch-magics
if [ -L "$labext" ]; then rm "$labext"; fi
pip install -q -e ".[test,ray,slurm]"
# Replace the installed copy of the extension by a link to the build output, so that
# `npm run build` in labextension/ shows in JupyterLab on the next page load.
jupyter-builder develop --overwrite . >/dev/null
