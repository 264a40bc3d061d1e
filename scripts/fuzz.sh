#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds every libFuzzer target (CMake option VGPU_FUZZ, clang) into build-fuzz/ and runs each for
# FUZZ_SECONDS (default 30). Seeds come from tests/fuzz/corpus/<target>/ when present. A crash fails
# the run; the crashing input is left in build-fuzz/crashes/ to become a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
dir=${FUZZ_BUILD:-build-fuzz}
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVGPU_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$(nproc)" >/dev/null
mkdir -p "$dir/crashes"
shopt -s nullglob
targets=("$dir"/fuzz/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
        echo "fuzz: no fuzz targets built"
        exit 0
fi
for t in "${targets[@]}"; do
        name=$(basename "$t")
        work="$dir/corpus/$name"
        mkdir -p "$work"
        seeds=()
        [ -d "tests/fuzz/corpus/$name" ] && seeds=("tests/fuzz/corpus/$name")
        echo "fuzz: $name for ${secs}s"
        "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$dir/crashes/$name-" "$work" "${seeds[@]}" 2>"$dir/$name.log" || {
                tail -n 40 "$dir/$name.log"
                echo "fuzz: $name FAILED (input in $dir/crashes/)"
                exit 1
        }
        grep -E 'stat::number_of_executed_units' "$dir/$name.log" || true
done
rm -rf /dev/shm/vgpu-fuzz-* # the API target's state directories
echo "fuzz: all targets clean"
