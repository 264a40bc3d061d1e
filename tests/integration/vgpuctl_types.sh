#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vgpuctl without a daemon: `models` and `types --model M [--mig] [--json]` print the catalog in
# the product's layouts; bad input gets one clear line on stderr and a non-zero exit.
set -euo pipefail
ctl="$VGPU_BUILD/bin/vgpuctl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# models: every model, text and JSON.
"$ctl" models >"$tmp/models"
for m in H100-80GB H100-SXM-80GB H200-141GB A100-80GB A100-40GB L40S L40 L4 A30 A10; do
        grep -q "^$m " "$tmp/models" || fail "models lacks $m"
done
"$ctl" --json models | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["models"]) >= 10'

# types, text: the nvidia-smi vgpu -s -v layout, colon in column 38.
"$ctl" types --model H100-80GB >"$tmp/types"
grep -q '^GPU model H100-80GB: NVIDIA H100 80GB PCIe' "$tmp/types" || fail "header"
for t in 80C 40C 20C 16C 10C 8C 5C 4C 7-80C 4-40C 3-40C 2-20C 1-20C 1-10C 1-10CME; do
        grep -q "Name *: NVIDIA H100-$t\$" "$tmp/types" || fail "type H100-$t missing"
done
awk -F: '/^ +(vGPU Type ID|Name|FB Memory) /{ if (index($0, ":") != 38) { print "colon at " index($0, ":") ": " $0; exit 1 } }' "$tmp/types" || fail "colon column"
# H100-4C: 20 in equal size, 16 mixed, 4096 MiB.
awk '/Name .*H100-4C$/{f=1} f&&/Max Instances  /{print; exit}' "$tmp/types" | grep -q ': 20$' || fail "4C max"
awk '/Name .*H100-4C$/{f=1} f&&/Mixed Size/{print; exit}' "$tmp/types" | grep -q ': 16$' || fail "4C mixed"
awk '/Name .*H100-4C$/{f=1} f&&/FB Memory/{print; exit}' "$tmp/types" | grep -q ': 4096 MiB$' || fail "4C fb"
# 16C: documented 6, capped at 5 by the framebuffer, and said so.
awk '/Name .*H100-16C$/{f=1} f&&/Max Instances  /{print; exit}' "$tmp/types" | grep -q ': 5 (documented 6' || fail "16C cap"

# types --mig: only MIG-backed types, then -lgip and -lgipp.
"$ctl" types --model h100-80gb --mig >"$tmp/mig"
grep -q 'NVIDIA H100-20C$' "$tmp/mig" && fail "--mig lists a time-sliced type"
grep -q '| GPU instance profiles: ' "$tmp/mig" || fail "lgip box"
grep -Eq '^\|   0   MIG 1g.10gb +19 +7/7 ' "$tmp/mig" || fail "lgip 1g.10gb row"
grep -Eq '^\|   0   MIG 3g.40gb +9 +2/2 ' "$tmp/mig" || fail "lgip 3g.40gb row"
for line in 'Profile ID 19 Placements: {0,1,2,3,4,5,6}:1' 'Profile ID 15 Placements: {0,2,4,6}:2' \
            'Profile ID 14 Placements: {0,2,4}:2' 'Profile ID  9 Placements: {0,4}:4' \
            'Profile ID  5 Placements: {0}:4' 'Profile ID  0 Placements: {0}:8'; do
        grep -qF "GPU  0 $line" "$tmp/mig" || fail "lgipp: $line"
done
# Every box line has the same width.
[ "$(grep -E '^[|+]' "$tmp/mig" | awk '{print length($0)}' | sort -u | wc -l)" = 1 ] || fail "box widths"

# JSON carries the same figures.
"$ctl" --json types --model H100-80GB | python3 -c '
import json, sys
d = json.load(sys.stdin)
t = {x["name"]: x for x in d["types"]}
assert t["H100-16C"]["max_instances"] == 5 and t["H100-16C"]["max_instances_documented"] == 6
assert t["H100-4C"]["max_instances_mixed"] == 16 and t["H100-4C"]["placement_size"] == 1
assert t["H100-1-10C"]["gpu_instance_profile_id"] == 19 and t["H100-1-10C"]["class"] == "mig-backed"
p = {x["name"]: x for x in d["mig_profiles"]}
assert p["3g.40gb"]["placements"] == {"starts": [0, 4], "size": 4}
assert p["1g.10gb"]["instances_free"] == 7
assert d["model"]["mig"] == {"memory_slices": 8, "compute_slices": 7}
'
"$ctl" types --model A100-40GB --mig --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert all(t["class"] == "mig-backed" for t in d["types"]) and d["types"]'

# Errors: one line on stderr, non-zero exit, stdout empty.
expect_err() {
        local pattern=$1; shift
        if "$ctl" "$@" >"$tmp/out" 2>"$tmp/err"; then fail "succeeded: $*"; fi
        [ -s "$tmp/out" ] && fail "stdout not empty: $*"
        [ "$(wc -l <"$tmp/err")" = 1 ] || fail "not one line: $*: $(cat "$tmp/err")"
        grep -q "$pattern" "$tmp/err" || fail "message for $*: $(cat "$tmp/err")"
}
expect_err "unknown GPU model 'B999'; known models: H100-80GB, " types --model B999
expect_err 'give --model' types
expect_err 'L4 does not support MIG' types --model L4 --mig
expect_err "unknown command 'frobnicate'" frobnicate
expect_err "unexpected argument 'extra'" types --model L4 extra
echo "vgpuctl_types: ok"
