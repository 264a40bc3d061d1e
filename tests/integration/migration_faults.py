# SPDX-License-Identifier: Apache-2.0
# Failure injection around suspend, resume and migration (docs/migration.md), with self-checking
# guests (tests/migration/mig_guest.c) on the vGPU under test and on a bystander vGPU that must
# never notice:
#  - the engine SIGKILLed while it writes a large image: vgpud answers, the vGPU is faulted, its
#    guest fails cleanly, no image claims to be whole, `vgpuctl restart` brings it back;
#  - vgpud SIGKILLed right after it sent a suspend, then a migrate: once restarted its view of
#    the vGPU (state, GPU) agrees with the engine's, and a resume or migrate works;
#  - suspend to a path in a directory that does not exist: 409, the vGPU runs on (a full
#    filesystem needs a mount only root can make: not tried);
#  - resume on a GPU with no room: refused, the vGPU stays suspended and intact;
#  - a guest killed while its vGPU is suspended; a guest killed while a pre-copy move runs;
#  - the engine SIGKILLed while its vGPU is suspended, alone and then with vgpud: the vGPU stays
#    suspended; a resume restores it from its image in a fresh engine, sessions too, and its
#    guest re-attaches and finishes correctly;
#  - many concurrent suspends, resumes and migrations of two vGPUs: every guest passes, and
#    vgpud and the engines agree at the end.
# Guests run until told to stop (--until), never for a fixed time, so that load cannot end them
# before the faults they are there for.
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
CTL = os.path.join(BUILD, "bin", "vgpuctl")
TAG_END = 0x20444E45
failures = []
vd = None
procs = []
n_stop = [0]


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def vgpu(uuid):
    st, body = vd.call("GET", "/v1/vgpus/" + uuid)
    assert st == 200, (st, body)
    return body


def act(uuid, action, body=None, timeout=120):
    """(status, body) of POST /v1/vgpus/UUID/ACTION; (0, error) when vgpud did not answer."""
    try:
        return vd.call("POST", "/v1/vgpus/%s/%s" % (uuid, action), body)
    except OSError as e:
        return 0, {"error": {"message": str(e)}}


def msg(body):
    return ((body or {}).get("error") or {}).get("message")


def engine(uuid, req, timeout=30):
    return vd.engine(uuid, req, timeout)


def guest(uuid, *args, env=None):
    e = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
             VGPU_UUID=uuid)
    e.update(env or {})
    p = subprocess.Popen([GUEST] + list(args), env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def writing_image(pid, images):
    """Whether engine pid has an image open in the images directory: an unnamed one (O_TMPFILE,
    "DIR/#123 (deleted)") or one with a temporary name (file systems without O_TMPFILE)."""
    if os.path.isdir(images) and any(".tmp-" in f for f in os.listdir(images)):
        return True
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(images + "/"):
                return True
        except OSError:
            pass
    return False


def running_guest(uuid, mib=8):
    """A guest that fills mib MiB and computes until told to stop: (process, stop file)."""
    n_stop[0] += 1
    stop = os.path.join(vd.tmp, "stop%d" % n_stop[0])
    ready = os.path.join(vd.tmp, "ready%d" % n_stop[0])
    p = guest(uuid, "--mib", str(mib), "--seconds", "0.2", "--until", stop, "--ready", ready)
    check(wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 60)
          and p.poll() is None, "a guest with %d MiB runs on %s" % (mib, uuid[:8]))
    return p, stop


def finish(p, stop, what, timeout=90):
    open(stop, "w").close()
    try:
        out = p.communicate(timeout=timeout)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode(errors="replace") + " (HUNG: killed)"
    ok = p.returncode == 0 and "PASS" in out
    check(ok, "%s: the guest's computation is correct (%s)" % (what, out.strip().splitlines()[-2:]))
    return out


def short_guest(uuid, what):
    """A new guest's short computation on the vGPU: it works."""
    p = guest(uuid, "--mib", "2", "--iters", "64")
    try:
        out = p.communicate(timeout=60)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out = "HUNG"
    check(p.returncode == 0 and "PASS" in out, "%s: a new guest computes correctly (%s)"
          % (what, out.strip().splitlines()[-1:]))


def ctl(*args):
    r = subprocess.run([CTL, "--socket", vd.sock] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def agree(uuid, what):
    """vgpud's view of the vGPU is its engine's: state and GPU."""
    v = vgpu(uuid)
    es = engine(uuid, {"op": "status"})
    check(v["state"] == es["state"] and v["gpu"] == es["gpu_index"],
          "%s: vgpud and the engine agree (vgpud %s on GPU %s, engine %s on GPU %s)"
          % (what, v["state"], v["gpu"], es["state"], es["gpu_index"]))
    return v


def is_whole(path):
    """Whether an image file ends with an end record (what a whole one does)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 128 + 32:
                return False
            f.seek(-32, 2)
            return struct.unpack("<I", f.read(4))[0] == TAG_END
    except OSError:
        return False


def in_thread(fn, *args):
    res = {}

    def run():
        res["r"] = fn(*args)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, res


def raw_post(path, body):
    """Send a POST to vgpud and return the socket without reading the answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(vd.sock)
    data = json.dumps(body).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
    return s


def main():
    global vd
    vd = Vgpud(gpus="H100-80GB,H100-80GB").start()
    images = os.path.join(vd.state, "images")
    st, a = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, a)
    st, b = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, b)
    ua, ub = a["uuid"], b["uuid"]
    # the bystander: it runs through every fault below and must never notice
    by, by_stop = running_guest(ub, 16)

    # --- the engine killed while it writes a large image -------------------------------------
    g, g_stop = running_guest(ua, 512)
    pid = vgpu(ua)["engine_pid"]
    t, res = in_thread(act, ua, "suspend")
    tmp_seen = wait_for(lambda: writing_image(pid, images), 30, 0.001)
    time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    check(not t.is_alive(), "vgpud answers the suspend whose engine was killed (no hang)")
    st, body = res.get("r", (0, None))
    print("   the suspend answered %s %s (image being written seen: %s)" % (st, msg(body),
                                                                          tmp_seen))
    check(st == 409 or (st == 200 and not tmp_seen),
          "the suspend fails (409) when the engine dies under it: %s" % st)
    check(wait_for(lambda: vgpu(ua)["state"] == "faulted", 15),
          "the vGPU whose engine died is faulted: %s" % vgpu(ua)["state"])
    try:
        out = g.communicate(timeout=60)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        g.kill()
        out = g.communicate()[0].decode(errors="replace") + " HUNG"
    check(g.returncode not in (0, None) and "HUNG" not in out,
          "its guest fails cleanly, without hanging (rc %s: %s)"
          % (g.returncode, out.strip().splitlines()[-1:]))
    left = sorted(os.listdir(images)) if os.path.isdir(images) else []
    print("   left in the images directory: %s" % left)
    check(not any(f.startswith(ua) for f in left),
          "the killed engine left nothing in the images directory (its image had no name yet)")
    check(not any(is_whole(os.path.join(images, f)) for f in left),
          "no file left in the images directory claims to be a whole image")
    check(not os.path.exists(os.path.join(images, ua + ".img")),
          "no image under the vGPU's image name")
    rc, out, err = ctl("restart", ua)
    check(rc == 0 and vgpu(ua)["state"] == "running",
          "vgpuctl restart brings it back: %s%s" % (out.strip(), err.strip()))
    short_guest(ua, "after the restart")
    check(vgpu(ub)["state"] == "running", "the bystander vGPU is untouched")

    # --- vgpud killed right after it sent a suspend, then a migrate ------------------------------
    g, g_stop = running_guest(ua, 64)
    before = set(os.listdir(images))
    s = raw_post("/v1/vgpus/%s/suspend" % ua, {})
    # the engine has it once it writes the image
    wait_for(lambda: set(os.listdir(images)) - before, 10, 0.001)
    vd.kill()
    s.close()
    vd.start()
    v = agree(ua, "vgpud killed during a suspend, restarted")
    if v["state"] == "suspended":
        st, body = act(ua, "resume")
        check(st == 200, "and the suspended vGPU resumes: %s %s" % (st, msg(body)))
    else:
        st, body = act(ua, "suspend")
        st2, body2 = act(ua, "resume")
        check(st == 200 and st2 == 200, "and the running vGPU suspends and resumes: %s %s %s %s"
              % (st, msg(body), st2, msg(body2)))
    agree(ua, "after that")
    src = vgpu(ua)["gpu"]
    s = raw_post("/v1/vgpus/%s/migrate" % ua, {"gpu": 1 - src, "precopy": True})
    time.sleep(0.03)  # the move is under way (its pre-copy rounds take longer than this)
    vd.kill()
    s.close()
    vd.start()
    v = agree(ua, "vgpud killed during a migrate, restarted")
    st, body = act(ua, "migrate", {"gpu": 1 - v["gpu"], "precopy": True})
    check(st == 200, "a migrate after that works: %s %s" % (st, msg(body)))
    agree(ua, "after that migrate")
    finish(g, g_stop, "vgpud killed during a suspend and a migrate")
    check(vgpu(ub)["state"] == "running", "the bystander vGPU is untouched")

    # --- suspend to where no image can go ------------------------------------------------------
    g, g_stop = running_guest(ua, 16)
    st, body = act(ua, "suspend", {"path": os.path.join(vd.tmp, "no", "such", "dir", "a.img")})
    check(st == 409 and vgpu(ua)["state"] == "running",
          "suspend into a directory that does not exist: 409, the vGPU runs on (%s %s)"
          % (st, msg(body)))
    print("   (a full filesystem needs a mount only root can make: not tried)")
    agree(ua, "after the refused suspend")
    finish(g, g_stop, "after a suspend that could not write its image")

    # --- resume on a GPU with no room ------------------------------------------------------------
    g, g_stop = running_guest(ua, 16)
    home = vgpu(ua)["gpu"]
    st, body = act(ua, "suspend")
    check(st == 200, "suspend: %s %s" % (st, msg(body)))
    img = body.get("transfer", {}).get("image") if st == 200 else None
    fill = []
    for _ in range(5):
        st, c = vd.call("POST", "/v1/vgpus", {"gpu": 1 - home, "type": "H100-20C"})
        if st == 201:
            fill.append(c["uuid"])
    st, body = act(ua, "resume", {"gpu": 1 - home})
    es = engine(ua, {"op": "status"})
    check(st in (409, 422) and vgpu(ua)["state"] == "suspended" and es["state"] == "suspended"
          and img and os.path.exists(img),
          "resume on a full GPU is refused; the vGPU stays suspended, its image kept (%s %s)"
          % (st, msg(body)))
    st, body = act(ua, "resume")
    check(st == 200 and vgpu(ua)["gpu"] == home, "resume on its own GPU then works: %s %s"
          % (st, msg(body)))
    agree(ua, "after the refused resume")
    finish(g, g_stop, "after a refused resume")
    for u in fill:
        vd.call("DELETE", "/v1/vgpus/" + u)

    # --- guests that die at the wrong moment -----------------------------------------------------
    g, g_stop = running_guest(ua, 16)
    st, _ = act(ua, "suspend")
    g.kill()
    g.wait()
    time.sleep(0.3)  # the engine notices its guest went
    st, body = act(ua, "resume")
    check(st == 200, "resume after its only guest was killed while suspended: %s %s"
          % (st, msg(body)))
    short_guest(ua, "after that")

    g, g_stop = running_guest(ua, 256)
    src = vgpu(ua)["gpu"]
    t, res = in_thread(act, ua, "migrate", {"gpu": 1 - src, "precopy": True})
    time.sleep(0.02)
    g.kill()
    g.wait()
    t.join(60)
    st, body = res.get("r", (0, None))
    v = vgpu(ua)
    check(not t.is_alive() and ((st == 200 and v["gpu"] == 1 - src)
                                or (st in (409, 422) and v["gpu"] == src))
          and v["state"] == "running",
          "a pre-copy move whose guest was killed completes or fails cleanly (%s %s, GPU %s)"
          % (st, msg(body), v["gpu"]))
    agree(ua, "after that move")
    short_guest(ua, "after that move")
    check(vgpu(ub)["state"] == "running", "the bystander vGPU is untouched")
    finish(by, by_stop, "the bystander, through all of that")

    # --- the engine killed while the vGPU is suspended: a fresh one restores it -------------------
    for with_vgpud in (False, True):
        what = "engine%s killed while suspended" % (" and vgpud" if with_vgpud else "")
        g, g_stop = running_guest(ua, 16)
        # the second time at a path of the user's: vgpud notes where it is
        custom = os.path.join(vd.tmp, "user.img") if with_vgpud else None
        st, _ = act(ua, "suspend", {"path": custom} if custom else None)
        check(st == 200, "%s: suspend with a guest computing: %s" % (what, st))
        os.kill(engine(ua, {"op": "status"})["pid"], signal.SIGKILL)
        if with_vgpud:
            vd.kill()
            vd = Vgpud(gpus=vd.gpus, tmp=vd.tmp).start()
        check(wait_for(lambda: not vgpu(ua).get("engine_pid"), 10)
              and vgpu(ua)["state"] == "suspended",
              "%s: the vGPU stays suspended, without an engine (%s)" % (what, vgpu(ua)["state"]))
        time.sleep(0.5)  # the guest waits meanwhile
        check(g.poll() is None, "%s: its guest waits" % what)
        st, body = act(ua, "resume")
        check(st == 200 and body["state"] == "running",
              "%s: a resume restores it from its image: %s %s" % (what, st, msg(body)))
        check(wait_for(lambda: engine(ua, {"op": "status"}).get("guests_waiting") == 0, 15),
              "%s: its guest re-attached to the fresh engine" % what)
        if custom:
            check(os.path.exists(custom), "%s: the user's image stays the user's" % what)
        finish(g, g_stop, what)

    # --- many concurrent calls on two vGPUs -------------------------------------------------------
    ga, ga_stop = running_guest(ua, 32)
    gb, gb_stop = running_guest(ub, 32)
    answers = []
    crashes = []

    def storm(seed):
        rnd = random.Random(seed)
        for _ in range(10):
            u = rnd.choice((ua, ub))
            op = rnd.choice(("suspend", "resume", "migrate", "migrate"))
            body = None
            if op == "migrate":
                body = {"gpu": rnd.randrange(2), "precopy": rnd.random() < 0.5}
            elif op == "resume" and rnd.random() < 0.5:
                body = {"gpu": rnd.randrange(2)}
            st, rb = act(u, op, body)
            answers.append((op, st))
            if st not in (200, 409, 422):
                crashes.append((op, body, st, msg(rb)))
    threads = [threading.Thread(target=storm, args=(i,), daemon=True) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    check(not any(th.is_alive() for th in threads), "every concurrent call was answered")
    check(not crashes, "only 200, 409 or 422 answers: %s" % crashes[:3])
    print("   answers: %s" % {k: sum(1 for a in answers if "%s %s" % a == k)
                                for k in sorted(set("%s %s" % a for a in answers))})
    check(vd.proc.poll() is None, "vgpud is still up")
    for u in (ua, ub):
        if vgpu(u)["state"] == "suspended":
            st, body = act(u, "resume")
            check(st == 200, "resume %s after the storm: %s %s" % (u[:8], st, msg(body)))
        agree(u, "%s after the storm" % u[:8])
    finish(ga, ga_stop, "vGPU A after the storm")
    finish(gb, gb_stop, "vGPU B after the storm")

    # what the killed engine's half-written image came to: reported, not judged
    st, _ = vd.call("DELETE", "/v1/vgpus/" + ua)
    check(st == 204, "destroy the vGPU: %s" % st)
    left = [f for f in os.listdir(images) if f.startswith(ua)]
    print("   NOTE: left in the images directory after its vGPU was destroyed: %s" % left)


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
            print(vd.read_log()[-4000:])
        shutil.rmtree(vd.tmp, ignore_errors=True)
print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
