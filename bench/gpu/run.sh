#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The GPU benchmark, native against remoted: runs bench_gpu on NVIDIA's libcuda.so.1, then in a
# vGPU of a vgpud on the cuda backend (vgpu's libcuda.so.1), and prints one comparison table with
# a PASS/MISS per goal and `BENCH gpu_<metric>_ratio <remoted/native> x` lines.
# Needs $VGPU_BUILD; arguments go to bench_gpu (e.g. --quick). Exits 77 without a GPU, 1 when a
# run crashed or computed a wrong result, else 0 whether or not the goals were met.
# VGPU_BENCH_GPU_TYPE: the vGPU type (default H100XM-40C, or GPU 0's own *-40C time-sliced type
# when vgpud does not offer that one; the 1 GiB copies need more than 2 GiB of framebuffer).
set -u

build=${VGPU_BUILD:?set VGPU_BUILD to the build directory}
bench="$build/bench/gpu/bench_gpu"
guest_lib="$build/lib/libcuda.so.1"
vgpud="$build/bin/vgpud"
ctl="$build/bin/vgpuctl"

skip() {
        echo "SKIP: $*"
        exit 77
}
fail() {
        echo "FAIL: $*"
        exit 1
}

[ -x "$bench" ] || skip "$bench is not built (is the CUDA toolkit installed?)"
command -v nvidia-smi >/dev/null 2>&1 || skip "nvidia-smi not found: no NVIDIA driver, no GPU"
nvidia-smi -L >/dev/null 2>&1 || skip "nvidia-smi -L failed: no GPU visible to the driver"
for f in "$guest_lib" "$vgpud" "$ctl"; do
        [ -e "$f" ] || skip "$f does not exist (build the whole tree)"
done

tmp=$(mktemp -d)
sock="$tmp/s.sock"
vgpud_pid=""
uuid=""
cleanup() {
        if [ -n "$uuid" ]; then
                "$ctl" --socket "$sock" destroy "$uuid" >/dev/null 2>&1 ||
                        "$ctl" --socket "$sock" destroy "$uuid" --force >/dev/null 2>&1
        fi
        if [ -n "$vgpud_pid" ] && kill -0 "$vgpud_pid" 2>/dev/null; then
                kill -TERM "$vgpud_pid" 2>/dev/null
                for _ in $(seq 100); do
                        kill -0 "$vgpud_pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$vgpud_pid" 2>/dev/null
                wait "$vgpud_pid" 2>/dev/null
        fi
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_bench LABEL OUT [VAR=VALUE...]: bench_gpu --label LABEL with this script's arguments, the
# variables set; its output is shown and kept in OUT. Returns bench_gpu's exit status.
bench_args=("$@")
run_bench() {
        local label=$1 out=$2
        shift 2
        env "$@" "$bench" --label "$label" ${bench_args[@]+"${bench_args[@]}"} 2>&1 | tee "$out"
        return "${PIPESTATUS[0]}"
}

# Native: LD_LIBRARY_PATH without the build's lib/, so the loader finds NVIDIA's libcuda.so.1.
guest_dir=$(cd "$build/lib" && pwd -P)
native_path=""
IFS=: read -r -a dirs <<<"${LD_LIBRARY_PATH:-}"
for d in "${dirs[@]}"; do
        [ -n "$d" ] || continue
        [ -d "$d" ] && [ "$(cd "$d" && pwd -P)" = "$guest_dir" ] && continue
        native_path="${native_path:+$native_path:}$d"
done

echo "=== native"
run_bench native "$tmp/native.out" LD_LIBRARY_PATH="$native_path"
rc=$?
[ $rc -eq 77 ] && skip "native run: $(grep -m1 '^SKIP' "$tmp/native.out" || echo "exit 77")"
[ $rc -eq 0 ] || fail "native run exited with status $rc"
# bench_gpu prints the real path of the libcuda.so.1 it runs on.
native_lib=$(sed -n 's/^libcuda: //p' "$tmp/native.out")
case "$native_lib" in
"$guest_dir"/*) fail "the native run loaded vgpu's guest driver ($native_lib)" ;;
esac

echo
echo "=== remoted"
"$vgpud" --backend cuda --state "$tmp/state" --socket "$sock" >"$tmp/vgpud.out" 2>"$tmp/vgpud.err" &
vgpud_pid=$!
for _ in $(seq 600); do
        grep -qx READY "$tmp/vgpud.out" 2>/dev/null && break
        kill -0 "$vgpud_pid" 2>/dev/null || break
        sleep 0.1
done
if ! grep -qx READY "$tmp/vgpud.out" 2>/dev/null; then
        sed 's/^/  vgpud: /' "$tmp/vgpud.err" "$tmp/vgpud.out"
        kill -0 "$vgpud_pid" 2>/dev/null || fail "vgpud --backend cuda exited before saying READY"
        fail "vgpud --backend cuda did not say READY within 60 s"
fi

vtype=${VGPU_BENCH_GPU_TYPE:-}
if [ -z "$vtype" ]; then
        # H100XM-40C when vgpud offers it, else GPU 0's own time-sliced 40 GiB type (H100-40C on a
        # PCIe card): names with one dash are time-sliced, MIG-backed ones have two.
        offered=$("$ctl" --socket "$sock" types -c --gpu 0 2>/dev/null |
                sed -n 's/^ *Name *: NVIDIA //p')
        vtype=H100XM-40C
        if ! grep -qx "$vtype" <<<"$offered"; then
                alt=$(grep -m1 -E '^[A-Za-z0-9]+-40C$' <<<"$offered")
                [ -n "$alt" ] && vtype=$alt
        fi
fi
if ! uuid=$("$ctl" --socket "$sock" create --gpu 0 --type "$vtype" 2>"$tmp/create.err"); then
        uuid=""
        sed 's/^/  vgpuctl: /' "$tmp/create.err"
        fail "vgpuctl create --gpu 0 --type $vtype"
fi
uuid=$(printf '%s\n' "$uuid" | tail -n 1 | tr -d '[:space:]')
echo "vGPU $uuid ($vtype) on vgpud --backend cuda, pid $vgpud_pid"

run_bench remoted "$tmp/remoted.out" \
        LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" VGPU_SOCKET="$sock" \
        VGPU_UUID="$uuid"
rc=$?
if [ $rc -ne 0 ]; then
        sed 's/^/  vgpud: /' "$tmp/vgpud.err"
        fail "remoted run exited with status $rc"
fi

if ! "$ctl" --socket "$sock" destroy "$uuid" >"$tmp/destroy.out" 2>&1; then
        sed 's/^/  vgpuctl: /' "$tmp/destroy.out"
        fail "vgpuctl destroy $uuid"
fi
uuid=""
kill -0 "$vgpud_pid" 2>/dev/null || fail "vgpud died during the run"

# The comparison: every metric of the native run, against the remoted run's, ratio remoted/native.
for l in native remoted; do
        sed -n "s/^BENCH gpu_${l}_\([^ ]*\) \([^ ]*\) \([^ ]*\)\$/\1 \2 \3/p" "$tmp/$l.out" \
                >"$tmp/$l.tsv"
done
echo
echo "=== native against remoted ($vtype), ratio = remoted / native"
awk '
NR == FNR { rem[$1] = $2; next }
function goal(m) {
        if (m == "launch_us") return "<= 1.10"
        if (m ~ /^(htod|dtoh)_/) return ">= 0.95"
        if (m == "matmul_ms") return "<= 1.02"
        return ""
}
BEGIN { printf "%-24s %14s %14s %-10s %8s  %s\n", "metric", "native", "remoted", "unit", "ratio", "goal" }
{
        m = $1; r = "n/a"; verdict = ""; g = goal(m)
        if ((m in rem) && $2 > 0) {
                x = rem[m] / $2
                r = sprintf("%.3f", x)
                ratios[++n] = m " " r
                if (g != "") {
                        lim = substr(g, 4) + 0
                        ok = (substr(g, 1, 2) == "<=") ? x <= lim : x >= lim
                        verdict = ok ? "PASS" : "MISS"
                        if (ok) pass++; else miss++
                }
        } else if (g != "") {
                verdict = "MISS"; miss++
        }
        printf "%-24s %14.6g %14s %-10s %8s  %s\n", m, $2, ((m in rem) ? sprintf("%.6g", rem[m]) : "-"),
               $3, r, (g != "" ? g " " verdict : "")
}
END {
        printf "goals: %d PASS, %d MISS (launch cost <= 1.1x, pinned bandwidth >= 0.95x, " \
               "matmul time within 2 %%)\n\n", pass, miss
        for (i = 1; i <= n; i++) {
                split(ratios[i], f, " ")
                printf "BENCH gpu_%s_ratio %s x\n", f[1], f[2]
        }
}' "$tmp/remoted.tsv" "$tmp/native.tsv"
