#!/usr/bin/env bash
# The second leg of the MLflow compatibility matrix: a virtualenv with the last MLflow 2.x and
# mlreg (no TensorFlow), for tests/server/mlflow/test_compat.py. Prints its python. Idempotent
# and cached: rebuilt only when the pins or mlreg's dependencies change (a stamp says which).
# MLflow 2.22's server needs SQLAlchemy 2.0 (it imports a pool 2.1 removed).
set -euo pipefail
cd "$(dirname "$0")/.."
PINS=("mlflow==2.22.5" "sqlalchemy>=2.0,<2.1" "pytest>=8.0" "pytest-timeout>=2.3")
VENV=$PWD/.venv-mlflow2
PYTHON=${PYTHON:-python3}
STAMP="${PINS[*]} $(sha256sum setup.cfg | cut -c1-16)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.mlreg-stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "$VENV/bin/python"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --upgrade pip >&2
"$VENV/bin/pip" install --quiet -e . "${PINS[@]}" >&2
echo "$STAMP" > "$VENV/.mlreg-stamp"
echo "$VENV/bin/python"
