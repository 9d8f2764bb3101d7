#!/usr/bin/env bash
# The test command: installs what is missing, checks the wheel as a user installs it
# (scripts/check_wheel.py; WHEEL_CHECK=0 skips it), then runs the whole suite (pytest), so that
# pytest's summary closes the output. Exits non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
wheel_status=0
if [ "${WHEEL_CHECK:-1}" != 0 ]; then
  python scripts/check_wheel.py || wheel_status=$?
fi
pytest_status=0
python -m pytest tests "$@" || pytest_status=$?
if [ "$pytest_status" != 0 ]; then exit "$pytest_status"; fi
exit "$wheel_status"
