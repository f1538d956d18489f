#!/usr/bin/env bash
# One-command entry for the nearest-codeword comparison benchmark.
#
#   bash benches/compare/run.sh [--python-only] [compare.py options...]
#
# e.g.  bash benches/compare/run.sh                      # full size, 5 repeats
#       bash benches/compare/run.sh --repeats 3
#       bash benches/compare/run.sh --t 512 --k 4000      # quick smoke run
#       bash benches/compare/run.sh --python-only         # skip the Rust build and rows
#       QUANT_COMPARE_BIN=path/to/quant_compare bash benches/compare/run.sh   # no cargo build
#
# Steps: (1) setup.sh makes/verifies .venv-bench with pinned numpy, torch,
# faiss-cpu, threadpoolctl; (2) builds the Rust example; (3) runs compare.py
# with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for that command only (they
# force an old, slower kernel on a current numpy; compare.md records the kernel
# each library then actually uses). Results: bench-out/compare.md, compare.jsonl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${VENV_BENCH:-$ROOT/.venv-bench}"
cd "$ROOT"

PYTHON_ONLY=0
if [ "${1:-}" = "--python-only" ]; then
  PYTHON_ONLY=1
  shift
fi

bash "$HERE/setup.sh"

RUST_ARGS=()
if [ "$PYTHON_ONLY" = 0 ] && [ -n "${QUANT_COMPARE_BIN:-}" ]; then
  # Use a prebuilt binary (or a stand-in following the same CLI) instead of building.
  echo "[run] using QUANT_COMPARE_BIN=$QUANT_COMPARE_BIN (no cargo build)"
  RUST_ARGS=(--rust-bin "$QUANT_COMPARE_BIN")
elif [ "$PYTHON_ONLY" = 0 ]; then
  BUILD_CMD=(cargo build --release -p v2l-quant --example quant_compare)
  echo "[run] ${BUILD_CMD[*]}"
  if ! "${BUILD_CMD[@]}"; then
    echo "" >&2
    echo "ERROR: building the Rust example failed (command: ${BUILD_CMD[*]})." >&2
    echo "       Fix the build, or run the Python implementations alone with:" >&2
    echo "       bash benches/compare/run.sh --python-only $*" >&2
    exit 1
  fi
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/quant_compare"
  if [ ! -x "$BIN" ]; then
    echo "ERROR: build succeeded but $BIN is missing." >&2
    exit 1
  fi
  RUST_ARGS=(--rust-bin "$BIN")
fi

echo "[run] benchmark (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for this command)"
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
  "$VENV/bin/python" "$HERE/compare.py" "${RUST_ARGS[@]}" "$@"
