#!/usr/bin/env bash
# The device check: one command for a lent GPU machine (CUDA, nvcc and
# PyTorch, no network), within 5 minutes so that it can be rerun. Needs
# target/device/gpu-<backend>.xz from scripts/device_build.sh (built on the
# development machine and carried). Runs, side by side in one run:
#   1. the gpu test group on the device (V2L_REQUIRE_GPU=1; the tests that
#      need a registry asset print SKIP, the device has no asset cache);
#   2. its benchmark entries (quantiser kernel vs burn matmul+argmin vs burn
#      matmul; encode/decode images/s; SmolLM2-shaped decoder tokens/s);
#   3. PyTorch's matmul+argmin on the same shapes (scripts/bench_quant_torch.py);
# and writes machine.txt, gpu-group.txt, bench.jsonl and table.md to the
# output folder (default $OUT, else target/device/out).
#
#   scripts/device_check.sh [out-dir]
#   V2L_DEVICE_BACKEND=wgpu|cuda  V2L_BENCH_BATCH=32  V2L_BENCH_K=32000,49152
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${V2L_DEVICE_BACKEND:-cuda}"
out="${1:-${OUT:-target/device/out}}"
batch="${V2L_BENCH_BATCH:-32}"
ks="${V2L_BENCH_K:-32000,49152}"
mkdir -p "$out"
(cd target/device && sha256sum -c "gpu-$backend.xz.sha256")
bin="$out/gpu-$backend"
xz -dc "target/device/gpu-$backend.xz" > "$bin"
chmod +x "$bin"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  echo "cpus: $(nproc)"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo "no torch"
} | tee "$out/machine.txt"

export V2L_REPO_ROOT="$PWD" V2L_REQUIRE_GPU=1 V2L_BENCH_BATCH="$batch" V2L_BENCH_K="$ks"
echo "== gpu group ($backend)"
"$bin" --test-threads 1 2>&1 | tee "$out/gpu-group.txt"
echo "== benchmarks"
"$bin" --ignored bench_ --test-threads 1 --nocapture 2>&1 | tee "$out/bench.txt"
if python3 -c 'import torch' 2>/dev/null; then
  python3 scripts/bench_quant_torch.py --batch "$batch" --k "$ks" 2>&1 | tee -a "$out/bench.txt"
else
  echo "no PyTorch here: the torch baseline is missing from the table" | tee -a "$out/bench.txt"
fi
grep -o '{"backend".*}' "$out/bench.txt" > "$out/bench.jsonl"
python3 scripts/device_table.py "$out/machine.txt" "$out/bench.jsonl" | tee "$out/table.md"
