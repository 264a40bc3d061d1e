# SPDX-License-Identifier: Apache-2.0
# Suspend, resume and a move within GPU 0 on a real GPU (cuda backend, worker processes), with a
# self-checking guest (tests/migration/mig_guest) computing throughout: it must finish with
# correct results, and the suspended vGPU's framebuffer memory must be given back to the GPU
# (NVML's used memory drops). Exits 77 without a GPU. Not yet run on one (docs/migration.md).
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from vgpud_lib import UnixConnection, wait_for  # noqa: E402

B = os.environ["VGPU_BUILD"]
# NVML through vgpu's own probe, so that the stand-in driver (tests/fakegpu) counts too
_probe = subprocess.run([os.path.join(B, "bin", "vgpu-nvml-probe")], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
if _probe.returncode != 0:
    print("SKIP: no NVIDIA GPU: %s" % _probe.stderr.decode(errors="replace").strip())
    sys.exit(77)
tmp = tempfile.mkdtemp()
sock = os.path.join(tmp, "s.sock")
failures = []


def call(method, path, body=None):
    c = UnixConnection(sock, timeout=600)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    text = r.read()
    c.close()
    return r.status, (json.loads(text) if text else None)


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def gpu_used_mib():
    out = subprocess.run([os.path.join(B, "bin", "vgpu-nvml-probe"), "--json"],
                         stdout=subprocess.PIPE).stdout
    try:
        return json.loads(out)["gpus"][0]["sample"]["mem_used"] >> 20
    except (ValueError, IndexError, KeyError):
        return -1


def main():
    vd = subprocess.Popen([os.path.join(B, "bin", "vgpud"), "--backend", "cuda", "--state",
                           os.path.join(tmp, "st"), "--socket", sock],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "err"), "w"))
    g = None
    try:
        if vd.stdout.readline().strip() != b"READY":
            err = open(os.path.join(tmp, "err")).read()
            if "no NVIDIA driver" in err or "sees no GPU" in err:
                print("SKIP: " + err.strip().splitlines()[-1])
                return 77
            print("FAIL: vgpud did not start:\n" + err)
            return 1
        st, types = call("GET", "/v1/types?gpu=0")
        t20 = next(t["name"] for t in types["types"]
                   if t["class"] == "time-sliced" and t["fb_mib"] == 20480)
        st, v = call("POST", "/v1/vgpus", {"gpu": 0, "type": t20})
        check(st == 201, "create %s: %s" % (t20, st))
        u = v["uuid"]
        ready, stop = os.path.join(tmp, "ready"), os.path.join(tmp, "stop")
        env = dict(os.environ, VGPU_SOCKET=sock, VGPU_UUID=u,
                   LD_LIBRARY_PATH=os.path.join(B, "lib") + ":" +
                   os.environ.get("LD_LIBRARY_PATH", ""))
        g = subprocess.Popen([os.path.join(B, "tests", "migration", "mig_guest"), "--mib", "1024",
                              "--seconds", "1", "--until", stop, "--ready", ready], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(wait_for(lambda: os.path.exists(ready), 60), "the guest filled 1 GiB and runs")
        for i in range(3):
            before = gpu_used_mib()
            st, body = call("POST", "/v1/vgpus/%s/suspend" % u)
            check(st == 200, "suspend %d: %s %s" % (i, st, body if st != 200 else ""))
            after = gpu_used_mib()
            check(before < 0 or after <= before - 19000,
                  "suspended: the GPU got its 20 GiB back (%d MiB used, was %d)" % (after, before))
            st, body = call("POST", "/v1/vgpus/%s/resume" % u)
            check(st == 200, "resume %d: %s %s" % (i, st, body if st != 200 else ""))
        st, body = call("POST", "/v1/vgpus/%s/migrate" % u, {"gpu": 1})
        print("migrate to GPU 1 (if there is one): %s" % st)
        open(stop, "w").close()
        out = g.communicate(timeout=300)[0].decode(errors="replace")
        check(g.returncode == 0 and "PASS" in out,
              "the guest's computation is correct: %s" % out.strip().splitlines()[-2:])
        call("DELETE", "/v1/vgpus/%s?force=1" % u)
    finally:
        if g and g.poll() is None:
            g.kill()
        vd.terminate()
        vd.wait()
        if failures:
            print(open(os.path.join(tmp, "err")).read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


sys.exit(main())
