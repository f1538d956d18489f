#!/usr/bin/env bash
# Creates (or reuses) the benchmark virtual environment at <repo root>/.venv-bench
# with exactly pinned Python tools. Idempotent: a second run only verifies the pins.
#
#   bash benches/compare/setup.sh
#
# Environment:
#   PYTHON      interpreter used to create the venv (default: python3)
#   VENV_BENCH  venv location (default: <repo root>/.venv-bench)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"

# Exact pins (chosen as the current releases when this benchmark was written).
# The PyPI torch wheel for Linux x86-64 pulls in the CUDA runtime libraries
# (~5 GB); only its CPU path is used here.
PINS=(
  "numpy==2.4.6"
  "torch==2.15.0"
  "faiss-cpu==1.15.1"
  "threadpoolctl==3.8.0"
)

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv at $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Fast path: everything already installed at the pinned versions.
if "$VENV/bin/python" - "${PINS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
then
  echo "[setup] $VENV already has: ${PINS[*]}"
  exit 0
fi

echo "[setup] installing: ${PINS[*]}"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
"$VENV/bin/python" -m pip install --disable-pip-version-check "${PINS[@]}"
echo "[setup] done"
