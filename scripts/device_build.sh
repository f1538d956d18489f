#!/usr/bin/env bash
# Builds the device check's one binary HERE (the GPU machine has no network
# and no Rust toolchain to spare): the gpu test group with its benchmark
# entries, for CUDA (or wgpu), stripped and xz-compressed into
# target/device/gpu-<backend>.xz, which the device tool carries
# (carry: ["target/device"]). Then run scripts/device_check.sh there.
#
#   scripts/device_build.sh [cuda|wgpu] [cargo profile, default: device]
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-cuda}"
profile="${2:-device}"
case "$backend" in
  cuda) target=gpu-cuda ;;
  wgpu) target=gpu ;;
  *) echo "backend: cuda or wgpu" >&2; exit 2 ;;
esac
exe=$(cargo test --profile "$profile" -p v2l --features "$backend" --test "$target" \
        --no-run --message-format=json |
      python3 -c 'import json, sys
found = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m.get("executable")
         and m["target"]["name"] == sys.argv[1]]
print(found[-1])' "$target")
mkdir -p target/device
cp "$exe" "target/device/gpu-$backend"
strip "target/device/gpu-$backend" 2>/dev/null || true
xz -T0 -9 -f "target/device/gpu-$backend"
(cd target/device && sha256sum "gpu-$backend.xz" > "gpu-$backend.xz.sha256")
ls -l "target/device/gpu-$backend.xz"
