# SPDX-License-Identifier: Apache-2.0
# The scheduler with real engines on the sim: for N busy vGPUs under equal share and slices of
# 1, 2, 10, 30 ms, the fairness error (max |share - 1/N| of accounted time over a window) and the
# time lost to switching (accounted work per wall second with N vGPUs taking turns, against one
# vGPU alone in the same run). Prints a table and BENCH lines. Needs $VGPU_BUILD.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "integration"))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

NS = [int(x) for x in os.environ.get("VGPU_BENCH_SCHED_N", "2,4,8,16").split(",")]
SLICES = [int(x) for x in os.environ.get("VGPU_BENCH_SCHED_MS", "1,2,10,30").split(",")]
WINDOW = float(os.environ.get("VGPU_BENCH_SCHED_WINDOW", "3"))


def counters(vd, uuids):
    out = {}
    for u in uuids:
        st, body = vd.call("GET", "/v1/vgpus/" + u)
        out[u] = body["scheduler"]
    return out


def measure(vd, uuids):
    """(shares %, accounted ns of work per wall second) over a window."""
    a, t0 = counters(vd, uuids), time.time()
    time.sleep(WINDOW)
    b, t1 = counters(vd, uuids), time.time()
    dc = b[uuids[0]]["clock_ns"] - a[uuids[0]]["clock_ns"]
    work = sum(b[u]["charged_ns"] - a[u]["charged_ns"] for u in uuids)
    shares = {u: 100.0 * (b[u]["charged_ns"] - a[u]["charged_ns"]) / dc if dc else 0.0
              for u in uuids}
    return shares, work / (t1 - t0)


def start(env, uuid):
    return subprocess.Popen([os.path.join(BUILD, "examples", "longrun"), "--iters", "5000",
                             "--launches", "1000000"], env=dict(env, VGPU_UUID=uuid),
                            stdout=subprocess.DEVNULL)


def main():
    vd = Vgpud(gpus="H100-80GB").start()
    guests = []
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock)
    try:
        rows = []
        for n in NS:
            uuids = []
            for _ in range(n):
                st, body = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-5C"})
                assert st == 201, body
                uuids.append(body["uuid"])
            for ms in SLICES:
                # The baseline: one busy vGPU alone, under best effort it has the GPU.
                vd.call("PUT", "/v1/gpus/0/scheduler", {"policy": "best-effort",
                                                        "timeslice_ms": ms})
                guests.append(start(env, uuids[0]))
                wait_for(lambda: counters(vd, uuids[:1])[uuids[0]]["charged_ns"] > 0, 20)
                time.sleep(0.5)
                _, alone = measure(vd, uuids[:1])
                # Then all N busy under equal share.
                vd.call("PUT", "/v1/gpus/0/scheduler", {"policy": "equal-share",
                                                        "timeslice_ms": ms})
                for u in uuids[1:]:
                    guests.append(start(env, u))
                for u in uuids[1:]:
                    wait_for(lambda u=u: counters(vd, [u])[u]["charged_ns"] > 0, 30)
                time.sleep(0.5)
                shares, together = measure(vd, uuids)
                err = max(abs(shares[u] - 100.0 / n) for u in uuids)
                lost = 100.0 * (1.0 - together / alone) if alone else 0.0
                rows.append((n, ms, err, lost, alone, together))
                for p in guests:
                    p.kill()
                    p.wait()
                guests.clear()
                time.sleep(0.3)
            for u in uuids:
                vd.call("DELETE", "/v1/vgpus/" + u + "?force=1")
        print("%4s %6s %14s %14s %16s %16s" % ("N", "slice", "fairness err", "switch loss",
                                               "alone (ns/s)", "N busy (ns/s)"))
        for n, ms, err, lost, alone, together in rows:
            print("%4d %4d ms %12.2f %% %12.1f %% %16.0f %16.0f" % (n, ms, err, lost, alone,
                                                                  together))
        for n, ms, err, lost, _, _ in rows:
            print("BENCH sched_live_fairness_err_N%d_%dms %.3f pct" % (n, ms, err))
            print("BENCH sched_live_switch_loss_N%d_%dms %.2f pct" % (n, ms, lost))
    finally:
        for p in guests:
            p.kill()
            p.wait()
        vd.stop_all()


if __name__ == "__main__":
    main()
