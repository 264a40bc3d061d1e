#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one Python integration test of this folder with the build's environment.
set -euo pipefail
exec python3 -u "$(dirname "$0")/$1" "${@:2}"
