#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# vgpud's control API over raw HTTP: every route, every validation error, the placement rules as
# the API shows them, engines holding exactly the reserved framebuffer, access control, and
# durability across a restart.
import os
import shutil
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import Vgpud, engine_args, engine_pids, wait_for  # noqa: E402

D = None
GIB = 1 << 30


def err(status, body, want_status, want_code=None, want_msg=None):
    assert status == want_status, (status, body)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if want_code:
        assert body["error"]["code"] == want_code, body
    if want_msg:
        assert want_msg in body["error"]["message"], body


def create(**kw):
    s, b = D.call("POST", "/v1/vgpus", kw)
    assert s == 201, (s, b)
    return b


def destroy_all():
    s, b = D.call("GET", "/v1/vgpus")
    for v in b["vgpus"]:
        s2, _ = D.call("DELETE", "/v1/vgpus/" + v["uuid"])
        assert s2 == 204
    for g in D.call("GET", "/v1/gpus")[1]["gpus"]:
        for gi in g["gpu_instances"]:
            assert D.call("DELETE", "/v1/gpus/%d/gpu-instances/%d" % (g["id"], gi["id"]))[0] == 204
        assert D.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "homogeneous"})[0] == 200


def test_health_and_gpus():
    s, b = D.call("GET", "/v1/health")
    assert s == 200 and b["status"] == "ok" and b["backend"] == "sim"
    s, b = D.call("GET", "/v1/gpus")
    assert s == 200 and [g["model"] for g in b["gpus"]] == ["H100-80GB", "A100-40GB"]
    g = b["gpus"][0]
    assert g["fb_total_mib"] == 81920 and g["fb_free_mib"] == 81920 and g["mode"] == "homogeneous"
    assert g["uuid"].startswith("GPU-")
    assert D.call("GET", "/v1/gpus/1")[1]["model"] == "A100-40GB"
    assert D.call("GET", "/v1/gpus/" + g["uuid"])[1]["id"] == 0
    err(*D.call("GET", "/v1/gpus/2"), 404, "NOT_FOUND")
    err(*D.call("GET", "/v1/gpus/-1"), 404)
    err(*D.call("GET", "/v1/gpus/0x0"), 404)


def test_routes():
    err(*D.call("GET", "/"), 404, "NOT_FOUND")
    err(*D.call("GET", "/v2/gpus"), 404)
    err(*D.call("GET", "/v1/nothing"), 404)
    err(*D.call("GET", "/v1/gpus/0/nothing"), 404)
    err(*D.call("GET", "/v1/" + "a/" * 20), 404)
    err(*D.call("DELETE", "/v1/gpus"), 405, "METHOD_NOT_ALLOWED")
    err(*D.call("PATCH", "/v1/vgpus"), 405)
    err(*D.call("POST", "/v1/health"), 405)
    err(*D.call("GET", "/v1/gpus/0/mode"), 405)
    err(*D.call("GET", "/v1/vgpus/not-a-uuid"), 404, "VGPU_ENO_VGPU")
    err(*D.call("DELETE", "/v1/vgpus/0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c"), 404)


def test_bad_bodies():
    err(*D.call("POST", "/v1/vgpus", raw=b""), 400, "BAD_REQUEST", "body is required")
    err(*D.call("POST", "/v1/vgpus", raw=b"{"), 400, "BAD_REQUEST", "malformed JSON")
    err(*D.call("POST", "/v1/vgpus", raw=b'{"type":"H100-20C","type":"H100-10C"}'), 400)
    err(*D.call("POST", "/v1/vgpus", raw=b"[1,2]"), 400, want_msg="JSON object")
    err(*D.call("POST", "/v1/vgpus", raw=b"\xff\xfe"), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "colour": "red"}), 400,
        want_msg="unknown field 'colour'")
    err(*D.call("POST", "/v1/vgpus", {}), 400, want_msg="'type' is required")
    err(*D.call("POST", "/v1/vgpus", {"type": 7}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "gpu": [0]}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "gpu": -1}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "placement": "1"}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "placement": -2}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "placement": 1.5}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "placement": 2**40}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "owner_uid": 2**32}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "uuid": 5}), 400)
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "uuid": "xyz"}), 400,
        want_msg="must be a UUID")
    err(*D.call("POST", "/v1/vgpus", raw=b'{"type":"' + b"A" * 70000 + b'"}'), 413,
        "PAYLOAD_TOO_LARGE")
    err(*D.call("PUT", "/v1/gpus/0/mode", {"mode": "sideways"}), 400)
    err(*D.call("PUT", "/v1/gpus/0/mode", {"mode": 1}), 400)
    err(*D.call("GET", "/v1/types?gpu=0&creatable=yes"), 400)
    err(*D.call("GET", "/v1/types?gpu=9"), 404)
    # Nothing was created by any of that.
    assert D.call("GET", "/v1/vgpus")[1]["vgpus"] == []
    assert not engine_pids_of(D)


def engine_pids_of(d):
    return [p for p in engine_pids() if d.state in engine_args(p).get("control", "")]


def test_homogeneous_and_engines():
    v = create(type="H100-20C", owner_uid=1234)
    assert v["gpu"] == 0 and v["placement"] == 0 and v["state"] == "running"
    assert v["fb_size"] == 20 * GIB and v["owner_uid"] == 1234 and v["class"] == "time-sliced"
    # The engine holds exactly this vGPU's framebuffer at its device address.
    pids = engine_pids_of(D)
    assert pids == [v["engine_pid"]], (pids, v)
    a = engine_args(v["engine_pid"])
    assert int(a["fb-size"]) == v["fb_size"] and int(a["device-address"], 0) == v["device_address"]
    with open("/proc/%d/maps" % v["engine_pid"]) as f:
        maps = f.read()
    assert ("%x-%x" % (v["device_address"], v["device_address"] + v["fb_size"])) in maps, maps
    # Equal-size: one type per GPU, at most 4 x 20C.
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-10C"}), 409, "VGPU_ETYPE_MIX", "homogeneous")
    for i in range(3):
        create(type="H100-20C")
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C"}), 422, "VGPU_EMAX_INSTANCES")
    s, g = D.call("GET", "/v1/gpus/0")
    assert g["fb_used_mib"] == 81920 and g["fb_free_mib"] == 0 and len(g["vgpus"]) == 4
    err(*D.call("PUT", "/v1/gpus/0/mode", {"mode": "mig"}), 409, "VGPU_EGPU_BUSY")
    # A UUID given by the client, and its duplicate.
    destroy_all()
    u = "0B6D4F3E-2C1A-4F5E-9D8C-7B6A5F4E3D2C"
    v = create(type="H100-16C", uuid=u, placement=3)
    assert v["uuid"] == u.lower() and v["placement"] == 3 and v["fb_offset"] == 48 * GIB
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-16C", "uuid": u}), 409, "VGPU_EEXIST")
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-16C", "placement": 3}), 409,
        "VGPU_EPLACEMENT_BUSY")
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-16C", "placement": 5}), 422,
        "VGPU_EPLACEMENT")
    assert D.call("GET", "/v1/vgpus/" + u)[1]["uuid"] == u.lower()
    assert D.call("DELETE", "/v1/vgpus/" + u)[0] == 204
    assert wait_for(lambda: not engine_pids_of(D))
    assert os.listdir(os.path.join(D.state, "engines")) == []
    err(*D.call("POST", "/v1/vgpus", {"type": "A100-20C"}), 422, "VGPU_EUNKNOWN_TYPE",
        "vgpuctl types")
    v = create(type="A100-20C", gpu=1)
    assert v["gpu"] == 1 and v["device_address"] == 0x200000000000 + 0x10000000000
    destroy_all()


def test_heterogeneous():
    assert D.call("PUT", "/v1/gpus/0/mode", {"mode": "heterogeneous"})[0] == 200
    a = create(type="H100-5C")
    b = create(type="H100-40C")
    c = create(type="H100-10C")
    assert (a["placement"], b["placement"], c["placement"]) == (0, 8, 2)
    s, t = D.call("GET", "/v1/types?gpu=0&creatable=1")
    names = {x["name"]: x for x in t["types"]}
    assert "H100-40C" not in names and "H100-20C" in names and t["mode"] == "heterogeneous"
    assert {p["placement"] for p in names["H100-20C"]["placements"]} == {4}
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-20C", "placement": 6}), 422,
        "VGPU_EPLACEMENT")
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-1-10C"}), 422, "VGPU_EMODE", "MIG-backed")
    destroy_all()


def test_mig():
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "3g.40gb"}), 422, "VGPU_EMODE")
    assert D.call("PUT", "/v1/gpus/0/mode", {"mode": "mig"})[0] == 200
    s, p = D.call("GET", "/v1/gpus/0/gpu-instance-profiles")
    prof = {x["name"]: x for x in p["profiles"]}
    assert prof["1g.10gb"]["instances_free"] == 7 and prof["3g.40gb"]["free_starts"] == [0, 4]
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-10C"}), 422, "VGPU_ENO_GI", "-cgi")
    s, gi = D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "3g.40gb", "start": 4})
    assert s == 201 and gi["id"] == 1 and gi["start"] == 4 and not gi["implicit"]
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": 9, "start": 4}), 409,
        "VGPU_EPLACEMENT_BUSY")
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "3g.40gb", "start": 2}), 422,
        "VGPU_EPLACEMENT")
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "9g.99gb"}), 422,
        "VGPU_EUNKNOWN_PROFILE")
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": [9]}), 400)
    err(*D.call("POST", "/v1/gpus/0/gpu-instances", {"profile": 9, "start": 99}), 400)
    # Four time-sliced H100-10C in the 3g.40gb instance, then full.
    vs = [create(type="H100-10C", gpu_instance=1) for _ in range(4)]
    assert [v["fb_offset"] for v in vs] == [(40 + 10 * i) * GIB for i in range(4)]
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-10C", "gpu_instance": 1}), 422,
        "VGPU_EMAX_INSTANCES")
    err(*D.call("POST", "/v1/vgpus", {"type": "H100-10C", "gpu_instance": 7}), 404, "VGPU_ENO_GI")
    err(*D.call("DELETE", "/v1/gpus/0/gpu-instances/1"), 409, "VGPU_EGI_BUSY")
    err(*D.call("DELETE", "/v1/gpus/0/gpu-instances/0"), 404)
    err(*D.call("DELETE", "/v1/gpus/0/gpu-instances/x"), 404)
    # A MIG-backed vGPU makes its own (implicit) instance at the free start.
    m = create(type="H100-4-40C")
    assert m["gpu_instance"] == 2 and m["placement"] == 0 and m["class"] == "mig-backed"
    gis = D.call("GET", "/v1/gpus/0/gpu-instances")[1]["gpu_instances"]
    assert [(g["id"], g["implicit"]) for g in gis] == [(1, False), (2, True)]
    assert D.call("DELETE", "/v1/vgpus/" + m["uuid"])[0] == 204
    assert [g["id"] for g in D.call("GET", "/v1/gpus/0/gpu-instances")[1]["gpu_instances"]] == [1]
    destroy_all()


def test_no_mig_model():
    d2 = Vgpud(gpus="L4").start()
    try:
        err(*d2.call("PUT", "/v1/gpus/0/mode", {"mode": "mig"}), 422, "VGPU_ENO_MIG")
    finally:
        d2.stop_all()
        shutil.rmtree(d2.tmp, ignore_errors=True)


def test_forbidden():
    """A caller outside the admin group may read but not change anything."""
    d2 = Vgpud(gpus="H100-80GB", extra=["--socket-group", "nogroup", "--admin-group", "root"])
    d2.start()
    try:
        os.chmod(d2.tmp, 0o755)
        st = os.stat(d2.sock)
        assert oct(st.st_mode & 0o777) == "0o660", oct(st.st_mode)
        def as_nobody(*args):
            return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                                   "--groups=65534", "curl", "-s", "-o", "/dev/null", "-w",
                                   "%{http_code}", "--unix-socket", d2.sock] + list(args),
                                  capture_output=True, text=True).stdout
        assert as_nobody("http://x/v1/gpus") == "200"
        assert as_nobody("-X", "POST", "-d", '{"type":"H100-20C"}', "http://x/v1/vgpus") == "403"
        assert as_nobody("-X", "PUT", "-d", '{"mode":"mig"}', "http://x/v1/gpus/0/mode") == "403"
        assert d2.call("GET", "/v1/vgpus")[1]["vgpus"] == []
    finally:
        d2.stop_all()
        shutil.rmtree(d2.tmp, ignore_errors=True)


def test_restart_keeps_state():
    assert D.call("PUT", "/v1/gpus/0/mode", {"mode": "heterogeneous"})[0] == 200
    a = create(type="H100-40C", placement=8)
    b = create(type="H100-5C", gpu=0)
    gpus_before = D.call("GET", "/v1/gpus")[1]
    D.kill()  # SIGKILL: engines keep running
    D.start()
    assert D.call("GET", "/v1/gpus")[1] == gpus_before
    for v in (a, b):
        s, now = D.call("GET", "/v1/vgpus/" + v["uuid"])
        assert s == 200 and now["engine_pid"] == v["engine_pid"] and now["state"] == "running"
    # An engine that dies leaves its vGPU faulted (an Xid-like event is logged) until restarted.
    err(*D.call("POST", "/v1/vgpus/%s/restart" % a["uuid"]), 409, "VGPU_EGPU_BUSY")
    os.kill(a["engine_pid"], 9)
    assert wait_for(lambda: D.call("GET", "/v1/vgpus/" + a["uuid"])[1]["state"] == "faulted")
    assert "Xid" in D.read_log()
    s, now = D.call("POST", "/v1/vgpus/%s/restart" % a["uuid"])
    assert s == 200 and now["state"] == "running" and now["placement"] == 8, now
    assert now["engine_pid"] not in (a["engine_pid"], 0)
    err(*D.call("POST", "/v1/vgpus/%s/restart" % "0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c"), 404)
    err(*D.call("GET", "/v1/vgpus/%s/restart" % a["uuid"]), 405)
    destroy_all()


def main():
    global D
    D = Vgpud().start()
    tests = [f for n, f in sorted(globals().items()) if n.startswith("test_")]
    passed = failed = 0
    try:
        for t in tests:
            try:
                t()
                passed += 1
                print("ok", t.__name__)
            except Exception:
                failed += 1
                print("FAIL", t.__name__)
                traceback.print_exc()
                try:
                    destroy_all()
                except Exception:
                    pass
    finally:
        D.stop_all()
        if failed:
            print(D.read_log()[-3000:])
        shutil.rmtree(D.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
