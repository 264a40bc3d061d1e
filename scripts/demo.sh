#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`: what vgpu can show today. Prints the GPU models vgpu knows and the H100 80GB's vGPU
# types and MIG profiles, the way an operator of the product sees them. Later issues extend this
# to start vgpud on the sim backend and run CUDA programs in vGPUs.
set -euo pipefail
build=${BUILD:-build}
ctl="$build/bin/vgpuctl"

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "GPU models vgpu knows" "$ctl" models
step "H100 80GB: vGPU types (nvidia-smi vgpu -s -v layout)" "$ctl" types --model H100-80GB
step "H100 80GB: MIG profiles (nvidia-smi mig -lgip / -lgipp layout)" "$ctl" types --model H100-80GB --mig
step "L40S as JSON (first lines)" bash -c "'$ctl' --json types --model L40S | head -n 20"
