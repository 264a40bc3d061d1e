# SPDX-License-Identifier: Apache-2.0
# A guest over TCP (docs/remote.md) on an engine that runs each guest in a worker process of its
# own, as the cuda backend does (VGPU_ENGINE_WORKERS=1 on the sim), with a guest that checks its
# own long computation (tests/migration/mig_guest.c):
#  - its session runs in a worker of its own, whose command line and environment do not hold the
#    connection's key; the guest counts as attached while connected;
#  - suspend and resume, and moves between GPUs (stop and copy, pre-copy) while it computes;
#  - a remote guest's re-attach with a token no session has is refused; the vGPU runs on with its
#    guest (moves to another vgpud with workers: migration_remote.py, run with workers);
#  - when the guest goes, it is counted gone and its worker ends.
import json
import os
import re
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, engine_pids, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
PEER = os.path.join(BUILD, "tests", "migration", "mig_peer")
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


def daemon(gpus, secret, guests):
    d = Vgpud(gpus=gpus, extra=["--migrate-secret", secret, "--migrate-listen", "127.0.0.1:0",
                                "--guest-listen", "127.0.0.1:0", "--guest-secret", guests])
    d.start()
    daemons.append(d)
    log = d.read_log()
    d.addr = "127.0.0.1:%s" % re.findall(r"taking migrations on \S+ \(port (\d+)\)", log)[-1]
    d.guest_addr = "127.0.0.1:%s" % re.findall(r"taking remote guests on \S+ \(port (\d+)\)",
                                               log)[-1]
    return d


def workers(uuid):
    """The worker processes of vGPU uuid: pid -> (command line, environment)."""
    found = {}
    for pid in engine_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        args = cmd.split(b"\0")
        if b"--worker" in args and uuid.encode() in args:
            found[pid] = (cmd, env)
    return found


def act(d, uuid, action, body=None):
    return d.call("POST", "/v1/vgpus/%s/%s" % (uuid, action), body or {})


def main():
    tmp = Vgpud().tmp
    secret = secret_file(tmp, "secret")
    gkey = secret_file(tmp, "guests")
    a = daemon("H100-80GB,H100-80GB", secret, gkey)
    b = daemon("H100-80GB", secret, gkey)
    st, v = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, v)
    uuid, addr = v["uuid"], v["device_address"]
    check(not workers(uuid), "no worker before a guest attaches")

    stop, ready = os.path.join(tmp, "stop"), os.path.join(tmp, "ready")
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_UUID=uuid,
               VGPU_SOCKET="/nonexistent", VGPU_REMOTE=a.guest_addr, VGPU_REMOTE_SECRET=gkey)
    g = subprocess.Popen([GUEST, "--mib", "32", "--seconds", "1", "--until", stop, "--ready",
                          ready], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(g)
    check(wait_for(lambda: os.path.exists(ready), 30), "the remote guest filled 32 MiB and runs")
    w = workers(uuid)
    check(len(w) == 1, "its session runs in a worker process of its own (%s)" % sorted(w))
    key = open(gkey, "rb").read()
    for pid, (cmd, wenv) in w.items():
        check(b"--remote\x001" in cmd, "worker %d serves a remote guest" % pid)
        # the session key would be 64 hex digits (or its 32 bytes); the guest secret, as is
        check(key not in cmd and key not in wenv and not re.search(rb"[0-9a-fA-F]{64}", cmd)
              and not re.search(rb"[0-9a-fA-F]{64}", wenv),
              "worker %d: no key on its command line or in its environment" % pid)
    check(a.engine(uuid, {"op": "status"}).get("guests") == 1, "the guest counts as attached")

    for i in range(2):
        st, body = act(a, uuid, "suspend")
        check(st == 200 and body["state"] == "suspended", "suspend %d: %s" % (i, st))
        time.sleep(0.3)
        st, body = act(a, uuid, "resume")
        check(st == 200 and body["state"] == "running", "resume %d: %s" % (i, st))
        time.sleep(0.2)
        st, body = act(a, uuid, "migrate", {"gpu": 1, "precopy": i == 1})
        check(st == 200 and body["gpu"] == 1 and body["device_address"] == addr,
              "move %d to GPU 1 keeps the device address: %s" % (i, st))
        time.sleep(0.2)
        st, body = act(a, uuid, "migrate", {"gpu": 0})
        check(st == 200 and body["gpu"] == 0, "move %d back to GPU 0: %s" % (i, st))
        time.sleep(0.2)

    # (moves to another vgpud: migration_remote.py, as migration_remote_workers_vgpud)
    # a re-attach names a session that waits for its guest: with a token no session has, refused
    r = subprocess.run([PEER, a.guest_addr, gkey, json.dumps({"op": "reattach", "uuid": uuid,
                                                               "token": "00" * 16})],
                       stdout=subprocess.PIPE, timeout=30)
    ans = json.loads(r.stdout or b"{}")
    check(ans.get("ok") is False and "no session" in ans.get("error", ""),
          "a remote guest's re-attach with an unknown token is refused: %s" % ans)
    v = a.call("GET", "/v1/vgpus/" + uuid)[1]
    check(v.get("state") == "running" and v.get("guests") == 1,
          "and the vGPU runs on with its guest (%s, %s)" % (v.get("state"), v.get("guests")))

    open(stop, "w").close()
    out = g.communicate(timeout=120)[0].decode(errors="replace")
    check(g.returncode == 0 and "PASS" in out,
          "the guest's computation is correct (%s)" % out.strip().splitlines()[-3:])
    check(wait_for(lambda: a.engine(uuid, {"op": "status"}).get("guests") == 0, 10),
          "once it went, the guest counts as gone")
    check(wait_for(lambda: not workers(uuid), 10), "and its worker ended")
    check(a.engine(uuid, {"op": "status"}).get("fb_used", 0) == 0,
          "and its memory went back to the allocator")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        failures.append("exception")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for d in daemons:
            d.stop_all()
    if failures:
        print("FAILED: %d checks" % len(failures))
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("PASS")
