#!/usr/bin/env bash
# Builds the JupyterLab extension into labextension/dist, the folder a wheel installs as
# share/jupyter/labextensions/autoresearch-magics (see setup.cfg). Idempotent: skips the
# build when dist is newer than every source file. Needs Node >= 18 and npm.
#
#   scripts/build_labextension.sh                       build if needed
#   scripts/build_labextension.sh --force               rebuild
#   scripts/build_labextension.sh --install-into .venv  build if needed, then copy the extension
#       and the server-extension config into that prefix, as a wheel would. Use it after
#       `pip install -e .`: editable installs do not place setup.cfg's data files.
set -euo pipefail
force=0
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --install-into) prefix=$(cd "$2" && pwd); shift ;;
    *) echo "usage: $0 [--force] [--install-into PREFIX]" >&2; exit 2 ;;
  esac
  shift
done
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/labextension"

stamp=dist/.build-stamp
sources=(package.json package-lock.json tsconfig.json install.json src style)
if [ "$force" = 0 ] && [ -f "$stamp" ] && [ -f dist/package.json ] \
   && [ -z "$(find "${sources[@]}" -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  echo "labextension: up to date (labextension/dist)"
else
  command -v npm >/dev/null || { echo "labextension: npm not found; install Node.js >= 18" >&2; exit 1; }
  # jupyter-builder comes with jupyterlab and drives the bundler; prefer the project's venv
  builder="$repo/.venv/bin/jupyter-builder"
  [ -x "$builder" ] || builder=$(command -v jupyter-builder || true)
  [ -n "$builder" ] || { echo "labextension: jupyter-builder not found; pip install jupyterlab first" >&2; exit 1; }
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # `npm install`, not `npm ci`: npm 11 rejects a lock file that omits other platforms' optional
    # native bindings (rspack), which it records only partly.
    npm install --no-audit --no-fund --loglevel=error
  fi
  rm -rf lib tsconfig.tsbuildinfo dist
  npx tsc
  "$builder" build .
  cp install.json dist/install.json
  touch "$stamp"
  echo "labextension: built into labextension/dist"
fi

if [ -n "$prefix" ]; then
  target="$prefix/share/jupyter/labextensions/autoresearch-magics"
  rm -rf "$target"
  mkdir -p "$target" "$prefix/etc/jupyter/jupyter_server_config.d"
  cp -R dist/package.json dist/install.json dist/static "$target/"
  cp "$repo/jupyter-config/jupyter_server_config.d/autoresearch_magics.json" \
     "$prefix/etc/jupyter/jupyter_server_config.d/"
  echo "labextension: installed into $prefix"
fi
