# SPDX-License-Identifier: Apache-2.0
# The scheduler on the sim, asserted on accounted GPU time (so it holds on a noisy 2-core
# machine): four H100-20C on one H100-80GB, guests running the longrun example (many short
# launches) in some of them.
#  - equal share, 4 busy: each gets 25 % +- 1 % of the GPU's accounted time;
#  - 1 busy, 3 idle: best effort gives the busy one ~100 %, equal share and fixed share 25 %;
#  - fixed share with only one H100-20C on the GPU: 25 % (the empty slots stay idle);
#  - a policy change at run time shows in the next window; fixed share is refused in
#    heterogeneous mode; the policy survives a vgpud restart; vgpuctl sched shows and sets it.
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

# A measuring window in accounted time: 400 ms, 200 turns of 2 ms.
CLOCK_NS = int(float(os.environ.get("VGPU_SCHED_WINDOW_MS", "400")) * 1e6)
failures = []
vd = None
guests = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def vgpu(uuid):
    st, body = vd.call("GET", "/v1/vgpus/" + uuid)
    assert st == 200, (st, body)
    return body


def sched_counters(uuids):
    s = {u: vgpu(u).get("scheduler") for u in uuids}
    return s


def shares(uuids, clock_ns=None):
    """Each vGPU's share of its run queue's accounted clock over a window of clock_ns of it:
    long enough for hundreds of turns, however fast this build runs."""
    clock_ns = clock_ns or CLOCK_NS
    a = sched_counters(uuids)
    end = time.time() + 180
    while True:
        time.sleep(0.25)
        b = sched_counters(uuids)
        if b[uuids[0]]["clock_ns"] - a[uuids[0]]["clock_ns"] >= clock_ns or time.time() > end:
            break
    out = {}
    for u in uuids:
        dc = b[u]["clock_ns"] - a[u]["clock_ns"]
        out[u] = 100.0 * (b[u]["charged_ns"] - a[u]["charged_ns"]) / dc if dc else 0.0
    return out, b


def start_guest(uuid):
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
               VGPU_UUID=uuid)
    # Many short launches (each well under a slice), enough work to outlast the test.
    p = subprocess.Popen([os.path.join(BUILD, "examples", "longrun"), "--iters", "5000",
                          "--launches", "1000000"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    guests.append(p)
    return p


def stop_guests():
    for p in guests:
        if p.poll() is None:
            p.kill()
        p.wait()
    guests.clear()


def metrics():
    from vgpud_lib import UnixConnection
    conn = UnixConnection(vd.sock)
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, text


def set_sched(gpu, **body):
    return vd.call("PUT", "/v1/gpus/%d/scheduler" % gpu, body)


def busy(uuid):
    return wait_for(lambda: (vgpu(uuid).get("scheduler") or {}).get("charged_ns", 0) > 0, 20)


def main():
    global vd
    vd = Vgpud(gpus="H100-80GB,H100-80GB").start()
    uuids = []
    for _ in range(4):
        st, body = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
        assert st == 201, (st, body)
        uuids.append(body["uuid"])

    st, body = vd.call("GET", "/v1/gpus/0/scheduler")
    check(st == 200 and body["policy"] == "best-effort" and body["timeslice_ms"] == 2 and
          body["rmpvmrl"] == "0x00020000",
          "the default is best effort, 2 ms for H100-20C (max 4 per GPU): %s" % body)

    # 1 busy, 3 idle, best effort: the busy one gets the GPU.
    start_guest(uuids[0])
    check(busy(uuids[0]), "the busy guest's launches run under the scheduler")
    s, _ = shares(uuids)
    check(s[uuids[0]] > 98.0, "best effort, 1 busy of 4: the busy one gets %.1f %% (~100)"
          % s[uuids[0]])

    # At run time, to equal share: the idle vGPUs' turns stay idle.
    st, body = set_sched(0, policy="equal-share")
    check(st == 200 and body["policy"] == "equal-share", "set equal share: %s %s" % (st, body))
    time.sleep(0.3)
    s, _ = shares(uuids)
    check(abs(s[uuids[0]] - 25.0) <= 1.5,
          "equal share, 1 busy of 4: %.1f %% (25 +- 1.5)" % s[uuids[0]])

    st, body = set_sched(0, policy="fixed-share", timeslice_ms=3)
    check(st == 200 and body["timeslice_ms"] == 3 and body["rmpvmrl"] == "0x00030011",
          "set fixed share, 3 ms: %s" % body)
    time.sleep(0.3)
    s, _ = shares(uuids)
    check(abs(s[uuids[0]] - 25.0) <= 1.5,
          "fixed share, 1 busy of 4 H100-20C: %.1f %% (25 +- 1.5)" % s[uuids[0]])

    # 4 busy, equal share: 25 % each.
    set_sched(0, policy="equal-share", timeslice_ms=2)
    for u in uuids[1:]:
        start_guest(u)
    for u in uuids[1:]:
        check(busy(u), "guest on %s runs" % u[:8])
    time.sleep(0.5)
    s, last = shares(uuids, CLOCK_NS * 3 // 2)
    for u in uuids:
        check(abs(s[u] - 25.0) <= 1.0, "equal share, 4 busy: %s gets %.2f %% (25 +- 1)"
              % (u[:8], s[u]))
    check(all(last[u]["slices"] > 10 for u in uuids), "every vGPU got many slices: %s"
          % [last[u]["slices"] for u in uuids])
    out = subprocess.run([os.path.join(BUILD, "bin", "vgpuctl"), "--socket", vd.sock, "query",
                          uuids[1]], capture_output=True, text=True)
    util = [line for line in out.stdout.splitlines() if line.strip().startswith("Gpu")]
    check(out.returncode == 0 and len(util) == 1 and util[0].strip().endswith("%") and
          20 <= float(util[0].split(":")[1].strip(" %")) <= 30,
          "vgpuctl query shows the busy vGPU's utilization: %s" % util)
    # GET /metrics shows the same counters, per vGPU, in DCGM exporter's style.
    conn_st, text = metrics()
    check(conn_st == 200 and 'vgpu_uuid="%s"' % uuids[1] in text and
          "DCGM_FI_DEV_GPU_UTIL" in text and "vgpu_sched_slices_total" in text,
          "GET /metrics carries the vGPUs' utilization and scheduler counters")
    slices = [line for line in text.splitlines()
              if line.startswith("vgpu_sched_slices_total") and uuids[1] in line]
    check(len(slices) == 1 and float(slices[0].rsplit(" ", 1)[1]) > 10,
          "vgpu_sched_slices_total of a busy vGPU: %s" % slices)
    stop_guests()

    # Only one H100-20C on a GPU, fixed share: its share is 1/4, not 100 %.
    st, body = vd.call("POST", "/v1/vgpus", {"gpu": 1, "type": "H100-20C"})
    assert st == 201, (st, body)
    alone = body["uuid"]
    set_sched(1, policy="fixed-share")
    start_guest(alone)
    check(busy(alone), "the lone guest runs")
    s, _ = shares([alone])
    check(abs(s[alone] - 25.0) <= 1.5, "fixed share, the only H100-20C: %.1f %% (25 +- 1.5)"
          % s[alone])
    stop_guests()

    # Refusals, and persistence.
    st, body = set_sched(0, policy="no-such-policy")
    check(st == 400, "an unknown policy is refused: %s" % st)
    st, body = set_sched(0, timeslice_ms=45)
    check(st == 200 and body["timeslice_ms"] == 30, "a 45 ms slice is capped at 30: %s" % body)
    st, body = vd.call("DELETE", "/v1/vgpus/" + alone)
    st, body = vd.call("PUT", "/v1/gpus/1/mode", {"mode": "heterogeneous"})
    check(st == 409 and body["error"]["code"] == "VGPU_ESCHED_MIX",
          "heterogeneous mode is refused while fixed share is set: %s %s" % (st, body))
    set_sched(1, policy="equal-share")
    st, body = vd.call("PUT", "/v1/gpus/1/mode", {"mode": "heterogeneous"})
    check(st == 200, "after equal share, heterogeneous mode: %s" % st)
    st, body = set_sched(1, policy="fixed-share")
    check(st == 409 and body["error"]["code"] == "VGPU_ESCHED_MIX",
          "fixed share is refused with mixed sizes: %s %s" % (st, body))

    vd.kill()
    vd.start()
    st, body = vd.call("GET", "/v1/gpus/0/scheduler")
    check(st == 200 and body["policy"] == "equal-share" and body["timeslice_ms"] == 30,
          "the scheduler survives a vgpud restart: %s" % body)
    out = subprocess.run([os.path.join(BUILD, "bin", "vgpuctl"), "--socket", vd.sock, "sched",
                          "--gpu", "0", "--policy", "best-effort", "--timeslice-ms", "5"],
                         capture_output=True, text=True)
    check(out.returncode == 0 and "Best Effort" in out.stdout and "5 ms" in out.stdout and
          "0x00050000" in out.stdout, "vgpuctl sched sets it:\n" + out.stdout + out.stderr)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        failures.append("exception")
    finally:
        stop_guests()
        if vd:
            if failures:
                print(vd.read_log()[-3000:])
            vd.stop_all()
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)
