#!/usr/bin/env bash
# SmolLM2-135M-Instruct on CPU: v2l-llm (burn NdArray and Flex, each in its
# own process so peak memory is per backend) and HF transformers (SDPA and
# eager attention), in one session. Prefill 128 tokens; decode 64 greedy
# tokens with the KV cache; best of 5. Needs the cached GGUF asset and a
# Python with torch + transformers + gguf + accelerate (PYTHON, default
# /tmp/venv-fix/bin/python). Prints JSON lines; docs/benchmarks.md has the table.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/tmp/venv-fix/bin/python}"
cargo build --release -q -p v2l-llm --example bench_smollm2
BIN=target/release/examples/bench_smollm2
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
"$BIN" ndarray
"$BIN" flex
"$PYTHON" scripts/gen_llm_fixtures.py --bench
