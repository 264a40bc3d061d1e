# SPDX-License-Identifier: Apache-2.0
# Suspend, resume and migration between GPUs on the sim (docs/migration.md), with guests that run
# a long computation and check their own results (tests/migration/mig_guest.c):
#  - suspend and resume many times mid-run, migrate between two GPUs and back (stop and copy,
#    and pre-copy), resume on the other GPU: the guest finishes with correct results and device addresses never change;
#  - while suspended the framebuffer's memory is released, new guests are refused, and a call
#    times out with CUDA_ERROR_TIMEOUT when VGPU_SUSPEND_TIMEOUT_MS says so;
#  - a corrupt, truncated or foreign image is refused and the vGPU stays suspended, intact;
#  - a migration the target refuses (no room) leaves the vGPU running where it was;
#  - a vgpud restart while suspended keeps the vGPU suspended; its resume still works;
#  - a suspended vGPU can be destroyed; bad requests get clear errors.
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
# With worker processes (the cuda backend's default) the workers track writes and report them.
PRECOPY = "precopy"
CTL = os.path.join(BUILD, "bin", "vgpuctl")
failures = []
vd = None
procs = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def vgpu(uuid):
    st, body = vd.call("GET", "/v1/vgpus/" + uuid)
    assert st == 200, (st, body)
    return body


def act(uuid, action, body=None):
    return vd.call("POST", "/v1/vgpus/%s/%s" % (uuid, action), body)


def engine(uuid, req):
    return vd.engine(uuid, req)


def guest(uuid, *args, env=None):
    e = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
             VGPU_UUID=uuid)
    e.update(env or {})
    p = subprocess.Popen([GUEST] + list(args), env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def finish(p, what, timeout=120):
    out = p.communicate(timeout=timeout)[0].decode(errors="replace")
    ok = p.returncode == 0 and "PASS" in out
    check(ok, "%s: the guest's computation is correct (%s)" % (what, out.strip().splitlines()[-2:]))
    return out


def ctl(*args):
    r = subprocess.run([CTL, "--socket", vd.sock] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def main():
    global vd
    vd = Vgpud(gpus="H100-80GB,H100-80GB,H200-141GB,A100-40GB").start()
    tmp = vd.tmp
    st, a = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, a)
    st, b = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, b)
    ua, ub = a["uuid"], b["uuid"]
    addr = a["device_address"]

    # --- many suspends, resumes and moves while the guest computes --------------------------
    ready = os.path.join(tmp, "ready")
    stop1 = os.path.join(tmp, "stop1")
    g = guest(ua, "--mib", "64", "--seconds", "1", "--until", stop1, "--ready", ready)
    other = guest(ub, "--mib", "8", "--seconds", "1", "--until", stop1)
    check(wait_for(lambda: os.path.exists(ready), 30), "the guest filled 64 MiB and runs")
    moves = 0
    for i in range(3):
        st, body = act(ua, "suspend")
        check(st == 200 and body["state"] == "suspended", "suspend %d: %s" % (i, st))
        if st != 200:
            print(body)
            break
        tr = body["transfer"]
        check(tr["data_bytes"] >= 64 << 20, "suspend %d saved the guest's data (%d bytes)"
              % (i, tr["data_bytes"]))
        check(os.path.exists(tr["image"]), "the image is on disk (%s)" % tr["image"])
        es = engine(ua, {"op": "status"})
        check(es["state"] == "suspended" and es["fb_resident"] == 0,
              "suspended: the framebuffer's memory is released (resident %d)" % es["fb_resident"])
        time.sleep(0.3)
        st, body = act(ua, "resume")
        check(st == 200 and body["state"] == "running" and body["gpu"] == 0,
              "resume %d on GPU 0: %s" % (i, st))
        check(not os.path.exists(tr["image"]), "the default image is removed after resume")
        time.sleep(0.2)
        st, body = act(ua, "migrate", {"gpu": 1})
        check(st == 200 and body["gpu"] == 1 and body["device_address"] == addr,
              "migrate %d to GPU 1 keeps the device address: %s" % (i, st))
        moves += st == 200
        time.sleep(0.2)
        st, body = act(ua, "migrate", {"gpu": 0, "precopy": True})
        check(st == 200 and body["gpu"] == 0 and body["transfer"]["mode"] == PRECOPY
              and body["transfer"]["rounds"] >= 1,
              "migrate %d back to GPU 0 with pre-copy: %s %s" % (i, st, body.get("transfer")))
        time.sleep(0.2)
    # suspended on GPU 0, resumed on GPU 1
    st, body = act(ua, "suspend")
    check(st == 200, "suspend before resuming elsewhere")
    st, body = act(ua, "resume", {"gpu": "1"})
    check(st == 200 and body["gpu"] == 1, "resume on GPU 1: %s" % st)
    open(stop1, "w").close()
    finish(g, "after %d suspends and %d round trips between GPUs" % (3, moves))
    finish(other, "the other vGPU on GPU 0")

    # --- what a guest sees while the vGPU is suspended ------------------------------------
    stop = os.path.join(tmp, "stop")
    g = guest(ua, "--mib", "1", "--seconds", "0.5", "--until", stop, "--retry-timeouts", "--ready",
              ready + "2", env={"VGPU_SUSPEND_TIMEOUT_MS": "200"})
    check(wait_for(lambda: os.path.exists(ready + "2"), 30), "a guest with a suspend timeout runs")
    st, _ = act(ua, "suspend")
    check(st == 200, "suspend with a guest that times out")
    late = guest(ua, "--mib", "1", "--iters", "1")
    out = late.communicate(timeout=30)[0].decode(errors="replace")
    check(late.returncode != 0, "a new guest cannot attach while suspended")
    time.sleep(1.5)
    st, _ = act(ua, "resume")
    check(st == 200, "resume")
    open(stop, "w").close()
    out = finish(g, "with VGPU_SUSPEND_TIMEOUT_MS=200")
    tmo = int(out.split("timeouts=")[1].split()[0]) if "timeouts=" in out else 0
    check(tmo >= 1, "calls timed out with CUDA_ERROR_TIMEOUT while suspended (%d)" % tmo)

    # --- hostile images -------------------------------------------------------------------
    stop3 = os.path.join(tmp, "stop3")
    g = guest(ua, "--mib", "4", "--seconds", "1", "--until", stop3, "--ready", ready + "3")
    check(wait_for(lambda: os.path.exists(ready + "3"), 30), "a guest runs for the image tests")
    img = os.path.join(tmp, "user.img")
    st, body = act(ua, "suspend", {"path": img})
    check(st == 200 and os.path.exists(img), "suspend --to a file: %s" % st)
    good = open(img, "rb").read()

    def refused(data, what):
        with open(img, "wb") as f:
            f.write(data)
        st, body = act(ua, "resume")
        msg = ((body or {}).get("error") or {}).get("message", "")
        check(st == 409 and vgpu(ua)["state"] == "suspended",
              "%s image refused, the vGPU stays suspended: %s %s" % (what, st, msg))
        return msg

    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xff
    msg = refused(bytes(bad), "a corrupt")
    check("corrupt" in msg, "the error says corrupt: %s" % msg)
    msg = refused(good[:len(good) // 3], "a truncated")
    check("truncated" in msg, "the error says truncated: %s" % msg)
    refused(good + b"x", "an image with trailing data")
    refused(b"not an image at all", "a foreign file")
    bad = bytearray(good)
    bad[16] ^= 1  # the uuid, inside the header
    refused(bytes(bad), "a header-altered")
    with open(img, "wb") as f:
        f.write(good)
    st, body = act(ua, "resume")
    check(st == 200, "the intact image resumes after all that: %s" % st)
    check(os.path.exists(img), "an image the user named is left to the user")
    open(stop3, "w").close()
    finish(g, "after refused images")

    # --- vgpud answers while an engine works; the busy vGPU refuses other operations --------
    stop5 = os.path.join(tmp, "stop5")
    g = guest(ua, "--mib", "768", "--seconds", "0.5", "--until", stop5, "--ready", ready + "7")
    check(wait_for(lambda: os.path.exists(ready + "7"), 60), "a guest with 768 MiB runs")
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("r", act(ua, "suspend")))
    t.start()
    busy = wait_for(lambda: vgpu(ua)["busy"] or not t.is_alive(), 10, 0.01) and t.is_alive()
    if busy:
        t0 = time.time()
        st, _ = vd.call("GET", "/v1/vgpus")
        took = time.time() - t0
        st2, body2 = act(ua, "migrate", {"gpu": 1})
        check(st == 200 and took < 1.0, "vgpud answers a list meanwhile (%.3f s)" % took)
        check(st2 == 409 and body2["error"]["code"] == "VGPU_EBUSY",
              "another operation on the busy vGPU: 409 VGPU_EBUSY (%s)" % st2)
    else:
        print("NOTE: the suspend was over before the vGPU was seen busy (a loaded machine)")
    t.join(120)
    check(res.get("r", (0,))[0] == 200 and not vgpu(ua)["busy"],
          "the suspend went through: %s" % (res.get("r", (None,))[0],))
    st, body = act(ua, "resume")
    check(st == 200, "resume: %s %s" % (st, (body or {}).get("error")))
    open(stop5, "w").close()
    finish(g, "after a suspend with vgpud answering")

    # --- a guest that dies while the vGPU is suspended ---------------------------------------
    g = guest(ua, "--mib", "8", "--seconds", "1", "--until", os.path.join(tmp, "never"),
              "--ready", ready + "4")
    keep = guest(ua, "--mib", "2", "--seconds", "1", "--until", stop3 + "b", "--ready",
                 ready + "5")
    check(wait_for(lambda: os.path.exists(ready + "4") and os.path.exists(ready + "5"), 30),
          "two guests run")
    st, _ = act(ua, "suspend")
    g.kill()
    g.wait()
    time.sleep(0.3)
    st, body = act(ua, "resume")
    check(st == 200, "resume after one of its guests died while suspended: %s %s"
          % (st, body.get("error")))
    open(stop3 + "b", "w").close()
    finish(keep, "the guest that stayed")

    # --- a migration the target refuses -----------------------------------------------------
    st, _ = act(ua, "migrate", {"gpu": 0})
    check(st == 200, "migrate back to GPU 0")
    fill = []
    for _ in range(4):
        st, body = vd.call("POST", "/v1/vgpus", {"gpu": 1, "type": "H100-20C"})
        if st == 201:
            fill.append(body["uuid"])
    g = guest(ua, "--mib", "2", "--seconds", "2")
    st, body = act(ua, "migrate", {"gpu": 1})
    check(st in (409, 422) and vgpu(ua)["state"] == "running" and vgpu(ua)["gpu"] == 0,
          "a full target refuses: the vGPU runs on where it was (%s %s)"
          % (st, ((body or {}).get("error") or {}).get("message")))
    finish(g, "after a refused migration")
    for u in fill:
        vd.call("DELETE", "/v1/vgpus/" + u)

    # --- bad requests ------------------------------------------------------------------------
    st, body = act(ua, "resume")
    check(st == 409 and body["error"]["code"] == "VGPU_ENOT_SUSPENDED", "resume a running vGPU: 409")
    st, body = act(ua, "migrate", {"gpu": 0})
    check(st == 409 and body["error"]["code"] == "VGPU_ESAME_GPU", "migrate to its own GPU: 409")
    st, body = act(ua, "migrate", {"gpu": 7})
    check(st == 404, "migrate to no such GPU: 404")
    st, body = act(ua, "migrate", {})
    check(st == 400, "migrate without a target: 400")
    st, body = act(ua, "migrate", {"gpu": 1, "precopy": "yes"})
    check(st == 400, "precopy must be a boolean: 400")
    st, body = act(ua, "suspend", {"path": "relative.img"})
    check(st == 400, "a relative image path: 400")
    st, body = act(ua, "suspend", {"path": img})
    msg = body["error"]["message"] if st != 200 else ""
    check(st == 409 and "exists" in msg, "suspend onto an existing file is refused: %s %s"
          % (st, msg))
    check(vgpu(ua)["state"] == "running", "and the vGPU runs on")
    st, body = act(ua, "migrate", {"to": "127.0.0.1:1"})
    check(st == 400 and body["error"]["code"] == "NO_MIGRATE_SECRET",
          "migration to another vgpud needs --migrate-secret, and says so: %s" % st)
    st, body = act("00000000-0000-0000-0000-000000000000", "suspend")
    check(st == 404, "suspend an unknown vGPU: 404")

    # --- vgpuctl, and a vgpud restart while suspended ---------------------------------------
    rc, out, err = ctl("suspend", ua)
    check(rc == 0 and "Suspended" in out, "vgpuctl suspend: %s%s" % (out, err))
    rc, out, err = ctl("--json", "list")
    check(rc == 0 and any(v["state"] == "suspended" for v in json.loads(out)["vgpus"]),
          "vgpuctl --json list shows it suspended")
    vd.kill()
    vd.start()
    check(vgpu(ua)["state"] == "suspended", "a vgpud restart keeps the vGPU suspended")
    rc, out, err = ctl("resume", ua, "--gpu", "1")
    check(rc == 0 and "Resumed" in out, "vgpuctl resume --gpu 1: %s%s" % (out, err))
    rc, out, err = ctl("migrate", ua, "--gpu", "0", "--precopy")
    check(rc == 0 and "Migrated" in out and PRECOPY in out,
          "vgpuctl migrate --gpu 0 --precopy: %s%s" % (out, err))
    rc, out, err = ctl("migrate", ua)
    check(rc != 0 and "usage" in err, "vgpuctl migrate without --gpu: usage")
    vd.kill()
    vd.start()
    check(vgpu(ua)["gpu"] == 0 and vgpu(ua)["device_address"] == addr,
          "a moved vGPU keeps its GPU and address across a vgpud restart")

    # --- between GPU models: a type with at least the framebuffer, an equal or newer GPU -----
    stop4 = os.path.join(tmp, "stop4")
    g = guest(ua, "--mib", "16", "--seconds", "1", "--until", stop4, "--ready", ready + "6")
    check(wait_for(lambda: os.path.exists(ready + "6"), 30), "a guest runs for the model moves")
    st, body = act(ua, "migrate", {"gpu": 2})
    check(st == 200 and body["type"] == "H200-28C" and body["device_address"] == addr,
          "H100-20C to an H200 becomes H200-28C, same address: %s %s"
          % (st, body.get("type") if st == 200 else body))
    st, body = act(ua, "migrate", {"gpu": 3})
    msg = body["error"]["message"] if st != 200 else ""
    check(st == 422 and "compute capability" in msg,
          "to an A100 (older) is refused: %s %s" % (st, msg))
    check(vgpu(ua)["fb_size"] == 20 << 30, "the framebuffer stays 20 GiB on an H200-28C")
    st, body = act(ua, "migrate", {"gpu": 0, "precopy": True})
    check(st == 200 and body["type"] == "H100-20C" and body["fb_size"] == 20 << 30,
          "back to an H100 beside an H100-20C: H100-20C again (its framebuffer is 20 GiB): %s %s"
          % (st, body.get("type") if st == 200 else body))
    open(stop4, "w").close()
    finish(g, "after moves between GPU models")

    # a vGPU created where a moved one came from gets an address of its own
    st, _ = act(ua, "migrate", {"gpu": 1})
    check(st == 200, "migrate to GPU 1 again")
    st, c = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    check(st == 201, "create on GPU 0")
    spans = [(vgpu(u)["device_address"], vgpu(u)["fb_size"]) for u in (ua, ub, c["uuid"])]
    overlap = any(a0 < b0 + bs and b0 < a0 + as_ for i, (a0, as_) in enumerate(spans)
                  for (b0, bs) in spans[i + 1:])
    check(not overlap, "device address ranges never overlap: %s" % [hex(s[0]) for s in spans])

    st, _ = act(ua, "suspend")
    st, _ = vd.call("DELETE", "/v1/vgpus/" + ua)
    check(st == 204, "a suspended vGPU can be destroyed: %s" % st)
    check(not os.path.exists(os.path.join(vd.state, "images", ua + ".img")),
          "destroying it removes its image")


try:
    if not os.path.exists(GUEST):
        print("SKIP: %s is not built" % GUEST)
        sys.exit(77)
    main()
except Exception:
    traceback.print_exc()
    failures.append("exception")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
    if vd:
        vd.stop_all()
        if failures:
            print(vd.read_log()[-3000:])
        shutil.rmtree(vd.tmp, ignore_errors=True)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
