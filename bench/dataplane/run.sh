#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the data-plane benchmark as a guest: a vgpud on the sim with one H100-80GB, one H100-80C
# vGPU (room for the 1 GiB copies), the benchmark attached to it, then everything torn down.
set -euo pipefail
build=${VGPU_BUILD:?}
tmp=$(mktemp -d)
pid=
cleanup() {
        [ -n "$pid" ] && { "$build/bin/vgpuctl" --socket "$tmp/s.sock" destroy --force "${uuid:-x}" >/dev/null 2>&1 || true; kill "$pid"; wait "$pid" || true; }
        rm -rf "$tmp"
}
trap cleanup EXIT
[ -e "$build/lib/libcuda.so.1" ] || { echo "no guest driver built"; exit 77; }
"$build/bin/vgpud" --sim-gpus H100-80GB --state "$tmp/state" --socket "$tmp/s.sock" >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -qx READY "$tmp/out" && break; sleep 0.05; done
uuid=$("$build/bin/vgpuctl" --socket "$tmp/s.sock" create --gpu 0 --type H100-80C)
LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET="$tmp/s.sock" VGPU_UUID="$uuid" "$build/bench/bench_dataplane" "$@"
