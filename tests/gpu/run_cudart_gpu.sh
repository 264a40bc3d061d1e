#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The CUDA runtime-API programs of tests/cudart/ (and examples/rt_*) through vgpu's
# libcudart.so.13 and libcuda.so.1, in two vGPUs on the host's real GPU (the cuda backend).
# Exits 77 without an NVIDIA driver or GPU. VGPU_RT_TYPE picks the vGPU type (default: the GPU's
# 20 GiB time-sliced type; a GPU the catalog does not know offers GEN<N>-<k>C types,
# docs/catalog.md).
set -u
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
# NVML through vgpu's own probe, so that the stand-in driver (tests/fakegpu) counts too
"$build/bin/vgpu-nvml-probe" >/dev/null 2>"${TMPDIR:-/tmp}/vgpu-probe.$$" || {
        echo "SKIP: no NVIDIA GPU: $(head -n 1 "${TMPDIR:-/tmp}/vgpu-probe.$$")"
        rm -f "${TMPDIR:-/tmp}/vgpu-probe.$$"
        exit 77
}
rm -f "${TMPDIR:-/tmp}/vgpu-probe.$$"
export VGPU_TEST_BACKEND=cuda
exec bash "$(dirname "$0")/../cudart/run.sh" "$@"
