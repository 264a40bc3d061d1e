#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vgpuctl against a real vgpud (sim backend, an H100-80GB and an A100-40GB): every command, in text
# (the nvidia-smi layouts) and JSON (the API's documents), and every error path, each of which must
# be one line on stderr, nothing on stdout and exit status 1. Then vgpuctl against a fake server
# that answers badly: it must say so in one line, never crash.
set -euo pipefail
ctl="$VGPU_BUILD/bin/vgpuctl"
vgpud="$VGPU_BUILD/bin/vgpud"
tmp=$(mktemp -d)
pid=
fake=
cleanup() {
        local rc=$?
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
        if [ -n "$fake" ]; then kill "$fake" 2>/dev/null && wait "$fake" 2>/dev/null || true; fi
        # Engines outlive vgpud by design: stop any this test left.
        for s in "$tmp"/state/engines/*.sock; do
                [ -S "$s" ] && python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1]); s.sendall(b"{\"op\":\"stop\"}\n"); s.recv(64)' "$s" 2>/dev/null || true
        done
        rm -rf "$tmp"
        return $rc
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*" >&2
        if [ -s "$tmp/vgpud.err" ]; then
                echo "--- vgpud's log:" >&2
                tail -n 20 "$tmp/vgpud.err" >&2
        fi
        exit 1
}
export VGPU_SOCKET="$tmp/vgpud.sock"

# ---- start vgpud and wait for READY -----------------------------------------------------------
"$vgpud" --backend sim --sim-gpus H100-80GB,A100-40GB --state "$tmp/state" --socket "$VGPU_SOCKET" \
        --admin-group "$(id -gn)" --foreground >"$tmp/vgpud.out" 2>"$tmp/vgpud.err" &
pid=$!
for _ in $(seq 200); do
        grep -qx READY "$tmp/vgpud.out" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || fail "vgpud exited before it was ready"
        sleep 0.05
done
grep -qx READY "$tmp/vgpud.out" || fail "vgpud not ready after 10 s"

# ---- helpers ----------------------------------------------------------------------------------
# ok ARGS...: vgpuctl succeeds, stdout in $tmp/out, stderr empty.
ok() {
        local rc=0
        "$ctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [ "$rc" = 0 ] || fail "vgpuctl $*: exit $rc: $(cat "$tmp/err")"
        [ -s "$tmp/err" ] && fail "vgpuctl $* wrote to stderr: $(cat "$tmp/err")"
        return 0
}
# expect_err PATTERN ARGS...: exit 1, stdout empty, exactly one line on stderr matching PATTERN.
expect_err() {
        local pattern=$1 rc=0
        shift
        "$ctl" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
        [ "$rc" = 1 ] || fail "vgpuctl $*: exit $rc, want 1 (stderr: $(cat "$tmp/err"))"
        [ -s "$tmp/out" ] && fail "vgpuctl $*: stdout not empty: $(head -3 "$tmp/out")"
        [ "$(wc -l <"$tmp/err")" = 1 ] || fail "vgpuctl $*: not one line: $(cat "$tmp/err")"
        grep -q "^vgpuctl: " "$tmp/err" || fail "vgpuctl $*: no 'vgpuctl: ' prefix: $(cat "$tmp/err")"
        grep -Eq -- "$pattern" "$tmp/err" || fail "vgpuctl $*: message '$(cat "$tmp/err")' lacks /$pattern/"
}
has() { grep -Eq -- "$1" "$tmp/out" || fail "${2:-output} lacks /$1/: $(cat "$tmp/out")"; }
# py EXPR-SCRIPT: run python on the JSON in $tmp/out.
py() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); $1" || fail "JSON check: $1"; }
# Every "label : value" line has its colon in column 38.
colon38() {
        awk '/ : /{ if (index($0, " : ") + 1 != 38) { print "colon at " index($0, " : ") + 1 ": " $0; bad = 1 } } END { exit bad }' \
                "$tmp/out" || fail "colon column in $1"
}
# Every line of the box has the same width.
box_even() {
        [ "$(grep -E '^[|+]' "$tmp/out" | awk '{ print length($0) }' | sort -u | wc -l)" = 1 ] ||
                fail "box widths of $1: $(cat "$tmp/out")"
}
# The raw API document for GET PATH, for comparing with --json.
raw_get() {
        python3 - "$VGPU_SOCKET" "$1" <<'EOF'
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
c = C("localhost")
c.request("GET", sys.argv[2])
r = c.getresponse()
print(json.dumps(json.loads(r.read()), sort_keys=True))
EOF
}
same_as_api() {
        python3 -c "import json,sys; print(json.dumps(json.load(open('$tmp/out')), sort_keys=True))" \
                >"$tmp/a"
        raw_get "$1" >"$tmp/b"
        cmp -s "$tmp/a" "$tmp/b" || fail "--json differs from GET $1"
}
uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# ---- no daemon, bad global use ------------------------------------------------------------------
expect_err "cannot reach vgpud at $tmp/nope.sock: .*is vgpud running\\? --socket PATH" \
        --socket "$tmp/nope.sock" gpus
VGPU_SOCKET="$tmp/nope.sock" expect_err "cannot reach vgpud at $tmp/nope.sock" list
expect_err "unknown command 'frob'" frob
expect_err "unknown option '--frob'" --frob gpus

# ---- gpus -------------------------------------------------------------------------------------
ok gpus
has '^GPU +Bus-Id +Model +Mode '
has '^ +0 +[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.0 +H100-80GB +homogeneous +0/81920 MiB +0 +0 +GPU-'
has '^ +1 +[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.0 +A100-40GB +homogeneous +0/40960 MiB '
ok --json gpus
py 'g = d["gpus"]; assert [x["model"] for x in g] == ["H100-80GB", "A100-40GB"]; assert all(x["backend"] == "sim" and x["mode"] == "homogeneous" for x in g)'
same_as_api /v1/gpus
gpu1_uuid=$(python3 -c "import json; print(json.load(open('$tmp/out'))['gpus'][1]['uuid'])")
ok gpus 1
has ' A100-40GB '
[ "$(grep -c H100 "$tmp/out")" = 0 ] || fail "gpus 1 shows GPU 0"
ok gpus "$gpu1_uuid" --json
py 'assert d["id"] == 1 and d["model"] == "A100-40GB"'
expect_err "no GPU '7'" gpus 7
expect_err "no GPU 'GPU-nope'" gpus --gpu GPU-nope
expect_err "unexpected argument 'x'" gpus 0 x

# ---- types (vgpud's) ----------------------------------------------------------------------------
ok types
has '^GPU [0-9A-F]{8}:'
has 'Name +: NVIDIA H100-20C$'
has 'Name +: NVIDIA H100-3-40C$'
has 'Creatable +: Yes$'
has 'Creatable Placements +: 0, 1, 2, 3$'
colon38 "types"
ok types -s --gpu 1
has 'Name +: NVIDIA A100-10C$'
grep -q H100 "$tmp/out" && fail "types --gpu 1 lists H100 types"
ok --json types -c --gpu 0
py 'assert d["gpu"] == 0 and d["model"] == "H100-80GB" and d["mode"] == "homogeneous"; t = {x["name"]: x for x in d["types"]}; assert all(x["creatable"] for x in d["types"]); assert "H100-20C" in t and "H100-3-40C" not in t; assert t["H100-20C"]["placements"] == [{"gpu_instance": None, "placement": p} for p in range(4)]'
same_as_api "/v1/types?gpu=0&creatable=1"
ok types --json --gpu "$gpu1_uuid"
py 'assert d["gpu"] == 1 and d["model"] == "A100-40GB"'
# The catalog, no daemon needed, still works.
ok types --model H100-80GB --mig
has '\| GPU instance profiles: '
expect_err "give -s \\(supported\\) or -c" types -s -c
expect_err "--model reads the catalog" types --model H100-80GB --gpu 0
expect_err "no GPU '9'" types --gpu 9
expect_err "unknown option or missing argument" types --frob

# ---- create -------------------------------------------------------------------------------------
ok create --gpu 0 --type H100-20C
grep -Eq "$uuid_re" "$tmp/out" || fail "create printed '$(cat "$tmp/out")', not a UUID"
v1=$(cat "$tmp/out")
ok --json create --gpu 0 --type NVIDIA\ H100-20C --owner 1000 --placement 3
py 'assert d["type"] == "H100-20C" and d["gpu"] == 0 and d["owner_uid"] == 1000 and d["placement"] == 3 and d["state"] == "running" and d["fb_mib"] == 20480 and d["gpu_instance"] is None and d["class"] == "time-sliced"'
v2=$(python3 -c "import json; print(json.load(open('$tmp/out'))['uuid'])")
fixed=0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c
ok create --type H100-20C --uuid "$fixed"
[ "$(cat "$tmp/out")" = "$fixed" ] || fail "create --uuid printed $(cat "$tmp/out")"
expect_err "already exists" create --gpu 0 --type H100-20C --uuid "$fixed"
expect_err "'uuid' must be a UUID" create --gpu 0 --type H100-20C --uuid not-a-uuid
expect_err "placement 3 .* overlaps" create --gpu 0 --type H100-20C --placement 3
expect_err "placement 9 is not valid for H100-20C" create --gpu 0 --type H100-20C --placement 9
expect_err "homogeneous mode and holds H100-20C" create --gpu 0 --type H100-10C
expect_err "has no vGPU type 'H100-99C'" create --gpu 0 --type H100-99C
expect_err "has no vGPU type 'A100-10C'" create --gpu 0 --type A100-10C
expect_err "MIG-backed and GPU 0 is in homogeneous mode" create --gpu 0 --type H100-3-40C
expect_err "no GPU '5'" create --gpu 5 --type H100-20C
expect_err "give --type NAME" create --gpu 0
expect_err "--placement takes a number" create --type H100-20C --placement -1
expect_err "--owner takes a number" create --type H100-20C --owner abc
expect_err "unexpected argument 'extra'" create --type H100-20C extra
ok create --gpu 0 --type H100-20C
v4=$(cat "$tmp/out")
# Four 20C fill 80 GB: a fifth is refused (max instances or no space).
expect_err "(most H100-20C vGPUs|no free framebuffer)" create --gpu 0 --type H100-20C
ok create --gpu "$gpu1_uuid" --type A100-40C
va=$(cat "$tmp/out")
expect_err "(most A100-40C|no free framebuffer)" create --gpu 1 --type A100-40C

# ---- list ---------------------------------------------------------------------------------------
ok list
has '^\| VGPUD [0-9]'
has '^\| GPU  Name                       \| Bus-Id                       \| GPU-Util   \|$'
has '^\|      vGPU ID     Name           \| VM ID     VM Name            \| vGPU-Util  \|$'
has '^\|   0  NVIDIA H100 80GB PCIe +\| [0-9A-F]{8}:'
has "^\\|      ${v1:0:8}    NVIDIA H100-20C\\| [0-9]+ +running, 0 guests +\\|"
has "^\\|      ${va:0:8}    NVIDIA A100-40C\\| "
box_even "list"
[ "$(grep -c 'NVIDIA H100-20C|' "$tmp/out")" = 4 ] || fail "list shows $(grep -c 'NVIDIA H100-20C|' "$tmp/out") H100-20C rows"
# vGPU rows follow their GPU's row.
awk '/^\|   0 /{g=0} /^\|   1 /{g=1} /A100-40C\|/{ if (g != 1) exit 1 } /H100-20C\|/{ if (g != 0) exit 1 }' \
        "$tmp/out" || fail "vGPU rows under the wrong GPU"
ok list --gpu 1
[ "$(grep -c 'H100' "$tmp/out")" = 0 ] || fail "list --gpu 1 shows GPU 0"
ok --json list
py 'assert len(d["vgpus"]) == 5'
same_as_api /v1/vgpus
ok --json list --gpu 1
py 'assert [v["type"] for v in d["vgpus"]] == ["A100-40C"]'
expect_err "no GPU '3'" list --gpu 3

# ---- query --------------------------------------------------------------------------------------
ok query
has '^GPU [0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.0$'
has '^    Active vGPUs                     : 4$'
has '^    Active vGPUs                     : 1$'
has "^    vGPU ID                          : ${v1:0:8}\$"
has "^        vGPU UUID                    : $v1\$"
has '^        vGPU Name                    : NVIDIA H100-20C$'
has '^        vGPU Type                    : [0-9]+$'
has '^        GPU Instance ID              : N/A$'
has '^        License Status               : Not Required \(licensing off\)$'
has '^        FB Memory Usage$'
has '^            Total                    : 20480 MiB$'
has '^            Used                     : 0 MiB$'
has '^            Free                     : 20480 MiB$'
colon38 "query"
ok query "$v2"
[ "$(grep -c 'vGPU UUID' "$tmp/out")" = 1 ] || fail "query UUID shows other vGPUs"
has "vGPU UUID +: $v2\$"
has '^    Active vGPUs                     : 4$'
has '^        Owner UID                    : 1000$'
has '^        Placement ID                 : 3$'
colon38 "query UUID"
ok --json query "$v2"
py 'assert d["uuid"] == "'"$v2"'" and d["owner_uid"] == 1000'
same_as_api "/v1/vgpus/$v2"
expect_err "no vGPU '00000000-0000-4000-8000-000000000000'" query 00000000-0000-4000-8000-000000000000
expect_err "no vGPU 'bogus'" query bogus

# ---- mode ---------------------------------------------------------------------------------------
ok mode
has '^GPU 0 \([0-9A-F]{8}:.*\): homogeneous$'
has '^GPU 1 \(.*\): homogeneous$'
expect_err "GPU 0 still has vGPUs or GPU instances" mode --gpu 0 heterogeneous
expect_err "'mode' must be" mode --gpu 1 sideways
expect_err "give --gpu ID" mode mig
expect_err "no GPU '4'" mode --gpu 4 mig

# ---- destroy ------------------------------------------------------------------------------------
ok destroy "$v1"
has "^Successfully destroyed vGPU $v1\$"
expect_err "no vGPU '$v1'" destroy "$v1"
expect_err "give the UUID" destroy
ok destroy --force "$v2"
ok --json destroy "$fixed" "$v4"
[ -s "$tmp/out" ] && fail "--json destroy printed something"
ok destroy "$va"
ok --json list
py 'assert d["vgpus"] == []'
ok list
has '^\|   0  NVIDIA H100 80GB PCIe'
grep -q 'running' "$tmp/out" && fail "list still shows vGPUs"

# ---- heterogeneous ------------------------------------------------------------------------------
ok mode --gpu 0 heterogeneous
has '^GPU 0 \(.*\) is now in heterogeneous mode$'
ok --json mode --gpu 0
py 'assert d["mode"] == "heterogeneous"'
ok create --gpu 0 --type H100-40C --placement 8
h1=$(cat "$tmp/out")
ok create --gpu 0 --type H100-10C --placement 2
ok create --gpu 0 --type H100-5C
ok --json types -c --gpu 0
py 't = {x["name"]: x for x in d["types"]}; assert "H100-40C" not in t and "H100-20C" in t; assert {"gpu_instance": None, "placement": 4} in t["H100-20C"]["placements"]'
expect_err "placement 2 is not valid for H100-20C" create --gpu 0 --type H100-20C --placement 2
expect_err "placement 8 for H100-20C on GPU 0 overlaps" create --gpu 0 --type H100-20C --placement 8
expect_err "no free framebuffer placement for H100-40C" create --gpu 0 --type H100-40C
ok --json list --gpu 0
py 'assert sorted(v["type"] for v in d["vgpus"]) == ["H100-10C", "H100-40C", "H100-5C"]'
uuids=$(python3 -c "import json; print(' '.join(v['uuid'] for v in json.load(open('$tmp/out'))['vgpus']))")
# shellcheck disable=SC2086
ok destroy $uuids
expect_err "no vGPU '$h1'" query "$h1"

# ---- MIG ----------------------------------------------------------------------------------------
expect_err "GPU 0 is in heterogeneous mode; switch it to MIG" mig --gpu 0 -cgi 9
ok mode --gpu 0 mig
ok mig -lgip
has '\| GPU instance profiles: '
has '^\|   0   MIG 1g.10gb +19 +7/7 '
has '^\|   0   MIG 3g.40gb +9 +2/2 '
box_even "mig -lgip"
ok mig --gpu 0 -lgipp
has '^GPU  0 Profile ID  9 Placements: \{0,4\}:4$'
has '^GPU  0 Profile ID 19 Placements: \{0,1,2,3,4,5,6\}:1$'
ok --json mig -lgip
py 'p = {x["name"]: x for x in d["profiles"]}; assert d["gpu"] == 0 and p["3g.40gb"]["instances_free"] == 2 and p["3g.40gb"]["placements"] == {"starts": [0, 4], "size": 4}'
same_as_api /v1/gpus/0/gpu-instance-profiles
ok mig -lgi
has '^No GPU instances found$'
ok mig -cgi 9
has '^Successfully created GPU instance ID  1 on GPU  0 using profile MIG 3g.40gb \(ID  9\)$'
ok --json mig -cgi 3g.40gb --start 4
py 'assert d["profile"] == "3g.40gb" and d["profile_id"] == 9 and d["start"] == 4 and d["size"] == 4 and d["gpu"] == 0 and d["implicit"] is False'
gi2=$(python3 -c "import json; print(json.load(open('$tmp/out'))['id'])")
expect_err "(most 3g.40gb|no room for a 3g.40gb)" mig -cgi 9
expect_err "no room for a 1g.10gb" mig -cgi 1g.10gb
ok mig -lgi
has '\| GPU instances: '
has '^\| GPU   Name +Profile +Instance +Placement +\|$'
has '^\|   0   MIG 3g.40gb +9 +1 +0:4 +\|$'
has "^\\|   0   MIG 3g.40gb +9 +$gi2 +4:4 +\\|\$"
box_even "mig -lgi"
ok --json mig -lgi
py 'assert sorted(g["start"] for g in d["gpu_instances"]) == [0, 4]'
same_as_api /v1/gpus/0/gpu-instances
ok mig -lgip
has '^\|   0   MIG 3g.40gb +9 +0/2 '
# Time-sliced vGPUs inside GPU instance 1, and a MIG-backed one in the other.
ok create --gpu 0 --type H100-20C --gpu-instance 1
ok --json create --gpu 0 --type H100-20C --gpu-instance 1
py 'assert d["gpu_instance"] == 1'
expect_err "most H100-20C vGPUs|no free framebuffer" create --gpu 0 --type H100-20C --gpu-instance 1
expect_err "H100-2-20C does not fit GPU instance $gi2's profile" create --gpu 0 --type H100-2-20C --gpu-instance "$gi2"
expect_err "GPU 0 has no GPU instance 6" create --gpu 0 --type H100-3-40C --gpu-instance 6
ok create --gpu 0 --type H100-3-40C --gpu-instance "$gi2"
vm=$(cat "$tmp/out")
ok query "$vm"
has "^        GPU Instance ID              : $gi2\$"
has '^        vGPU Name                    : NVIDIA H100-3-40C$'
expect_err "GPU instance 1 still holds vGPUs" mig -dgi 1
expect_err "GPU 0 has no GPU instance '9'" mig -dgi 9
expect_err "-dgi takes a GPU instance ID" mig -dgi x
expect_err "has no GPU instance profile 5g.50gb" mig -cgi 5g.50gb
expect_err "has no GPU instance profile with that ID" mig -cgi 77
expect_err "--start goes with -cgi" mig -lgi --start 4
expect_err "give one of -lgip" mig
expect_err "give one of -lgip" mig -lgip -lgi
expect_err "no GPU '8'" mig --gpu 8 -lgi
expect_err "in homogeneous mode; switch it to MIG" mig --gpu 1 -cgi 9
expect_err "GPU 0 still has vGPUs or GPU instances" mode --gpu 0 homogeneous
ok --json list --gpu 0
uuids=$(python3 -c "import json; print(' '.join(v['uuid'] for v in json.load(open('$tmp/out'))['vgpus']))")
# shellcheck disable=SC2086
ok destroy $uuids
ok mig -dgi 1
has '^Successfully destroyed GPU instance ID  1 from GPU  0$'
ok mig -dgi "$gi2"
expect_err "GPU 0 has no GPU instance '1'" mig -dgi 1
# GPU instance IDs are the lowest free from 1 (docs/placement.md), also after a destroy.
for _ in 1 2; do
        ok mig -cgi 19
        has '^Successfully created GPU instance ID  1 on GPU  0 using profile MIG 1g.10gb \(ID 19\)$'
        ok mig -dgi 1
done
# A MIG-backed vGPU without a GPU instance gets an implicit one, destroyed with it.
ok --json create --gpu 0 --type H100-1-10C
py 'assert d["gpu_instance"] is not None and d["class"] == "mig-backed"'
vi=$(python3 -c "import json; print(json.load(open('$tmp/out'))['uuid'])")
ok --json mig -lgi
py 'assert len(d["gpu_instances"]) == 1 and d["gpu_instances"][0]["implicit"] is True'
ok destroy "$vi"
ok mig -lgi
has '^No GPU instances found$'
ok mode --gpu 0 homogeneous

# ---- a faulted vGPU: its engine dies, vgpuctl shows it faulted, and restart brings it back ----
ok --json create --gpu 0 --type H100-20C
vr=$(python3 -c "import json; print(json.load(open('$tmp/out'))['uuid'])")
epid=$(python3 -c "import json; print(json.load(open('$tmp/out'))['engine_pid'])")
expect_err "only a faulted vGPU restarts" restart "$vr"
kill -9 "$epid"
for _ in $(seq 100); do
        "$ctl" --json query "$vr" 2>/dev/null | grep -q '"faulted"' && break
        sleep 0.05
done
ok list
has 'faulted'
ok restart "$vr"
has "^Restarted vGPU $vr: engine [0-9]+\$"
expect_err "usage: vgpuctl restart UUID" restart
expect_err "no vGPU" restart 0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c
ok destroy "$vr"

# ---- access: a user who may connect but is not in the admin group gets FORBIDDEN ---------------
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && getent group nogroup >/dev/null &&
        getent passwd nobody >/dev/null; then
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        chmod 755 "$tmp"
        rm -f "$tmp/vgpud.out" # else the wait below may see the previous vgpud's READY
        "$vgpud" --backend sim --sim-gpus H100-80GB --state "$tmp/state2" --socket "$VGPU_SOCKET" \
                --admin-group root --socket-group nogroup --foreground >"$tmp/vgpud.out" \
                2>"$tmp/vgpud.err" &
        pid=$!
        for _ in $(seq 200); do
                grep -qx READY "$tmp/vgpud.out" 2>/dev/null && break
                sleep 0.05
        done
        nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$ctl" "$@"; }
        nob gpus >"$tmp/out" 2>"$tmp/err" || fail "nobody cannot read: $(cat "$tmp/err")"
        rc=0
        nob create --type H100-20C >"$tmp/out" 2>"$tmp/err" || rc=$?
        if [ "$rc" != 1 ] || ! grep -q "^vgpuctl: changing vgpu needs root or the admin group" "$tmp/err"; then
                fail "nobody's create: exit $rc, $(cat "$tmp/err")"
        fi
fi

# ---- a server that answers badly: one line, exit 1, never a crash -------------------------------
python3 - "$tmp/fake.sock" <<'EOF' &
import os, socket, sys, time
def j(body, status="200 OK"):
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(), len(body), body)
replies = {
    "/v1/gpus": j(b'{"gpus": []}'),
    "/v1/health": j(b'{"status": "ok", "version": "x", "backend": "fake"}'),
    # Chunked, with a bare LF inside the data: de-chunked it is {"vgpus": []}.
    "/v1/vgpus": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"vgpus\": [\r\n3\r\n]}\n\r\n0\r\n\r\n",
    "/v1/gpus/0": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"id\"",    # cut short
    "/v1/gpus/1": j(b'{"id": "one", "uuid": 1}'),                               # wrong types
    "/v1/gpus/2": b"garbage\r\n\r\n",                                            # not HTTP
    "/v1/gpus/3": j(b"[]", "500 Internal Server Error"),                         # no message
    "/v1/gpus/4": j(b'{"error": {"code": "NOT_FOUND", "message": "gone \\u001b[31mred"}}',
                    "404 Not Found"),                                            # escape codes
    "/v1/gpus/5": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    "/v1/gpus/6": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "/v1/gpus/7": b"",                                                           # closed
    "/v1/gpus/8": j(b"null"),
}
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
while True:
    c, _ = s.accept()
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = c.recv(4096)
        if not chunk:
            break
        req += chunk
    try:
        path = req.split(b" ")[1].decode().split("?")[0]
    except IndexError:
        path = ""
    c.sendall(replies.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    c.close()
EOF
fake=$!
for _ in $(seq 100); do [ -S "$tmp/fake.sock" ] && break; sleep 0.05; done
export VGPU_SOCKET="$tmp/fake.sock"
ok list
[ "$(cat "$tmp/out")" = "No supported devices in vGPU mode" ] || fail "empty list: $(cat "$tmp/out")"
ok query
[ "$(cat "$tmp/out")" = "No supported devices in vGPU mode" ] || fail "empty query: $(cat "$tmp/out")"
ok --json list
py 'assert d == {"vgpus": []}'
expect_err "malformed HTTP response" gpus 0
expect_err "malformed GPU object" gpus 1
expect_err "malformed HTTP response" gpus 2
expect_err "vgpud answered GET /v1/gpus/3 with HTTP 500" gpus 3
expect_err "^vgpuctl: gone \\?\\[31mred$" gpus 4
expect_err "larger than vgpuctl accepts" gpus 5
expect_err "malformed HTTP response" gpus 6
expect_err "malformed HTTP response" gpus 7
expect_err "sent no JSON object" gpus 8
echo "vgpud_ctl: ok"
