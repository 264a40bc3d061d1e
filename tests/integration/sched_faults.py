# SPDX-License-Identifier: Apache-2.0
# The scheduler when a guest's worker dies hard (docs/scheduling.md, "Counts per process"): with
# one worker process per guest (VGPU_ENGINE_WORKERS=1, the cuda backend's way), a worker
# SIGKILLed while its guest computes, again and again, never stops the GPU. A bystander vGPU's
# guest on the same GPU goes on getting slices throughout and finishes correctly; the vGPU whose
# worker died serves a new guest afterwards.
import os
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")
KILLS = 6
failures = []
vd = None
procs = []
n_files = [0]


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def guest(uuid, *args):
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
               VGPU_UUID=uuid)
    p = subprocess.Popen([GUEST] + list(args), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def running_guest(uuid):
    """A guest computing until told to stop: (process, stop file), once its data is in place."""
    n_files[0] += 1
    stop = os.path.join(vd.tmp, "stop%d" % n_files[0])
    ready = os.path.join(vd.tmp, "ready%d" % n_files[0])
    p = guest(uuid, "--mib", "4", "--seconds", "0.1", "--until", stop, "--ready", ready)
    ok = wait_for(lambda: os.path.exists(ready) or p.poll() is not None, 60)
    return (p, stop) if ok and p.poll() is None else (None, stop)


def worker_of(guest_pid):
    """The pid of the engine worker serving guest_pid, or None."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if "--worker" in args and "--guest-pid" in args and \
                args[args.index("--guest-pid") + 1] == str(guest_pid):
            return int(d)
    return None


def charged(uuid):
    st, v = vd.call("GET", "/v1/vgpus/" + uuid)
    return ((v or {}).get("scheduler") or {}).get("charged_ns", 0)


def progresses(uuid, timeout=20):
    """Whether vGPU uuid is charged more GPU time within timeout seconds."""
    c0 = charged(uuid)
    return wait_for(lambda: charged(uuid) > c0, timeout, 0.05)


def main():
    global vd
    os.environ["VGPU_ENGINE_WORKERS"] = "1"  # the engines vgpud starts inherit it
    vd = Vgpud(gpus="H100-80GB").start()
    uuids = []
    for _ in range(2):
        st, body = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
        assert st == 201, (st, body)
        uuids.append(body["uuid"])
    ua, ub = uuids
    # equal share: each vGPU gets turns whether it has work or not, so a vGPU that only looks busy
    # would be granted every other slice
    st, _ = vd.call("PUT", "/v1/gpus/0/scheduler", {"policy": "equal-share"})
    check(st == 200, "equal share on GPU 0: %s" % st)

    by, by_stop = running_guest(ub)
    check(by is not None, "the bystander's guest runs on %s" % ub[:8])
    check(by is not None and worker_of(by.pid) is not None,
          "it is served by a worker process of its own")
    for i in range(KILLS):
        g, _ = running_guest(ua)
        w = worker_of(g.pid) if g else None
        if not g or not w:
            check(False, "kill %d: a guest with a worker runs on %s" % (i, ua[:8]))
            continue
        # let it compute a little, so that the kill lands mid-launch or mid-wait
        time.sleep(0.05 + 0.05 * i)
        os.kill(w, signal.SIGKILL)
        try:
            out = g.communicate(timeout=60)[0].decode(errors="replace")
            ended = True
        except subprocess.TimeoutExpired:
            g.kill()
            out = g.communicate()[0].decode(errors="replace")
            ended = False
        check(ended and g.returncode != 0,
              "kill %d: the guest whose worker was killed ends with an error (rc %s: %s)"
              % (i, g.returncode, out.strip().splitlines()[-1:] if out.strip() else "-"))
        check(progresses(ub), "kill %d: the bystander vGPU still gets GPU time" % i)
    # the vGPU whose workers died serves again
    p = guest(ua, "--mib", "2", "--iters", "64")
    try:
        out = p.communicate(timeout=60)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out = "HUNG"
    check(p.returncode == 0 and "PASS" in out,
          "after that, a new guest on %s computes correctly (%s)"
          % (ua[:8], out.strip().splitlines()[-1:]))
    if by:
        open(by_stop, "w").close()
        try:
            out = by.communicate(timeout=90)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            by.kill()
            out = by.communicate()[0].decode(errors="replace") + " (HUNG: killed)"
        check(by.returncode == 0 and "PASS" in out,
              "the bystander's computation is correct (%s)" % out.strip().splitlines()[-2:])


if __name__ == "__main__":
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
            if failures:
                print(vd.read_log()[-3000:])
            vd.stop_all()
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)
