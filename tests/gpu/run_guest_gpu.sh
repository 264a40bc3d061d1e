#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every guest test program and example of run_guest_tests.sh, on the host's real GPU through the
# cuda backend. Exits 77 without an NVIDIA driver or GPU.
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
# A real GPU reports each kernel's own static shared memory (a sim gap closed there).
export VGPU_KNOWN_GAPS=${VGPU_KNOWN_GAPS_GPU-""}
exec bash "$(dirname "$0")/../guest/run_guest_tests.sh" "$@"
