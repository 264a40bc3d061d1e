#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Everything vgpu checks on a real NVIDIA GPU, in one command, for whoever has one:
#   tests/gpu/run-on-device.sh [--quick]
# Builds the tree (Release, in build-gpu/, after scripts/deps.sh) unless $VGPU_BUILD names a build
# already made, then runs the GPU tests (isolation, every guest program and example, driver API
# and runtime API, on the cuda backend; the guest programs on NVIDIA's driver itself; MIG-backed vGPUs when a GPU is in MIG mode; vgpud's
# control API and crash safety; moves between two vgpuds) and the native-against-remoted
# benchmark, and prints one table.
# Logs go to $VGPU_GPU_LOGS (default: a temp dir, named at the end; on the device tool's machine
# VGPU_GPU_LOGS=$OUT brings them back). Each test has $VGPU_GPU_TEST_TIMEOUT seconds (default
# 300), so that one that hangs costs that much and no more; each result is printed as it comes,
# so a run cut short still shows what finished. Exit 0 when every test passed.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
quick=()
[ "${1:-}" = --quick ] && quick=(--quick)
logs=${VGPU_GPU_LOGS:-$(mktemp -d)}
mkdir -p "$logs"
limit=${VGPU_GPU_TEST_TIMEOUT:-300}
if [ -z "${VGPU_BUILD:-}" ]; then
        start=$(date +%s)
        if ! { bash "$src/scripts/deps.sh" &&
                cmake -S "$src" -B "$src/build-gpu" -DCMAKE_BUILD_TYPE=Release &&
                cmake --build "$src/build-gpu" -j"$(nproc)"; } >"$logs/build.log" 2>&1; then
                tail -n 30 "$logs/build.log"
                echo "build failed (log: $logs/build.log)"
                exit 1
        fi
        echo "built in $(($(date +%s) - start)) s"
        VGPU_BUILD="$src/build-gpu"
fi
export VGPU_BUILD
echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version,mig.mode.current --format=csv,noheader 2>&1 | head -n 1)"

names=()
results=()
times=()
run() {
        local name=$1 start rc ms
        shift
        start=$(date +%s%N)
        timeout -k 10 "$limit" "$@" >"$logs/$name.log" 2>&1
        rc=$?
        names+=("$name")
        case $rc in
        0) results+=(passed) ;;
        77) results+=("skipped: $(grep -m1 SKIP "$logs/$name.log")") ;;
        124 | 137)
                results+=("FAILED (timed out after $limit s)")
                # its engines run in sessions of their own: they would hold GPU memory on
                pkill -KILL -f "$VGPU_BUILD/bin/vgpu-engine" 2>/dev/null
                pkill -KILL -f "$VGPU_BUILD/bin/vgpud" 2>/dev/null
                ;;
        *) results+=("FAILED ($rc)") ;;
        esac
        ms=$((($(date +%s%N) - start) / 1000000))
        times+=("$((ms / 1000)).$((ms % 1000 / 100))")
        printf '%-16s %-40s %s\n' "$name" "${results[-1]}" "${times[-1]}"
        case ${results[-1]} in FAILED*) tail -n 15 "$logs/$name.log" | sed 's/^/    /' ;; esac
}

run isolation bash "$src/tests/gpu/run_isolation.sh" cuda
run guest_programs bash "$src/tests/gpu/run_guest_gpu.sh"
run guest_native bash "$src/tests/gpu/run_guest_native.sh"
run cudart_programs bash "$src/tests/gpu/run_cudart_gpu.sh"
run scheduler python3 -u "$src/tests/gpu/sched_gpu.py"
run suspend python3 -u "$src/tests/gpu/suspend_gpu.py"
run mig python3 -u "$src/tests/gpu/mig.py"
run vgpud_cuda python3 -u "$src/tests/gpu/vgpud_cuda.py"
run migrate_cuda python3 -u "$src/tests/gpu/migrate_cuda.py"
run bench_gpu bash "$src/bench/gpu/run.sh" "${quick[@]}"

echo
echo "== benchmark: native against remoted (remoted / native)"
sed -n '/^=== native against remoted/,$p' "$logs/bench_gpu.log" | grep -v '^BENCH'
grep '^BENCH gpu_.*_ratio' "$logs/bench_gpu.log"
echo
printf '%-16s %-40s %s\n' test result seconds
bad=0
for i in "${!names[@]}"; do
        printf '%-16s %-40s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
        case ${results[$i]} in FAILED*) bad=1 ;; esac
done
echo "logs: $logs"
exit $bad
