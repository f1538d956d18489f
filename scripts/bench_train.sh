#!/usr/bin/env bash
# Seconds per training iteration (the reference's full iteration: generator
# step with LPIPS-VGG and the adaptive weight, discriminator step) of
# configs/fashion-mnist-tiny.toml's networks on burn's two CPU backends, in
# one process. Usage: scripts/bench_train.sh [batch] [iters]
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH="${1:-8}"
ITERS="${2:-3}"
# The fast profile (the edit-test profile: dependencies at opt-level 2).
cargo build --profile fast -q --workspace --examples
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
target/fast/examples/bench_train_step "$BATCH" "$ITERS"
