#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GET /metrics' text through Prometheus' own checker: `promtool check metrics` parses the sample
# exposition (tests/unit/metrics_sample.c) and lints it, and any complaint fails the test. One is
# expected and nothing else: dcgm-exporter's label modelName is camelCase, which the lint flags; we
# keep the name its dashboards use, and prove it is the only complaint by checking the text again
# with that one label renamed, which must pass clean.
set -euo pipefail
if ! command -v promtool >/dev/null; then
        echo "SKIP: promtool is not installed (Debian package prometheus; scripts/deps.sh)" >&2
        exit 77
fi
sample="$VGPU_BUILD/tests/metrics_sample"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$sample" >"$tmp/metrics" || fail "metrics_sample exited $?"
[ -s "$tmp/metrics" ] || fail "empty exposition"
# Values are plain decimals: the format would take NaN and Inf, but we never write them.
if grep -v '^#' "$tmp/metrics" | grep -Ev '} [0-9]+(\.[0-9]*[1-9])?$'; then
        fail "a sample's value is not a plain decimal (above)"
fi

# As it is: the camelCase complaint (one a sample: all carry modelName), and no other.
rc=0
promtool check metrics <"$tmp/metrics" >"$tmp/out" 2>&1 || rc=$?
camel=$(grep -c "^[A-Za-z_]* label names should be written in 'snake_case' not 'camelCase'\$" "$tmp/out" || true)
other=$(grep -vc "label names should be written in 'snake_case' not 'camelCase'\$" "$tmp/out" || true)
if [ "$other" -ne 0 ] || [ "$camel" -eq 0 ]; then
        cat "$tmp/out" >&2
        fail "promtool: $other unexpected complaints, $camel camelCase ones (rc $rc)"
fi

# With modelName renamed: not one complaint.
sed 's/,modelName="/,model_name="/' "$tmp/metrics" >"$tmp/renamed"
grep -q 'modelName' "$tmp/renamed" && fail "modelName left after renaming"
if ! promtool check metrics <"$tmp/renamed" >"$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
        cat "$tmp/out" >&2
        fail "promtool complains about the exposition"
fi
echo "metrics_promtool: $(grep -c '^# TYPE ' "$tmp/metrics") families, $(grep -vc '^#' "$tmp/metrics") samples, promtool clean"
