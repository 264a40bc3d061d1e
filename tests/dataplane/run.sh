#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Starts vgpud (sim, one H100-80GB in mixed-size mode), creates vGPUs A (H100-10C) and B
# (H100-5C), runs the data-plane test as their guest, tears down. Exits 77 without a guest driver.
set -euo pipefail
build=${VGPU_BUILD:?}
[ -e "$build/lib/libcuda.so.1" ] || { echo "skip: no guest driver built (CUDA headers missing)"; exit 77; }
tmp=$(mktemp -d)
pid=
ctl() { "$build/bin/vgpuctl" --socket "$tmp/s.sock" "$@"; }
cleanup() {
        local rc=$?
        if [ -n "$pid" ]; then
                for u in ${a:-} ${b:-}; do ctl destroy --force "$u" >/dev/null 2>&1 || true; done
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        rm -rf "$tmp"
        return $rc
}
trap cleanup EXIT
"$build/bin/vgpud" --sim-gpus H100-80GB --state "$tmp/state" --socket "$tmp/s.sock" >"$tmp/out" 2>"$tmp/log" &
pid=$!
for _ in $(seq 200); do grep -qx READY "$tmp/out" 2>/dev/null && break; sleep 0.05; done
ctl mode --gpu 0 heterogeneous >/dev/null
a=$(ctl create --gpu 0 --type H100-10C)
b=$(ctl create --gpu 0 --type H100-5C)
sock_a=$(ctl --json list | python3 -c "import json,sys; print([v['guest_socket'] for v in json.load(sys.stdin)['vgpus'] if v['uuid']=='$a'][0])")
LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET="$tmp/s.sock" VGPU_UUID="$a,$b" GUEST_SOCKET_A="$sock_a" \
        "$build/tests/dataplane/test_dataplane" || { tail -n 30 "$tmp/log"; exit 1; }
