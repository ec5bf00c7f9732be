#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run every check: ruff, the descriptor
# freshness check, the bundled copy of schemas/ (src/trialpool/_schemas), frictionless on
# the bundled package, and the test suite (which builds the wheel and runs it in a fresh
# venv: tests/test_wheel.py).
# Usage: ./scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/ruff check src tests scripts
.venv/bin/ruff format --check src tests scripts
.venv/bin/python scripts/build_descriptor.py --check
.venv/bin/python scripts/sync_schemas.py --check
.venv/bin/frictionless validate datapackage.json > /dev/null
.venv/bin/python -m pytest "$@"
