#!/usr/bin/env bash
# Install MLServer, the serving benchmark's Python peer (bench/serve.py), into its own
# virtualenv (.ci/mlserver-venv: its pins differ from mlreg's) and print the path of its
# `mlserver` command. Idempotent; pinned, so every run measures the same MLServer.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.ci/mlserver-venv
PINS=(mlserver==1.7.1 mlserver-mlflow==1.7.1 tensorflow-cpu==2.21.0)
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/mlserver" ] && "$VENV/bin/python" -c 'import mlserver, mlserver_mlflow, tensorflow' 2>/dev/null; then
  echo "$VENV/bin/mlserver"
  exit 0
fi
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --upgrade pip >&2
"$VENV/bin/pip" install --quiet "${PINS[@]}" >&2
echo "$VENV/bin/mlserver"
