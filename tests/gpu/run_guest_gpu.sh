#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every guest test program and example of run_guest_tests.sh, on the host's real GPU through the
# cuda backend. Exits 77 without an NVIDIA driver or GPU.
set -u
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
command -v nvidia-smi >/dev/null 2>&1 || { echo "SKIP: no nvidia-smi: no NVIDIA driver"; exit 77; }
nvidia-smi -L >/dev/null 2>&1 || { echo "SKIP: nvidia-smi sees no GPU"; exit 77; }
export VGPU_TEST_BACKEND=cuda
# A real GPU reports each kernel's own static shared memory (a sim gap closed there).
export VGPU_KNOWN_GAPS=${VGPU_KNOWN_GAPS_GPU-""}
exec bash "$(dirname "$0")/../guest/run_guest_tests.sh" "$@"
