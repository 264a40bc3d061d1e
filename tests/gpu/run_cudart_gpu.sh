#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The CUDA runtime-API programs of tests/cudart/ (and examples/rt_*) through vgpu's
# libcudart.so.13 and libcuda.so.1, in two vGPUs on the host's real GPU (the cuda backend).
# Exits 77 without an NVIDIA driver or GPU. VGPU_RT_TYPE picks the vGPU type (default H100-20C:
# an H100 80GB; a GPU the catalog does not know offers GEN<N>-<k>C types, docs/catalog.md).
set -u
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
command -v nvidia-smi >/dev/null 2>&1 || { echo "SKIP: no nvidia-smi: no NVIDIA driver"; exit 77; }
nvidia-smi -L >/dev/null 2>&1 || { echo "SKIP: nvidia-smi sees no GPU"; exit 77; }
export VGPU_TEST_BACKEND=cuda
exec bash "$(dirname "$0")/../cudart/run.sh" "$@"
