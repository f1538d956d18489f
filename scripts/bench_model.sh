#!/usr/bin/env bash
# The V2L tokenizer at the reference's full size (random weights), CPU:
# v2l-model on burn NdArray and Flex, and an equivalent PyTorch model
# (scripts/bench_model_torch.py, written from the spec) in the same session.
# Phases: encode (CLIP ViT-L/14 + CNN encoder + both searches), encode_no_clip,
# decode (from ids). Each phase in its own process so peak memory is per
# phase. Usage: scripts/bench_model.sh [batch] [iters]
# Needs a Python with torch and openai-clip (PYTHON, default /tmp/venv-fix/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/tmp/venv-fix/bin/python}"
BATCH="${1:-4}"
ITERS="${2:-3}"
cargo build --release -q -p v2l-model --example bench_model
BIN=target/release/examples/bench_model
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
# Flex is the CLI's CPU backend; NdArray (direct-loop conv) is shown for the
# CNN phases only, its CLIP ViT-L/14 run takes minutes.
for phase in encode_no_clip decode encode; do
  "$BIN" flex "$phase" "$BATCH" "$ITERS"
done
for phase in encode_no_clip decode; do
  "$BIN" ndarray "$phase" "$BATCH" "$ITERS"
done
"$PYTHON" scripts/bench_model_torch.py --batch "$BATCH" --iters "$ITERS"
