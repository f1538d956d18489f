#!/usr/bin/env bash
# Fuzz smoke test for CI (docs/reliability.md, Fuzzing): builds every target of
# fuzz/ with stable Rust and no sanitizer, then runs each for a few seconds
# from its committed seeds (fuzz/seeds/<target>/) plus the working corpus
# fuzz/corpus/<target>/ (kept between runs when CI caches it). Fails if any
# target crashes, leaks a panic, times out on one input or exceeds the memory
# limit; the failing input is left in fuzz/artifacts/<target>/.
#
#   fuzz/ci.sh                   # every target, FUZZ_SECONDS (default 6) each
#   FUZZ_SECONDS=60 fuzz/ci.sh npy gguf
set -euo pipefail

cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-6}
start=$(date +%s)
stamp() { echo "[fuzz $(($(date +%s) - start)) s] $*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    stamp "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

stamp "building ${#targets[@]} targets (stable, -s none)"
cargo fuzz build -s none
stamp "built"

triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/release
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    t0=$(date +%s)
    log=$(mktemp)
    if "$bin_dir/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "  ok    $t: $((  $(date +%s) - t0 )) s, ${execs:-?} runs, corpus $(ls "corpus/$t" | wc -l) files"
    else
        echo "  FAIL  $t"
        grep -v '^#' "$log" | tail -40
        failed+=("$t")
    fi
    rm -f "$log"
done

stamp "done"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
