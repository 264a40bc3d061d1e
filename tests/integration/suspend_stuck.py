# SPDX-License-Identifier: Apache-2.0
# A suspend or move while a guest's kernel runs on and on (docs/migration.md, "A command that
# does not end"): the pause waits VGPU_ENGINE_PAUSE_MS (here 1.5 s), then the operation fails
# (409) and the vGPU runs on, where it was. The engine keeps answering, another guest of the
# vGPU goes on computing, and once the spinning guest is gone a suspend, resume and move work.
# Run twice by CTest: the engine serving guests itself, and with a worker process per guest.
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
LONGRUN = os.path.join(BUILD, "examples", "longrun")
failures = []
vd = None
procs = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def start(uuid, argv):
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
               VGPU_UUID=uuid)
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def act(uuid, op, body=None):
    st, b = vd.call("POST", "/v1/vgpus/%s/%s" % (uuid, op), body)
    return st, ((b or {}).get("error") or {}).get("message")


def vgpu(uuid):
    return vd.call("GET", "/v1/vgpus/" + uuid)[1]


def main():
    global vd
    os.environ["VGPU_ENGINE_PAUSE_MS"] = "1500"  # the engines vgpud starts inherit it
    if "--workers" in sys.argv:
        os.environ["VGPU_ENGINE_WORKERS"] = "1"  # and their workers' pause has the same limit
    vd = Vgpud(gpus="H100-80GB,H100-80GB").start()
    st, v = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, v)
    u = v["uuid"]

    stop = os.path.join(vd.tmp, "stop")
    ready = os.path.join(vd.tmp, "ready")
    other = start(u, [GUEST, "--mib", "4", "--seconds", "0.1", "--until", stop, "--ready", ready])
    check(wait_for(lambda: os.path.exists(ready) or other.poll() is not None, 60) and
          other.poll() is None, "a guest computes on %s" % u[:8])
    # one kernel of hours: what a user's bug looks like
    spin = start(u, [LONGRUN, "--iters", "100000000000", "--launches", "1"])
    time.sleep(1.0)
    check(spin.poll() is None, "a guest's kernel runs on and on")

    for op, body in (("suspend", None), ("migrate", {"gpu": 1}),
                     ("migrate", {"gpu": 1, "precopy": True})):
        t0 = time.time()
        st, why = act(u, op, body)
        took = time.time() - t0
        check(st == 409 and "did not end" in (why or ""),
              "%s %s during it fails: %s %s (%.1f s)" % (op, body or "", st, why, took))
        v = vgpu(u)
        check(v["state"] == "running" and v["gpu"] == 0,
              "and the vGPU runs on where it was (%s on GPU %s)" % (v["state"], v["gpu"]))
        es = vd.engine(u, {"op": "status"}, timeout=10)
        check(es.get("state") == "running", "its engine answers: %s" % es.get("state"))

    spin.kill()
    spin.wait()
    # the engine sees the guest gone and cancels its kernel; then a suspend works
    res = {}

    def suspends():
        res["st"], res["why"] = act(u, "suspend")
        return res["st"] == 200
    check(wait_for(suspends, 60, 0.5),
          "with the spinning guest gone, a suspend works: %s %s" % (res.get("st"), res.get("why")))
    st, why = act(u, "resume")
    check(st == 200, "and the resume: %s %s" % (st, why))
    st, why = act(u, "migrate", {"gpu": 1})
    check(st == 200 and vgpu(u)["gpu"] == 1, "and a move: %s %s" % (st, why))

    open(stop, "w").close()
    try:
        out = other.communicate(timeout=90)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        other.kill()
        out = other.communicate()[0].decode(errors="replace") + " (HUNG: killed)"
    check(other.returncode == 0 and "PASS" in out,
          "the other guest's computation is correct (%s)" % out.strip().splitlines()[-2:])


if __name__ == "__main__":
    try:
        if not os.path.exists(GUEST) or not os.path.exists(LONGRUN):
            print("SKIP: %s or %s is not built" % (GUEST, LONGRUN))
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
            if failures:
                print(vd.read_log()[-3000:])
            vd.stop_all()
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)
