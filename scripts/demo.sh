#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: vgpu as an operator sees it today. Starts vgpud on the sim backend (two simulated
# GPUs, state in a temporary directory), carves vGPUs in equal-size, mixed-size and MIG modes with
# vgpuctl, shows them the way nvidia-smi would, and cleans up.
set -euo pipefail
build=${BUILD:-build}
bin="$build/bin"
tmp=$(mktemp -d /tmp/vgpu-demo.XXXXXX)
export VGPU_SOCKET="$tmp/vgpud.sock"
pid=
cleanup() {
        # Destroying the vGPUs stops their engines; then vgpud goes.
        if [ -n "$pid" ]; then
                for u in $("$bin/vgpuctl" --json list 2>/dev/null |
                           python3 -c 'import json,sys; [print(v["uuid"]) for v in json.load(sys.stdin)["vgpus"]]' 2>/dev/null); do
                        "$bin/vgpuctl" destroy "$u" >/dev/null 2>&1 || true
                done
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "GPU models vgpu knows" "$bin/vgpuctl" models
step "H100 80GB MIG profiles (nvidia-smi mig -lgip layout)" "$bin/vgpuctl" types --model H100-80GB --mig

printf '\n\033[1m== starting vgpud (sim backend: an H100 80GB and an A100 40GB)\033[0m\n'
"$bin/vgpud" --backend sim --sim-gpus H100-80GB,A100-40GB --state "$tmp/state" \
        --socket "$VGPU_SOCKET" --foreground >"$tmp/vgpud.out" 2>"$tmp/vgpud.log" &
pid=$!
for _ in $(seq 100); do grep -qx READY "$tmp/vgpud.out" 2>/dev/null && break; sleep 0.05; done
grep -qx READY "$tmp/vgpud.out" || { cat "$tmp/vgpud.log"; exit 1; }

step "the physical GPUs" "$bin/vgpuctl" gpus
step "GPU 0 in mixed-size mode" "$bin/vgpuctl" mode --gpu 0 heterogeneous
step "an H100-40C" "$bin/vgpuctl" create --gpu 0 --type H100-40C
step "an H100-20C" "$bin/vgpuctl" create --gpu 0 --type H100-20C
step "two H100-10C" bash -c "'$bin/vgpuctl' create --gpu 0 --type H100-10C && '$bin/vgpuctl' create --gpu 0 --type H100-10C"
step "the GPU is full: one more is refused, with the reason" bash -c "'$bin/vgpuctl' create --gpu 0 --type H100-5C || true"
step "GPU 1 in MIG mode" "$bin/vgpuctl" mode --gpu 1 mig
step "a 3g.20gb GPU instance" "$bin/vgpuctl" mig --gpu 1 -cgi 3g.20gb
step "four time-sliced A100-5C inside it" bash -c "for i in 1 2 3 4; do '$bin/vgpuctl' create --gpu 1 --type A100-5C --gpu-instance 1; done"
step "a MIG-backed A100-2-10C (its GPU instance is made for it)" "$bin/vgpuctl" create --gpu 1 --type A100-2-10C
step "GPU instances" "$bin/vgpuctl" mig --gpu 1 -lgi
step "the vGPUs (nvidia-smi vgpu layout)" "$bin/vgpuctl" list
step "what is still creatable on GPU 1" "$bin/vgpuctl" types -c --gpu 1
printf '\nEach vGPU is held by its own engine process, which reserved its framebuffer at creation:\n'
for p in $(pgrep -f -- "--control $tmp/state"); do
        tr '\0' ' ' </proc/"$p"/cmdline | sed -E "s|^.*--uuid ([^ ]+) --type ([^ ]+) .*--device-address ([^ ]+) --fb-size ([^ ]+).*|  engine $p: vGPU \1 \2, framebuffer \4 bytes at \3|"
        echo
done
