#!/usr/bin/env bash
# Codebook construction throughput and memory (CPU, burn Flex, release build):
# - 80-template CLIP text embedding, entries/s, for the text towers of
#   ViT-B/32 and ViT-L/14 (random weights: speed does not depend on them);
# - vocabulary expansion with SmolLM2-135M-Instruct (GGUF Q4_1), entries/s
#   (each entry = two greedy next-token prompts);
# - peak RSS of the resumable embedding job + streamed save (tiny CLIP) as
#   the vocabulary grows.
# Each measurement runs in its own process; peak RSS from GNU time.
# Usage: scripts/bench_codebook.sh   (needs the llama2-vocab, clip-bpe and
# smollm2-135m assets: `v2l assets fetch ...`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p v2l-codebook --example bench_codebook
BIN=target/release/examples/bench_codebook
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
run() {
  /usr/bin/time -f '{"peak_rss_mib":%M}' -o /tmp/bench_codebook_rss "$BIN" "$@"
  echo "  $(awk -F: '{gsub(/[^0-9]/,"",$2); printf "{\"peak_rss_mib\":%.0f}", $2/1024}' /tmp/bench_codebook_rss)"
}
if [ "${1:-}" != "memory" ]; then
  run embed b32 16
  run embed l14 8
  for b in 1 16; do run expand 64 "$b"; done
fi
# Memory curve: the job holds one 512-entry chunk, so peak RSS should not
# grow with the vocabulary beyond the strings. 80 templates at 1k entries,
# then 1 template (same chunking, 80x less compute) up to 150k entries.
run memory 1000
for n in 1000 8000 32000 150000; do run memory "$n" 1; done
