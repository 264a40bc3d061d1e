#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The guest test programs (tests/guest) on NVIDIA's own libcuda.so.1, and the runtime's
# (tests/cudart) on NVIDIA's libcudart.so.13 too, with no vGPU in between: every check they make
# of vgpu's guest driver and runtime, made of the real ones. A check that fails here expects of
# vgpu what a GPU does not do (the test, and likely vgpu, are wrong).
# Each program's failed checks are printed. Exits 77 without an NVIDIA driver or GPU, 1 when a
# check failed, else 0. Needs $VGPU_BUILD.
set -u
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
"$build/bin/vgpu-nvml-probe" >/dev/null 2>&1 || {
        echo "SKIP: no NVIDIA GPU (vgpu-nvml-probe found none)"
        exit 77
}
# The programs carry no RPATH: without build/lib on the path the loader finds NVIDIA's driver.
guest_dir=$(cd "$build/lib" && pwd -P)
native_path=""
IFS=: read -r -a dirs <<<"${LD_LIBRARY_PATH:-}"
for d in "${dirs[@]}"; do
        [ -n "$d" ] && [ -d "$d" ] && [ "$(cd "$d" && pwd -P)" = "$guest_dir" ] && continue
        [ -n "$d" ] && native_path="${native_path:+$native_path:}$d"
done
# the toolkit's runtime, should the loader not know where it is
cuda_root=${CUDAToolkit_ROOT:-/usr/local/cuda}
[ -d "$cuda_root/lib64" ] && native_path="${native_path:+$native_path:}$cuda_root/lib64"
bad=0
programs=()
for t in test_device test_context test_memory test_module_launch test_streams_events \
        test_errors test_multiprocess; do
        programs+=("$build/tests/guest/$t")
done
for t in test_rt_device test_rt_memory test_rt_streams test_rt_errors test_rt_multi \
        test_rt_memory_ptds test_rt_streams_ptds test_rt_static; do
        programs+=("$build/tests/cudart/$t")
done
for p in "${programs[@]}"; do
        t=$(basename "$p")
        [ -x "$p" ] || { echo "SKIP: $p is not built (is the CUDA toolkit installed?)"; exit 77; }
        out=$(LD_LIBRARY_PATH="$native_path" timeout 300 "$p" 2>&1)
        rc=$?
        summary=$(grep -oE '[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
        echo "$t: ${summary:-no summary} (exit $rc)"
        if [ $rc -ne 0 ]; then
                bad=1
                grep -E '^(FAIL|GAP)' <<<"$out" | head -n 20 | sed 's/^/    /'
                [ -n "$summary" ] || tail -n 5 <<<"$out" | sed 's/^/    /'
        fi
done
exit $bad
