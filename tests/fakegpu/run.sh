#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one test of tests/gpu on the stand-in NVIDIA driver (README.md): a fresh VGPU_FAKE_GPU
# directory with one H100 SXM5 80GB not in MIG mode, and VGPU_CUDA_DRIVER / VGPU_NVML_LIB naming
# the stand-in libraries. Usage: run.sh COMMAND [ARGS...]. The driver is there, so a test that
# skips (77) fails here.
set -u
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import fakegpu
fakegpu.write(sys.argv[2], [fakegpu.h100(0)])' "$here" "$dir" || exit 1
export VGPU_FAKE_GPU=$dir
export VGPU_CUDA_DRIVER=$build/tests/fakegpu/libfakecuda.so
export VGPU_NVML_LIB=$build/tests/fakegpu/libfakenvml.so
unset CUDA_VISIBLE_DEVICES
"$@"
rc=$?
if [ "$rc" = 77 ]; then
        echo "FAIL: the test skipped on the stand-in driver"
        exit 1
fi
exit "$rc"
