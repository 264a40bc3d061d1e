# SPDX-License-Identifier: Apache-2.0
# Moves between two vgpuds on the cuda backend (docs/migration.md), with a guest that computes and
# checks its own results (tests/migration/mig_guest) throughout, in worker processes as the cuda
# backend runs guests: the vGPU goes A -> B -> A (stop and copy, then pre-copy), keeps its UUID and
# device address, and the guest re-attaches each time and finishes with correct results; a guest
# over TCP (docs/remote.md) follows its vGPU there and back. Two ways to run:
# - on the stand-in driver (`--fake`): A and B each on a stand-in host of its own (one H100 SXM5);
# - on a real GPU: both vgpuds on this host's first GPU (each as if it were another host). Exits
#   77 when vgpud --backend cuda does not start here.
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakegpu"))
import fakegpu  # noqa: E402
from vgpud_lib import Vgpud, wait_for  # noqa: E402

B = os.environ["VGPU_BUILD"]
GUEST = os.path.join(B, "tests", "migration", "mig_guest")
FAKE = "--fake" in sys.argv
failures = []
daemons = []
procs = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def secret_file(tmp, name):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(os.urandom(32).hex().encode())
    os.chmod(path, 0o600)
    return path


def daemon(tmp, name, secret, gkey, env):
    d_tmp = os.path.join(tmp, name)
    os.makedirs(d_tmp)
    os.environ.clear()
    os.environ.update(env)  # its engines and their workers inherit it
    d = Vgpud(tmp=d_tmp, extra=["--backend", "cuda", "--migrate-secret", secret,
                                "--migrate-listen", "127.0.0.1:0", "--guest-listen",
                                "127.0.0.1:0", "--guest-secret", gkey]).start(timeout=30)
    daemons.append(d)
    d.addr = "127.0.0.1:%s" % re.findall(r"taking migrations on \S+ \(port (\d+)\)",
                                         d.read_log())[-1]
    d.guest_addr = "127.0.0.1:%s" % re.findall(r"taking remote guests on \S+ \(port (\d+)\)",
                                               d.read_log())[-1]
    return d


def guest(d, uuid, env, *args, remote=None):
    e = dict(env, LD_LIBRARY_PATH=os.path.join(B, "lib"), VGPU_SOCKET=d.sock, VGPU_UUID=uuid)
    if remote:
        e.update(VGPU_SOCKET="/nonexistent", VGPU_REMOTE=d.guest_addr, VGPU_REMOTE_SECRET=remote)
    p = subprocess.Popen([GUEST] + list(args), env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def type_20(d):
    types = d.call("GET", "/v1/types?gpu=0")[1]["types"]
    return next(t["name"] for t in types if t["class"] == "time-sliced" and t["fb_mib"] == 20480)


def run(tmp):
    secret, gkey = secret_file(tmp, "secret"), secret_file(tmp, "guests")
    base = dict(os.environ)
    if FAKE:
        envs = []
        for name in ("host-a", "host-b"):
            fakegpu.write(os.path.join(tmp, name + "-gpu"), [fakegpu.h100(0)])
            envs.append(fakegpu.environ(os.path.join(tmp, name + "-gpu")))
    else:
        envs = [base, base]
    try:
        a = daemon(tmp, "a", secret, gkey, envs[0])
        b = daemon(tmp, "b", secret, gkey, envs[1])
    except RuntimeError as e:
        if FAKE:
            raise
        print("SKIP: vgpud --backend cuda does not start here: %s" % str(e).splitlines()[0])
        sys.exit(77)
    t = type_20(a)
    s, v = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": t})
    s2, v2 = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": t})
    check(s == 201 and s2 == 201, "two %s on A" % t)
    if s != 201 or s2 != 201:
        return
    uuid, addr, u2 = v["uuid"], v["device_address"], v2["uuid"]
    stop, ready, ready2 = (os.path.join(tmp, n) for n in ("stop", "ready", "ready2"))
    g = guest(a, uuid, envs[0], "--mib", "64", "--seconds", "1", "--until", stop, "--ready",
              ready)
    g2 = guest(a, u2, envs[0], "--mib", "16", "--seconds", "1", "--until", stop, "--ready",
               ready2, remote=gkey)
    check(wait_for(lambda: os.path.exists(ready) and os.path.exists(ready2), 60),
          "a local guest and a guest over TCP filled their memory and run")
    here, there = a, b
    for i in range(2):
        precopy = i % 2 == 1
        what = "move %d (%s) %s -> %s" % (i, "pre-copy" if precopy else "stop and copy",
                                           "A" if here is a else "B", "A" if there is a else "B")
        for u in (uuid, u2):
            st, body = here.call("POST", "/v1/vgpus/%s/migrate" % u,
                                 {"to": there.addr, "precopy": precopy})
            check(st == 200 and body.get("state") == "moved", "%s: %s %s" % (what, st, body))
            if st != 200:
                return
        st, tv = there.call("GET", "/v1/vgpus/" + uuid)
        check(here.call("GET", "/v1/vgpus/" + uuid)[0] == 404 and st == 200 and
              tv["state"] == "running" and tv["device_address"] == addr,
              "%s: gone from the source, running on the target at its device address" % what)
        check(wait_for(lambda: all(there.engine(u, {"op": "status"}).get("guests_waiting") == 0
                                   for u in (uuid, u2)), 30),
              "%s: both guests re-attached there, each in a worker" % what)
        here, there = there, here
    open(stop, "w").close()
    for p, what in ((g, "the local guest"), (g2, "the guest over TCP")):
        out = p.communicate(timeout=120)[0].decode(errors="replace")
        check(p.returncode == 0 and "PASS" in out,
              "%s: its computation is correct across the moves (%s)"
              % (what, out.strip().splitlines()[-2:]))
    for u in (uuid, u2):
        here.call("DELETE", "/v1/vgpus/%s?force=1" % u)


def main():
    tmp = tempfile.mkdtemp(prefix="vgpu-migcuda-")
    saved = dict(os.environ)
    try:
        run(tmp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for d in daemons:
            d.stop_all()
        os.environ.clear()
        os.environ.update(saved)
    if failures:
        print("FAILED: %d" % len(failures))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
