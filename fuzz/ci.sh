#!/usr/bin/env bash
# Fuzz smoke test for CI (docs/reliability.md, Fuzzing): builds every target of
# fuzz/ with stable Rust, no sanitizer and (by default) the dev profile, which
# halves the build on 2 cores, then runs each target for a few seconds from its
# committed seeds (fuzz/seeds/<target>/) plus the working corpus
# fuzz/corpus/<target>/ (kept between runs where CI caches it). Fails if any
# target panics, aborts, takes over 30 s (10 s optimised) on one input or
# exceeds 2 GiB; the failing input is left in fuzz/artifacts/<target>/.
#
#   fuzz/ci.sh                        # every target, FUZZ_SECONDS (default 4) each
#   FUZZ_SECONDS=60 fuzz/ci.sh npy gguf
#   FUZZ_RELEASE=1 fuzz/ci.sh         # optimised build: slower to build, ~20x more runs
set -euo pipefail

cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-4}
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

if [ "${FUZZ_RELEASE:-0}" = 1 ]; then
    profile=(); out=release; timeout=10
else
    # Line tables only: panics still name file and line, the build is a third faster.
    export CARGO_PROFILE_DEV_DEBUG=line-tables-only
    profile=(--dev); out=debug; timeout=30
fi
stamp "building ${#targets[@]} targets (stable, -s none, $out)"
cargo fuzz build -s none "${profile[@]}"
stamp "built"

triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=target/$triple/$out
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    t0=$(date +%s)
    log=$(mktemp)
    if "$bin_dir/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
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
