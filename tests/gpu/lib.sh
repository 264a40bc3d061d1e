#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sourced by the scripts of tests/gpu: a vgpud on a backend in a temp dir, and its cleanup.
#   start_vgpud BACKEND   sim (an H100 SXM) or cuda (the host's GPUs; exits 77 without a driver)
#   type_of_size GIB      the time-sliced type of GPU 0 with GIB GiB of framebuffer
#   ctl ARGS...           vgpuctl on that vgpud
build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
vgpud_bin="$build/bin/vgpud"
ctl_bin="$build/bin/vgpuctl"
tmp=$(mktemp -d)
sock="$tmp/vgpud.sock"
vgpud_pid=""
created=()

skip() {
        echo "SKIP: $*"
        exit 77
}

ctl() {
        "$ctl_bin" --socket "$sock" "$@"
}

cleanup() {
        # every vGPU vgpud lists: create() runs in $(...), so "created" misses some
        for u in "${created[@]}" $(ctl --json list 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin).get("vgpus", []):
    print(v["uuid"])' 2>/dev/null); do
                ctl destroy --force "$u" >/dev/null 2>&1
        done
        if [ -n "$vgpud_pid" ] && kill -0 "$vgpud_pid" 2>/dev/null; then
                kill -TERM "$vgpud_pid" 2>/dev/null
                wait "$vgpud_pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_vgpud() {
        local args=(--sim-gpus H100-SXM-80GB)

        [ -x "$vgpud_bin" ] || skip "$vgpud_bin is not built"
        if [ "$1" = cuda ]; then
                args=(--backend cuda)
        fi
        "$vgpud_bin" "${args[@]}" --state "$tmp/state" --socket "$sock" >"$tmp/vgpud.out" \
                2>"$tmp/vgpud.err" &
        vgpud_pid=$!
        for _ in $(seq 300); do
                grep -q '^READY' "$tmp/vgpud.out" 2>/dev/null && return 0
                kill -0 "$vgpud_pid" 2>/dev/null || break
                sleep 0.1
        done
        if [ "$1" = cuda ] && grep -q 'no NVIDIA driver\|sees no GPU\|no cuda backend' "$tmp/vgpud.err"; then
                skip "no GPU: $(grep -o 'error: .*' "$tmp/vgpud.err" | head -n 1)"
        fi
        echo "FAIL: vgpud --backend $1 did not start"
        sed 's/^/  vgpud: /' "$tmp/vgpud.err"
        exit 1
}

type_of_size() {
        ctl --json types --gpu 0 | python3 -c '
import json, sys
want = int(sys.argv[1]) * 1024
for t in json.load(sys.stdin)["types"]:
    if t["class"] == "time-sliced" and t["fb_mib"] == want:
        print(t["name"]); break
else:
    sys.exit("no time-sliced type of %s GiB" % sys.argv[1])' "$1"
}

create() {
        local u

        u=$(ctl create --gpu 0 --type "$1" 2>"$tmp/create.err") || {
                echo "FAIL: vgpuctl create --type $1"
                sed 's/^/  /' "$tmp/create.err" "$tmp/vgpud.err"
                exit 1
        }
        u=$(printf '%s\n' "$u" | tail -n 1 | tr -d '[:space:]')
        created+=("$u")
        echo "$u"
}

query_field() {
        ctl --json query "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
