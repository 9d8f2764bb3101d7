#!/usr/bin/env bash
# The test command: installs what is missing, checks the wheel as a user installs it
# (scripts/check_wheel.py; WHEEL_CHECK=0 skips it), then runs the whole suite (pytest), so that
# pytest's summary closes the output. Exits non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# Real clusters for tests/test_cluster_*.py: a one-node Slurm (needs root; installs slurm-wlm and
# munge with apt-get when missing) and a two-node Ray on 127.0.0.1:6390. Their tests start them
# too when they are down, and skip saying why where they cannot be started.
if [ "$(id -u)" = 0 ]; then bash scripts/slurm_up.sh >/dev/null || echo "test.sh: Slurm did not start; its tests say why" >&2; fi
bash scripts/ray_up.sh >/dev/null || echo "test.sh: the Ray cluster did not start; its tests say why" >&2
trap 'bash scripts/ray_up.sh --down' EXIT
wheel_status=0
if [ "${WHEEL_CHECK:-1}" != 0 ]; then
  python scripts/check_wheel.py || wheel_status=$?
fi
pytest_status=0
python -m pytest tests "$@" || pytest_status=$?
if [ "$pytest_status" != 0 ]; then exit "$pytest_status"; fi
exit "$wheel_status"
