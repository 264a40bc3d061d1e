# SPDX-License-Identifier: Apache-2.0
# Migration between two vgpuds on this machine (docs/migration.md), with a guest that computes and
# checks its own results (tests/migration/mig_guest.c) all along:
#  - the vGPU moves A -> B -> A ... (stop and copy, then pre-copy), between GPU models (H100 to
#    H200 and back): same UUID and device address, gone from the source, running on the target,
#    the guest re-attaches each time and finishes with correct results;
#  - refused moves leave it running on the source: a peer with another secret, a port nobody
#    listens on, a target without a GPU for it, a vgpud without --migrate-secret, bad requests;
#  - a peer that holds the secret but offers nonsense (tests/migration/mig_peer.c) is refused
#    with a reason, and the target keeps nothing; so is a remote guest asking for what is not;
#  - the target's engine killed in the middle: the source keeps the vGPU, the target has nothing;
#  - the target's vgpud killed in the middle: after its restart the vGPU is in exactly one place;
#  - a guest over TCP (docs/remote.md) follows its vGPU from one vgpud to the other and back;
#  - the source's vgpud killed in the middle: after its restart the vGPU is in exactly one place.
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, engine_args, engine_pids, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
PEER = os.path.join(BUILD, "tests", "migration", "mig_peer")
CTL = os.path.join(BUILD, "bin", "vgpuctl")
failures = []
daemons = []
procs = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def secret_file(tmp, name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def daemon(gpus, secret=None, listen=True, tmp=None, guests=None):
    extra = []
    if secret:
        extra += ["--migrate-secret", secret]
        if listen:
            extra += ["--migrate-listen", "127.0.0.1:0"]
    if guests:
        extra += ["--guest-listen", "127.0.0.1:0", "--guest-secret", guests]
    d = Vgpud(gpus=gpus, tmp=tmp, extra=extra).start()
    daemons.append(d)
    m = re.findall(r"taking migrations on \S+ \(port (\d+)\)", d.read_log())
    d.addr = "127.0.0.1:%s" % m[-1] if m else None
    m = re.findall(r"taking remote guests on \S+ \(port (\d+)\)", d.read_log())
    d.guest_addr = "127.0.0.1:%s" % m[-1] if m else None
    return d


def get(d, uuid):
    st, body = d.call("GET", "/v1/vgpus/" + uuid)
    return body if st == 200 else None


def migrate(d, uuid, to, precopy=False):
    return d.call("POST", "/v1/vgpus/%s/migrate" % uuid, {"to": to, "precopy": precopy})


def guest(d, uuid, *args, remote=None):
    e = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=d.sock,
             VGPU_UUID=uuid)
    if remote:
        e.update(VGPU_SOCKET="/nonexistent", VGPU_REMOTE=d.guest_addr, VGPU_REMOTE_SECRET=remote)
    p = subprocess.Popen([GUEST] + list(args), env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def finish(p, what, timeout=120):
    out = p.communicate(timeout=timeout)[0].decode(errors="replace")
    check(p.returncode == 0 and "PASS" in out,
          "%s: the guest's computation is correct (%s)" % (what, out.strip().splitlines()[-3:]))


def moved(src, dst, uuid, addr, what):
    s, t = get(src, uuid), get(dst, uuid)
    check(s is None, "%s: gone from the source" % what)
    check(t is not None and t["state"] == "running" and t["device_address"] == addr
          and t["fb_mib"] == 20480,
          "%s: running on the target at the same device address with its 20 GiB (%s)"
          % (what, t and (t["state"], t["type"], t["device_address"], t["fb_mib"])))
    return t


def main():
    tmp = Vgpud().tmp
    secret = secret_file(tmp, "secret", os.urandom(32).hex().encode())
    other = secret_file(tmp, "other", os.urandom(32).hex().encode())
    gkey = secret_file(tmp, "guests", os.urandom(32).hex().encode())
    a = daemon("H100-80GB", secret, guests=gkey)
    b = daemon("H200-141GB,H100-80GB", secret, guests=gkey)
    check(a.addr and b.addr, "both vgpuds listen for migrations (%s, %s)" % (a.addr, b.addr))
    st, v = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, v)
    uuid, addr = v["uuid"], v["device_address"]
    # a second vGPU, for a guest over TCP (below)
    st, v2 = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, v2)
    u2, addr2 = v2["uuid"], v2["device_address"]

    stop = os.path.join(tmp, "stop")
    ready = os.path.join(tmp, "ready")
    g = guest(a, uuid, "--mib", "64", "--seconds", "1", "--until", stop, "--ready", ready)
    check(wait_for(lambda: os.path.exists(ready), 30), "the guest filled 64 MiB and runs")

    # B has a vGPU of its own at the same device addresses (each vgpud gives them from its GPUs'
    # windows): the move is allowed; one process cannot use both
    st, bv = b.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H200-28C"})
    check(st == 201 and bv["device_address"] == addr,
          "B's own vGPU has the first one's device address (%s)" % (bv.get("device_address"),))

    # --- back and forth, stop and copy and pre-copy, between models ---------------------------
    here, there = a, b
    for i in range(4):
        precopy = i % 2 == 1
        st, body = migrate(here, uuid, there.addr, precopy)
        what = "move %d (%s) %s -> %s" % (i, "pre-copy" if precopy else "stop and copy",
                                           "A" if here is a else "B", "A" if there is a else "B")
        check(st == 200 and body.get("state") == "moved", "%s: %s %s" % (what, st, body))
        if st != 200:
            break
        tr = body["transfer"]
        check(tr["guests"] == 1 and tr["data_bytes"] >= 64 << 20,
              "%s: took the guest's session and data (%d bytes, %.1f ms pause)"
              % (what, tr["data_bytes"], tr["stun_ms"]))
        t = moved(here, there, uuid, addr, what)
        if there is b:
            check(t and t["type"] == "H200-28C", "%s: an H100-20C becomes an H200-28C (%s)"
                  % (what, t and t["type"]))
        if there is b and i == 0:
            r = subprocess.run([GUEST, "--mib", "1", "--iters", "4"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60,
                               env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"),
                                        VGPU_SOCKET=b.sock,
                                        VGPU_UUID="%s,%s" % (bv["uuid"], uuid)))
            out = r.stdout.decode(errors="replace")
            check(r.returncode == 0 and "one of the two per process" in out,
                  "%s: a process asking for both vGPUs of one address gets the first, and is "
                  "told why not the second (%s)" % (what, out.strip().splitlines()[-2:]))
        check(wait_for(lambda: there.engine(uuid, {"op": "status"}).get("guests_waiting") == 0,
                       10), "%s: the guest re-attached there" % what)
        here, there = there, here
        time.sleep(0.3)
    check(here is a, "the vGPU is back on A")

    # --- refusals: the vGPU runs on, on A -------------------------------------------------------
    c = daemon("H200-141GB", other)
    st, body = migrate(a, uuid, c.addr)
    check(st == 502 and "secret" in body["error"]["message"],
          "a peer with another secret is refused: %s %s" % (st, body))
    check(wait_for(lambda: "refused a peer" in c.read_log(), 5),
          "and that peer says it refused us")
    check(get(c, uuid) is None, "nothing arrived there")
    st, body = migrate(a, uuid, "127.0.0.1:1")
    check(st == 502, "a port nobody listens on: %s %s" % (st, body))
    d = daemon("A100-40GB", secret)
    st, body = migrate(a, uuid, d.addr)
    check(st == 502 and "no GPU here" in body["error"]["message"],
          "a target without a GPU for it (A100: older) refuses: %s %s" % (st, body))
    check(get(d, uuid) is None, "and keeps nothing")
    e = daemon("H200-141GB")
    st, body = e.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H200-28C"})
    st, body = migrate(e, body["uuid"], b.addr)
    check(st == 400 and body["error"]["code"] == "NO_MIGRATE_SECRET",
          "a vgpud without --migrate-secret says so: %s %s" % (st, body))
    for bad in ({"to": 5}, {"to": b.addr, "gpu": 0}, {"to": ""}):
        st, body = a.call("POST", "/v1/vgpus/%s/migrate" % uuid, bad)
        check(st == 400, "bad request %s: %s" % (bad, st))
    r = subprocess.run([CTL, "--socket", a.sock, "migrate", uuid, "--to", d.addr],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(r.returncode != 0 and b"no GPU here" in r.stderr,
          "vgpuctl migrate --to says why it failed: %r" % r.stderr[-200:])
    # a peer with the secret, offering nonsense: each refused with a reason, nothing kept
    good = {"op": "offer", "uuid": "11111111-2222-4333-8444-555555555555", "model": "H100-80GB",
            "type": "H100-20C", "fb_bytes": 20 << 30, "device_address": 0x300000000000,
            "owner_uid": os.getuid()}
    hostile = [
        ({"op": "attach"}, "malformed"),
        (dict(good, uuid="not-a-uuid"), ""),
        (dict(good, model="NOPE-1GB"), "unknown"),
        (dict(good, type="H100-999C"), "unknown"),
        (dict(good, fb_bytes=-1), "malformed"),
        (dict(good, device_address=0x1000), "not a vGPU's"),
        (dict(good, device_address=0x300000000001), "not a vGPU's"),
        (dict(good, device_address=(1 << 63) - (1 << 21)), "not a vGPU's"),
        (dict(good, uuid=uuid, device_address=addr), "exists"),
    ]
    for offer, why in hostile:
        r = subprocess.run([PEER, a.addr, secret, json.dumps(offer)], stdout=subprocess.PIPE,
                           timeout=30)
        ans = json.loads(r.stdout or b"{}")
        check(ans.get("ok") is False and why.lower() in ans.get("error", "").lower(),
              "a hostile offer %s is refused: %s" % (json.dumps(offer)[:90], ans))
    check(all(get(a, o.get("uuid", "x")) is None for o, _ in hostile if o.get("uuid") != uuid),
          "and the target keeps none of them")
    for req, why in (({"op": "attach", "uuid": "11111111-2222-4333-8444-555555555555"}, "no vGPU"),
                     ({"op": "reattach", "uuid": uuid, "token": "00" * 16}, "no session"),
                     ({"op": "offer"}, "expected")):
        r = subprocess.run([PEER, a.guest_addr, gkey, json.dumps(req)], stdout=subprocess.PIPE,
                           timeout=30)
        ans = json.loads(r.stdout or b"{}")
        check(ans.get("ok") is False and why in ans.get("error", ""),
              "a remote guest asking %s is refused: %s" % (req["op"], ans))
    v = get(a, uuid)
    check(v and v["state"] == "running" and v["guests"] == 1 and not v["busy"],
          "after all that, the vGPU runs on A with its guest")

    # --- the target's engine dies in the middle -------------------------------------------------
    killed = []

    a_pid = get(a, uuid)["engine_pid"]

    def kill_target_engine():
        if wait_for(lambda: engine_of_other() is not None, 20, 0.005):
            time.sleep(0.05)
            pid = engine_of_other()
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    def engine_of_other():
        for pid in engine_pids():
            if pid != a_pid and engine_args(pid).get("uuid") == uuid:
                return pid
        return None

    th = threading.Thread(target=kill_target_engine)
    th.start()
    st, body = migrate(a, uuid, b.addr, True)
    th.join()
    if killed:
        check(st == 502, "the target's engine killed mid-move: the move fails (%s)" % st)
        v = get(a, uuid)
        check(v and v["state"] == "running" and v["guests"] == 1,
              "and the vGPU runs on A with its guest")
        check(wait_for(lambda: get(b, uuid) is None, 10), "and B dropped what it had")
    else:
        print("NOTE: the move finished before the target's engine could be killed")
        here = b if st == 200 else a
        if here is b:
            st, body = migrate(b, uuid, a.addr)
            check(st == 200, "back to A")

    # --- the target's vgpud dies in the middle --------------------------------------------------
    def kill_b():
        time.sleep(0.2)
        b.kill()

    th = threading.Thread(target=kill_b)
    th.start()
    st, body = migrate(a, uuid, b.addr, True)
    th.join()
    b2 = daemon(b.gpus, secret, tmp=b.tmp, guests=gkey)
    on_a, on_b = get(a, uuid), get(b2, uuid)
    check((on_a is None) != (on_b is None),
          "target vgpud killed mid-move (%s): after its restart the vGPU is in one place "
          "(A: %s, B: %s)" % (st, on_a and on_a["state"], on_b and on_b["state"]))
    where = on_a or on_b
    check(where and where["state"] == "running", "and it runs there")

    open(stop, "w").close()
    finish(g, "after moves between two vgpuds and failed attempts")

    # --- a guest over TCP follows its vGPU ------------------------------------------------------
    src, dst = a, b2
    stop2, ready2 = stop + "2", ready + "2"
    g2 = guest(src, u2, "--mib", "32", "--seconds", "1", "--until", stop2, "--ready", ready2,
               remote=gkey)
    check(wait_for(lambda: os.path.exists(ready2), 30), "the remote guest filled 32 MiB and runs")
    for i, precopy in enumerate((False, True)):
        st, body = migrate(src, u2, dst.addr, precopy)
        check(st == 200, "remote guest's vGPU, move %d: %s %s" % (i, st, body))
        if st != 200:
            break
        t = get(dst, u2)
        check(t and t["device_address"] == addr2 and t["state"] == "running",
              "move %d: it runs on the target at the same address" % i)
        check(wait_for(lambda: dst.engine(u2, {"op": "status"}).get("guests_waiting") == 0, 15),
              "move %d: the remote guest re-attached over TCP" % i)
        src, dst = dst, src
        time.sleep(0.3)
    open(stop2, "w").close()
    finish(g2, "a guest over TCP after its vGPU moved between vgpuds twice")

    # --- the source's vgpud dies in the middle: its engine goes on without it -----------------
    src, dst = (a, b2) if get(a, u2) else (b2, a)
    killer = threading.Thread(target=lambda: (time.sleep(0.03), src.kill()))
    killer.start()
    try:
        st, _ = migrate(src, u2, dst.addr, True)
    except OSError:
        st = "connection lost"
    killer.join()
    time.sleep(1)
    src2 = daemon(src.gpus, secret, tmp=src.tmp, guests=gkey)
    on_src, on_dst = get(src2, u2), get(dst, u2)
    check((on_src is None) != (on_dst is None),
          "source vgpud killed mid-move (%s): after its restart the vGPU is in one place "
          "(source: %s, target: %s)" % (st, on_src and on_src["state"], on_dst and on_dst["state"]))
    check((on_src or on_dst or {}).get("state") == "running", "and it runs there")


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
