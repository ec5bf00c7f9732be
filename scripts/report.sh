#!/usr/bin/env bash
# Set up a virtual environment (if needed), then validate the bundled package, pool every
# analysis of analysis/plan.json and write the report to ./report (or the folder given).
# Usage: ./scripts/report.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-report}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/trialpool validate datapackage.json
.venv/bin/trialpool report datapackage.json --plan analysis/plan.json --out "$OUT"
