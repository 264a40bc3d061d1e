#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one Python licensing test of this folder with the build's environment (VGPU_BUILD).
set -euo pipefail
exec python3 -u "$(dirname "$0")/$1" "${@:2}"
