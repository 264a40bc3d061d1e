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

# The same over TCP (docs/remote.md), as a guest on another machine: the link's threads and the
# frames' sealing sit in every call. Its lines are named remote_*; the goals above are the local
# data path's.
if [ "${VGPU_BENCH_REMOTE:-1}" = 1 ]; then
        "$build/bin/vgpuctl" --socket "$tmp/s.sock" destroy --force "$uuid" >/dev/null
        kill "$pid"
        wait "$pid" || true
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/guest.key"
        chmod 600 "$tmp/guest.key"
        : >"$tmp/out"
        "$build/bin/vgpud" --sim-gpus H100-80GB --state "$tmp/state" --socket "$tmp/s.sock" \
                --guest-listen 127.0.0.1:0 --guest-secret "$tmp/guest.key" >"$tmp/out" 2>"$tmp/log" &
        pid=$!
        for _ in $(seq 100); do grep -qx READY "$tmp/out" && break; sleep 0.05; done
        port=$(sed -n 's/.*taking remote guests on .* (port \([0-9]*\)).*/\1/p' "$tmp/log")
        uuid=$("$build/bin/vgpuctl" --socket "$tmp/s.sock" create --gpu 0 --type H100-80C)
        echo "== over TCP (127.0.0.1:$port)"
        LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET=/nonexistent VGPU_REMOTE="127.0.0.1:$port" \
                VGPU_REMOTE_SECRET="$tmp/guest.key" VGPU_UUID="$uuid" \
                "$build/bench/bench_dataplane" "$@" | sed -u 's/^BENCH /BENCH remote_/'
fi
