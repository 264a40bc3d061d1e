#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Isolation of vGPUs on one GPU, on BACKEND (sim or cuda): each vGPU's allocations lie in its own
# framebuffer at its fixed address and run out at its size; a guest of another vGPU can neither
# copy from nor read (in a kernel) that memory, and its fault leaves the first vGPU running.
# Usage: run_isolation.sh sim|cuda
set -u
backend=${1:?usage: run_isolation.sh sim|cuda}
# shellcheck source=tests/gpu/lib.sh
. "$(dirname "$0")/lib.sh"
prog="$build/tests/gpu/gpu_isolation"
[ -x "$prog" ] || skip "$prog is not built"
[ -e "$build/lib/libcuda.so.1" ] || skip "the guest driver is not built"
start_vgpud "$backend"
vtype=$(type_of_size 4) || exit 1
a=$(create "$vtype") || exit 1
b=$(create "$vtype") || exit 1
echo "vGPUs $a and $b ($vtype) on $backend"
guest() {
        local u=$1
        shift
        LD_LIBRARY_PATH="$build/lib" VGPU_SOCKET="$sock" VGPU_UUID="$u" timeout 300 "$prog" "$@"
}
failed=0

echo "=== fixed address and out of memory at the vGPU's size"
base=$(query_field "$a" device_address)
size=$(query_field "$a" fb_size)
guest "$a" fixed "$base" "$size" || failed=1

echo "=== a guest of $b pokes at memory of $a"
mkfifo "$tmp/in"
guest "$a" hold <"$tmp/in" >"$tmp/hold.out" 2>&1 &
hold_pid=$!
exec 3>"$tmp/in"
ptr=""
for _ in $(seq 300); do
        ptr=$(sed -n 's/^PTR //p' "$tmp/hold.out")
        [ -n "$ptr" ] && break
        kill -0 "$hold_pid" 2>/dev/null || break
        sleep 0.1
done
if [ -z "$ptr" ]; then
        echo "FAIL: the holding guest did not start"
        cat "$tmp/hold.out"
        exit 1
fi
guest "$b" poke "$ptr" || failed=1
echo check >&3
exec 3>&-
wait "$hold_pid" || failed=1
cat "$tmp/hold.out"
if [ "$backend" = cuda ] && ! grep -q "no GPU telemetry" "$tmp/vgpud.err"; then
        # the fault above is an Xid (31, MMU fault) that NVML reports and /metrics counts
        xids=0
        for _ in $(seq 30); do
                xids=$(curl -s --unix-socket "$sock" http://localhost/metrics |
                        awk '/^DCGM_FI_DEV_XID_ERRORS/ && !/vgpu_uuid/ {print $NF}')
                [ "${xids:-0}" != 0 ] && break
                sleep 0.1
        done
        echo "Xid errors counted on GPU 0: ${xids:-none}"
        [ "${xids:-0}" != 0 ] || failed=1
fi
state=$(query_field "$a" state)
echo "vGPU $a is $state"
[ "$state" = running ] || failed=1
[ $failed -eq 0 ] && echo "isolation on $backend: PASSED" || echo "isolation on $backend: FAILED"
exit $failed
