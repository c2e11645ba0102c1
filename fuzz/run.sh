#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 60) from the seeds in fuzz/seeds/TARGET, in a
# scratch corpus; exit 1 when any target finds a crash, hang or out-of-memory input (kept in
# fuzz/artifacts/TARGET). Needs nightly Rust and cargo-fuzz (docs/testing.md#fuzzing).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
targets=(container_header npy graph image_input)
if [ $# -gt 1 ]; then targets=("${@:2}"); fi
# No sanitizer: the code under test is safe Rust; libFuzzer still catches panics, aborts,
# timeouts (-timeout) and allocations over -rss_limit_mb / -malloc_limit_mb.
cargo +nightly fuzz build --sanitizer none
status=0
for t in "${targets[@]}"; do
    corpus=$(mktemp -d)
    cp seeds/"$t"/* "$corpus"/
    mkdir -p artifacts/"$t"
    log=$(mktemp)
    echo "== $t: $secs s"
    if cargo +nightly fuzz run --sanitizer none "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs" "$log" || true
    else
        status=1
        tail -40 "$log"
        echo "== $t: FAILED (inputs in fuzz/artifacts/$t)"
    fi
    rm -rf "$corpus" "$log"
done
exit $status
