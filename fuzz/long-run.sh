#!/usr/bin/env bash
# The long fuzzing run recorded in docs/reliability.md (Fuzzing): every
# target, one at a time, 10 minutes for the risky parsers and 2 minutes for
# the rest, with AddressSanitizer and libFuzzer's allocation limit on nightly
# Rust (stable without a sanitizer where nightly is missing:
# FUZZ_TOOLCHAIN=stable). Prints one table row per target.
#
#   fuzz/long-run.sh                     # all targets
#   FUZZ_SCALE=0.1 fuzz/long-run.sh npy  # a tenth of the time, one target
set -euo pipefail

cd "$(dirname "$0")"
toolchain=${FUZZ_TOOLCHAIN:-nightly}
scale=${FUZZ_SCALE:-1}
risky=" pickle torch_archive gguf gguf_dequant safetensors npy tokenizer_json image "

if [ "$toolchain" = nightly ]; then
    build=(cargo +nightly fuzz build -s address)
    limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024)
    dir=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
else
    build=(cargo fuzz build -s none)
    limits=(-rss_limit_mb=2048)
    dir=target/$(rustc -vV | sed -n 's/^host: //p')/release
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
"${build[@]}" >&2

echo "| target | time | runs | runs/s | corpus (files) | coverage (cov / ft) | peak RSS | slowest input | result |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
    minutes=2
    [[ $risky == *" $t "* ]] && minutes=10
    secs=$(awk -v m="$minutes" -v s="$scale" 'BEGIN { printf "%d", m * 60 * s }')
    mkdir -p "corpus/$t" "artifacts/$t"
    log=logs/$t.log
    mkdir -p logs
    result=ok
    nice -n 10 "$dir/$t" "corpus/$t" "seeds/$t" -max_total_time="$secs" -timeout=20 \
        "${limits[@]}" -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 ||
        result="CRASH: $(ls -t "artifacts/$t" | head -1)"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \/ \2/p' <<<"$last")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    slowest=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log")
    files=$(ls "corpus/$t" | wc -l)
    echo "| $t | $((secs / 60)) min $((secs % 60)) s | ${runs:-?} | $(( ${runs:-0} / (secs > 0 ? secs : 1) )) | $files | ${cov:-?} | ${rss:-?} MB | ${slowest:-?} s | $result |"
done
