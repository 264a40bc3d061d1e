#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages vgpu needs to build and test, and only those that are missing.
# Safe to run again: with everything present it checks and says so, without touching apt.
set -euo pipefail

# One package a line: what the project uses it for is beside it.
packages=(
        build-essential   # gcc, make
        cmake             # the build (>= 3.25)
        pkg-config        # finding the libraries below
        clang-format      # the style check in CI
        libcmocka-dev     # unit tests
        libjansson-dev    # JSON: control API, vgpuctl --json
        libmicrohttpd-dev # the control API's HTTP server
        libsqlite3-dev    # vgpud's durable state
        libzstd-dev       # decompressing nvcc's fatbin entries
        libssl-dev        # lease signatures, migration TLS
        curl              # integration tests: raw HTTP over the Unix socket
        python3           # integration tests: JSON checks
        prometheus        # promtool: the metrics_promtool test checks GET /metrics' text format
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all ${#packages[@]} packages present"
else
        echo "deps: installing missing packages: ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
                sudo=sudo
        else
                sudo=
        fi
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
        echo "deps: installed ${missing[*]}"
fi

# The CUDA toolkit is not a Debian package here: it is expected at its standard location.
cuda_root=${CUDAToolkit_ROOT:-/usr/local/cuda}
if [ -x "$cuda_root/bin/nvcc" ]; then
        echo "deps: CUDA toolkit at $cuda_root ($("$cuda_root/bin/nvcc" --version | tail -n 1))"
else
        echo "deps: warning: no CUDA toolkit at $cuda_root (set CUDAToolkit_ROOT); examples will not build" >&2
fi
