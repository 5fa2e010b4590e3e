#!/usr/bin/env bash
# Install the KServe SDK, a V2 client no one here wrote (tests/serving/test_v2_kserve.py), into
# its own virtualenv (.ci/kserve-venv: it pins pandas<3, mlreg's venv has pandas 3) and print
# the path of its python. Idempotent; pinned, so every run talks to the same client.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.ci/kserve-venv
PINS=(kserve==0.21.0)
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import kserve' 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --upgrade pip >&2
"$VENV/bin/pip" install --quiet "${PINS[@]}" >&2
echo "$VENV/bin/python"
