#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: vgpu in under a minute. Starts vgpud on the sim backend (an H100 80GB and an A100
# 40GB, state in a temporary directory), carves the H100 into 2 x H100-20C and 4 x H100-10C in
# mixed-size mode, runs the CUDA examples in those vGPUs at once through vgpu's libcuda.so.1 (the
# runtime-API ones through its libcudart.so.13), shows them with vgpuctl while they run, carves
# the A100 with MIG, and cleans up. A second vgpud (an H200 141GB) stands in for another host: the
# busy vGPU moves there over authenticated TCP, and a program uses a vGPU there over TCP. Last,
# the cuda backend on vgpu's stand-in NVIDIA driver (tests/fakegpu; there is no GPU here): an H100
# in MIG mode, whose GPU instances vgpud finds and runs a MIG-backed vGPU's engine on.
set -euo pipefail
build=${BUILD:-build}
bin="$build/bin"
tmp=$(mktemp -d /tmp/vgpu-demo.XXXXXX)
export VGPU_SOCKET="$tmp/vgpud.sock"
pid=
pid2=
pid3=
cleanup() {
        if [ -n "$pid3" ]; then
                for u in $("$bin/vgpuctl" --socket "$tmp/vgpud3.sock" --json list 2>/dev/null |
                           python3 -c 'import json,sys; [print(v["uuid"]) for v in json.load(sys.stdin)["vgpus"]]' 2>/dev/null); do
                        "$bin/vgpuctl" --socket "$tmp/vgpud3.sock" destroy --force "$u" >/dev/null 2>&1 || true
                done
                kill "$pid3" 2>/dev/null || true
                wait "$pid3" 2>/dev/null || true
        fi
        if [ -n "$pid2" ]; then
                for u in $("$bin/vgpuctl" --socket "$tmp/vgpud2.sock" --json list 2>/dev/null |
                           python3 -c 'import json,sys; [print(v["uuid"]) for v in json.load(sys.stdin)["vgpus"]]' 2>/dev/null); do
                        "$bin/vgpuctl" --socket "$tmp/vgpud2.sock" destroy --force "$u" >/dev/null 2>&1 || true
                done
                kill "$pid2" 2>/dev/null || true
                wait "$pid2" 2>/dev/null || true
        fi
        # Destroying the vGPUs stops their engines; then vgpud goes.
        if [ -n "$pid" ]; then
                for u in $("$bin/vgpuctl" --json list 2>/dev/null |
                           python3 -c 'import json,sys; [print(v["uuid"]) for v in json.load(sys.stdin)["vgpus"]]' 2>/dev/null); do
                        "$bin/vgpuctl" destroy --force "$u" >/dev/null 2>&1 || true
                done
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { say "$1"; printf '$ %s\n' "${*:2}"; "${@:2}"; }

step "GPU models vgpu knows" "$bin/vgpuctl" models

# The secrets vgpuds share to move vGPUs between them, and that remote guests prove (docs/remote.md).
for k in mig guest; do
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/$k.key"
        chmod 600 "$tmp/$k.key"
done
say "starting vgpud (sim backend: an H100 80GB, an A100 40GB and an H200 141GB)"
"$bin/vgpud" --backend sim --sim-gpus H100-80GB,A100-40GB,H200-141GB --state "$tmp/state" \
        --socket "$VGPU_SOCKET" --migrate-secret "$tmp/mig.key" --foreground \
        >"$tmp/vgpud.out" 2>"$tmp/vgpud.log" &
pid=$!
for _ in $(seq 100); do grep -qx READY "$tmp/vgpud.out" 2>/dev/null && break; sleep 0.05; done
grep -qx READY "$tmp/vgpud.out" || { cat "$tmp/vgpud.log"; exit 1; }
say "starting a second vgpud, as on another host (an H200 141GB), taking migrations and remote guests on TCP"
"$bin/vgpud" --backend sim --sim-gpus H200-141GB --state "$tmp/state2" --socket "$tmp/vgpud2.sock" \
        --migrate-secret "$tmp/mig.key" --migrate-listen 127.0.0.1:0 \
        --guest-listen 127.0.0.1:0 --guest-secret "$tmp/guest.key" --foreground \
        >"$tmp/vgpud2.out" 2>"$tmp/vgpud2.log" &
pid2=$!
for _ in $(seq 100); do grep -qx READY "$tmp/vgpud2.out" 2>/dev/null && break; sleep 0.05; done
grep -qx READY "$tmp/vgpud2.out" || { cat "$tmp/vgpud2.log"; exit 1; }
mport=$(sed -n 's/.*taking migrations on .* (port \([0-9]*\)).*/\1/p' "$tmp/vgpud2.log")
gport=$(sed -n 's/.*taking remote guests on .* (port \([0-9]*\)).*/\1/p' "$tmp/vgpud2.log")
echo "migrations on 127.0.0.1:$mport, remote guests on 127.0.0.1:$gport"
"$bin/vgpuctl" gpus

step "GPU 0 in mixed-size mode" "$bin/vgpuctl" mode --gpu 0 heterogeneous
say "2 x H100-20C and 4 x H100-10C"
uuids=()
for t in H100-20C H100-20C H100-10C H100-10C H100-10C H100-10C; do
        uuids+=("$("$bin/vgpuctl" create --gpu 0 --type "$t")")
        echo "  $t ${uuids[-1]}"
done
step "the GPU is full now: one more is refused, with the reason" \
        bash -c "'$bin/vgpuctl' create --gpu 0 --type H100-5C || true"

if [ -x "$build/examples/saxpy" ] && [ -e "$build/lib/libcuda.so.1" ]; then
        # The fifth is tests/migration/mig_guest: a computation that checks itself step by step and
        # reports the longest step, i.e. the pause a migration cost it.
        mig="mig_guest --mib 64 --seconds 6"
        [ -x "$build/tests/migration/mig_guest" ] || mig="longrun --seconds 4"
        progs=("saxpy" "matmul" "reduction" "streams" "$mig" "saxpy --n 200000")
        if [ -x "$build/examples/rt_saxpy" ] && [ -e "$build/lib/libcudart.so.13" ]; then
                # Half of them runtime-API programs (<<<>>>, nvcc -cudart shared) on vgpu's libcudart.
                say "running CUDA examples in the six vGPUs at once: driver API on vgpu's libcuda.so.1, rt_* on its libcudart.so.13 (PTX on the sim)"
                progs=("rt_saxpy" "matmul" "rt_reduction" "rt_streams" "$mig" "rt_matmul")
        else
                say "running the CUDA examples in the six vGPUs at once (vgpu's libcuda.so.1, PTX on the sim)"
        fi
        for i in "${!progs[@]}"; do
                read -r -a cmd <<<"${progs[$i]}"
                exe="$build/examples/${cmd[0]}"
                [ "${cmd[0]}" = mig_guest ] && exe="$build/tests/migration/mig_guest"
                LD_LIBRARY_PATH="$build/lib" VGPU_UUID="${uuids[$i]}" \
                        "$exe" "${cmd[@]:1}" >"$tmp/run$i.log" 2>&1 &
                runs+=($!)
        done
        sleep 1.5
        step "while they run: the vGPUs and their guests (nvidia-smi vgpu layout)" "$bin/vgpuctl" list
        step "one of them in detail (nvidia-smi vgpu -q layout)" \
                bash -c "'$bin/vgpuctl' query '${uuids[4]}' | head -n 24"
        # The long-running one moves while it computes: its program sees a pause, nothing else.
        step "live migration of the busy H100-10C (mig_guest, 64 MiB) to the H200, pre-copy: it becomes an H200-14C" \
                "$bin/vgpuctl" migrate "${uuids[4]}" --gpu 2 --precopy
        step "suspend it to an image (its framebuffer memory is released)" \
                "$bin/vgpuctl" suspend "${uuids[4]}"
        sleep 0.5
        step "and resume it: the program goes on where it was" "$bin/vgpuctl" resume "${uuids[4]}"
        step "now move it to the other vgpud over TCP (pre-copy): its program follows" \
                "$bin/vgpuctl" migrate "${uuids[4]}" --to "127.0.0.1:$mport" --precopy
        step "it runs there now, with its guest" "$bin/vgpuctl" --socket "$tmp/vgpud2.sock" list
        if [ -n "$gport" ]; then
                r=$("$bin/vgpuctl" --socket "$tmp/vgpud2.sock" create --gpu 0 --type H200-14C |
                    tail -n 1 | tr -d '[:space:]')
                step "a program on \"another machine\" uses a vGPU there over TCP (VGPU_REMOTE)" \
                        env LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET=/nonexistent \
                        VGPU_REMOTE="127.0.0.1:$gport" VGPU_REMOTE_SECRET="$tmp/guest.key" \
                        VGPU_UUID="$r" "$build/examples/saxpy"
        fi
        ok=0
        for i in "${!runs[@]}"; do
                if wait "${runs[$i]}"; then ok=$((ok + 1)); fi
                printf '  %-30s in %s: %s\n' "${progs[$i]}" "${uuids[$i]:0:8}" \
                        "$(grep -E 'PASS|FAIL|step_ms_max' "$tmp/run$i.log" | tr '\n' ' ')"
        done
        say "$ok of ${#runs[@]} programs passed"
else
        say "(the CUDA examples are not built here: no CUDA toolkit; skipping the workload part)"
fi

step "GPU 1 in MIG mode" "$bin/vgpuctl" mode --gpu 1 mig
step "a 3g.20gb GPU instance" "$bin/vgpuctl" mig --gpu 1 -cgi 3g.20gb
step "four time-sliced A100-5C inside it" bash -c "for i in 1 2 3 4; do '$bin/vgpuctl' create --gpu 1 --type A100-5C --gpu-instance 1 >/dev/null; done; echo created"
step "and a MIG-backed A100-2-10C (its GPU instance is made for it)" "$bin/vgpuctl" create --gpu 1 --type A100-2-10C
step "GPU instances (nvidia-smi mig -lgi layout)" "$bin/vgpuctl" mig --gpu 1 -lgi
step "all vGPUs" "$bin/vgpuctl" list

fake="$build/tests/fakegpu"
if [ -f "$fake/libfakecuda.so" ] && [ -f "$fake/libfakenvml.so" ]; then
        say "the cuda backend, on vgpu's stand-in NVIDIA driver (no GPU here): an H100 SXM5 in MIG mode with a 1g.10gb and a 3g.40gb GPU instance"
        python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import fakegpu
fakegpu.write(sys.argv[2], [fakegpu.h100(0, mig=True, instances=[fakegpu.gi(1, 19, 0), fakegpu.gi(2, 9, 4)])])' \
                tests/fakegpu "$tmp/gpu"
        VGPU_FAKE_GPU="$tmp/gpu" VGPU_CUDA_DRIVER="$fake/libfakecuda.so" \
                VGPU_NVML_LIB="$fake/libfakenvml.so" "$bin/vgpud" --backend cuda \
                --state "$tmp/state3" --socket "$tmp/vgpud3.sock" >"$tmp/vgpud3.out" 2>"$tmp/vgpud3.err" &
        pid3=$!
        for _ in $(seq 100); do grep -q READY "$tmp/vgpud3.out" 2>/dev/null && break; sleep 0.1; done
        step "the GPU instances vgpud found (nvidia-smi mig -lgi layout)" \
                "$bin/vgpuctl" --socket "$tmp/vgpud3.sock" mig --gpu 0 -lgi
        u=$("$bin/vgpuctl" --socket "$tmp/vgpud3.sock" create --gpu 0 --type H100XM-1-10C)
        step "a MIG-backed H100XM-1-10C goes into the free 1g.10gb instance" \
                "$bin/vgpuctl" --socket "$tmp/vgpud3.sock" query "$u"
        step "saxpy in it: its engine runs on the instance's MIG device" \
                env LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET="$tmp/vgpud3.sock" VGPU_UUID="$u" \
                "$build/examples/saxpy"
        step "vgpud makes no GPU instance on a real GPU unless started with --mig-admin" \
                bash -c "'$bin/vgpuctl' --socket '$tmp/vgpud3.sock' mig --gpu 0 -cgi 1g.10gb || true"
fi
