#!/usr/bin/env bash
# Training speed and peak memory, v2l-rs against the reference in PyTorch, on
# this machine's CPU in one run: seconds per iteration (the reference's full
# iteration: generator step with LPIPS-VGG and the adaptive weight, then the
# discriminator step) at the tiny configuration and at the official
# architecture (128 px). Each row runs in its own process (peak memory is the
# process's). Run by hand, never in CI. Our side is built with the fast
# profile (dependencies, burn included, at opt-level 2).
#
#   scripts/bench_train.sh [tiny_batch] [official_batch] [iters] [official_iters]
#
# Needs: the lpips-backbones asset (`v2l assets fetch lpips-backbones`), the
# reference checkout in $V2L_REF (default /tmp/v2lref; see
# scripts/gen_train_step_fixture.py for how to export it) and a Python with
# torch, torchvision and einops in $PYTHON (default /tmp/venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${1:-8}"
OB="${2:-8}"
ITERS="${3:-3}"
OITERS="${4:-1}"
PY="${PYTHON:-/tmp/venv/bin/python}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --profile fast -q -p v2l-train --example bench_train_step
BIN="$TARGET/fast/examples/bench_train_step"
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads;" \
  "flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile' | sort -u | xargs);" \
  "$(date -u +%FT%TZ)"
OUT=$(mktemp)
"$PY" scripts/bench_train_torch.py --config tiny --batch "$TB" --iters "$ITERS" 2>/dev/null | tail -n 1 >> "$OUT"
"$BIN" tiny flex "$TB" "$ITERS" >> "$OUT"
"$PY" scripts/bench_train_torch.py --config official --batch "$OB" --iters "$OITERS" 2>/dev/null | tail -n 1 >> "$OUT"
"$BIN" official flex "$OB" "$OITERS" >> "$OUT"
"$PY" - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| configuration | batch | implementation | s / iteration | iterations / s | vs PyTorch | peak RSS (MB) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    torch = next(t for t in rows if t["config"] == r["config"] and t["impl"].startswith("PyTorch"))
    ratio = torch["median_s"] / r["median_s"]
    print(f"| {r['config']} | {r['batch']} | {r['impl']} | {r['median_s']:.3f} | {r['steps_per_s']:.3f} "
          f"| {ratio:.2f}× | {r['peak_rss_mb']:.0f} |")
PY
rm -f "$OUT"
