#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the CUDA runtime-API programs (tests/cudart/, and examples/rt_*) in vGPUs through vgpu's
# libcudart.so.13: starts vgpud on the sim (one H100-80GB) in a temp dir, creates two H100-20C,
# runs each program with the first vGPU (the *_ptds ones are built with --default-stream
# per-thread; test_rt_multi runs with both, rt_saxpy once more with
# CUDA_MODULE_LOADING=EAGER), checks that a program built with the static runtime fails with
# the message that says to rebuild with -cudart shared, and cleans up. Needs $VGPU_BUILD; exits
# 77 when vgpu's libcudart or the programs are not built.
# Usage: run.sh [PROGRAM...]  (names under tests/cudart/ or examples/; default: all)
set -u

build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
lib="$build/lib/libcudart.so.13"
ctl="$build/bin/vgpuctl"
limit=${VGPU_RT_TIMEOUT:-120}

skip() { echo "SKIP: $*"; exit 77; }
[ -e "$lib" ] || skip "$lib does not exist (vgpu's CUDA runtime is not built)"
[ -e "$build/lib/libcuda.so.1" ] || skip "the guest driver is not built"
[ -x "$build/bin/vgpud" ] && [ -x "$ctl" ] || skip "vgpud or vgpuctl is not built"

tests=(test_rt_device test_rt_memory test_rt_streams test_rt_errors test_rt_multi test_rt_memory_ptds
       test_rt_streams_ptds)
examples=(rt_saxpy rt_matmul rt_reduction rt_streams)
programs=()
for t in "${tests[@]}"; do programs+=("$build/tests/cudart/$t"); done
for e in "${examples[@]}"; do programs+=("$build/examples/$e"); done
static="$build/tests/cudart/test_rt_static"
if [ $# -gt 0 ]; then
        programs=()
        static=""
        for name in "$@"; do
                if [ -x "$build/tests/cudart/$name" ]; then
                        programs+=("$build/tests/cudart/$name")
                else
                        programs+=("$build/examples/$name")
                fi
        done
fi
for p in "${programs[@]}" $static; do
        [ -x "$p" ] || skip "$p is not built (is the CUDA toolkit installed?)"
done

# In a sanitized build the libraries carry ASan, the nvcc-built programs do not: the ASan runtime
# has to be loaded first.
preload=""
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan/ {print $3}')
ubsan=$(ldd "$lib" 2>/dev/null | awk '/libubsan/ {print $3}')
if [ -n "$asan" ]; then
        preload="$asan${ubsan:+:$ubsan}"
        # nvcc's programs and the toolkit's code are not ours to leak-check.
        export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

tmp=$(mktemp -d)
sock="$tmp/vgpud.sock"
pid=""
uuids=()
cleanup() {
        for u in "${uuids[@]}"; do "$ctl" --socket "$sock" destroy --force "$u" >/dev/null 2>&1; done
        if [ -n "$pid" ]; then
                kill -TERM "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# VGPU_TEST_BACKEND=cuda: on the host's GPU (tests/gpu/run_cudart_gpu.sh), VGPU_RT_TYPE vGPUs.
backend=${VGPU_TEST_BACKEND:-sim}
vtype=${VGPU_RT_TYPE:-}
vgpud_args=(--sim-gpus H100-80GB)
[ "$backend" = cuda ] && vgpud_args=(--backend cuda)
"$build/bin/vgpud" "${vgpud_args[@]}" --state "$tmp/state" --socket "$sock" --foreground \
        >"$tmp/vgpud.out" 2>"$tmp/vgpud.err" &
pid=$!
for _ in $(seq 300); do
        grep -q '^READY' "$tmp/vgpud.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
done
if ! grep -q '^READY' "$tmp/vgpud.out" 2>/dev/null; then
        echo "FAIL: vgpud did not say READY"
        sed 's/^/  vgpud: /' "$tmp/vgpud.err"
        exit 1
fi
if [ -z "$vtype" ]; then
        # the GPU's 20 GiB time-sliced type (H100-20C on the sim's H100 PCIe, H100XM-20C on SXM)
        vtype=$("$ctl" --socket "$sock" --json types --gpu 0 | python3 -c '
import json, sys
ts = [t for t in json.load(sys.stdin)["types"] if t["class"] == "time-sliced"]
print(next((t["name"] for t in ts if t["fb_mib"] == 20480), ts[-1]["name"] if ts else ""))')
fi
for _ in 1 2; do
        u=$("$ctl" --socket "$sock" create --gpu 0 --type "$vtype" 2>"$tmp/create.err" | tail -n 1)
        if [ -z "$u" ]; then
                echo "FAIL: vgpuctl create --type $vtype"
                sed 's/^/  vgpuctl: /' "$tmp/create.err"
                exit 1
        fi
        uuids+=("$(printf '%s' "$u" | tr -d '[:space:]')")
done
fb=$("$ctl" --socket "$sock" --json query "${uuids[0]}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["fb_size"])')
echo "vGPUs ${uuids[*]} ($vtype on $backend, $fb bytes each) on vgpud pid $pid"

passed=0
failed=0
failures=()
# run NAME UUIDS [ENV=VALUE...] -- PROGRAM [ARGS...]
run() {
        local name=$1 ids=$2 rc
        shift 2
        echo "=== $name"
        env LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
                ${preload:+LD_PRELOAD="$preload"} VGPU_SOCKET="$sock" VGPU_UUID="$ids" \
                VGPU_EXPECT_FB_BYTES="$fb" "$@" >"$tmp/out" 2>&1
        rc=$?
        cat "$tmp/out"
        if [ $rc -eq 0 ]; then
                passed=$((passed + 1))
        else
                echo "=== $name FAILED (exit status $rc)"
                failed=$((failed + 1))
                failures+=("$name")
        fi
}

for p in "${programs[@]}"; do
        name=$(basename "$p")
        if [ "$name" = test_rt_multi ]; then
                run "$name" "${uuids[0]},${uuids[1]}" VGPU_EXPECT_DEVICES=2 timeout "$limit" "$p"
        else
                run "$name" "${uuids[0]}" VGPU_EXPECT_DEVICES=1 timeout "$limit" "$p"
        fi
        if [ "$name" = rt_saxpy ]; then
                run "rt_saxpy (CUDA_MODULE_LOADING=EAGER)" "${uuids[0]}" CUDA_MODULE_LOADING=EAGER \
                        timeout "$limit" "$p" --n 4096
        fi
done

if [ -n "$static" ]; then
        # Expected to fail: exit status 1 (not a hang: timeout's 124), with the message.
        echo "=== test_rt_static (static runtime: must fail with a clear message)"
        env LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
                ${preload:+LD_PRELOAD="$preload"} VGPU_SOCKET="$sock" VGPU_UUID="${uuids[0]}" \
                timeout 60 "$static" >"$tmp/out" 2>&1
        rc=$?
        cat "$tmp/out"
        if [ $rc -eq 1 ] && grep -q -- '-cudart shared' "$tmp/out"; then
                echo "PASS the static program failed with exit status 1 and said to rebuild"
                passed=$((passed + 1))
        else
                echo "FAIL the static program: exit status $rc, message $(grep -c -- '-cudart shared' "$tmp/out") time(s)"
                failed=$((failed + 1))
                failures+=("test_rt_static")
        fi
fi

if ! kill -0 "$pid" 2>/dev/null; then
        echo "FAIL: vgpud died during the run"
        sed 's/^/  vgpud: /' "$tmp/vgpud.err"
        failed=$((failed + 1))
        failures+=("vgpud")
fi
echo "runtime-API programs: $passed passed, $failed failed${failures[*]:+ (${failures[*]})}"
[ $failed -eq 0 ]
