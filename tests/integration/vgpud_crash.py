#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Crash safety: vgpud is killed with SIGKILL at random moments of a create/destroy loop and
# restarted, many times. After each restart: every acknowledged vGPU is there and running with its
# engine, every acknowledged destroy stayed done, what was in flight is either whole or gone, and
# engines, sockets and framebuffer reservations agree exactly with the vGPUs (nothing leaked).
import os
import random
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgpud_lib import Vgpud, engine_args, engine_pids, wait_for  # noqa: E402

SECONDS = float(os.environ.get("VGPU_CRASH_SECONDS", "20"))
TYPES = ["H100-5C", "H100-10C", "H100-20C", "H100-4C"]


def check(d, acked, destroyed, inflight):
    s, b = d.call("GET", "/v1/vgpus")
    assert s == 200
    now = {v["uuid"]: v for v in b["vgpus"]}
    for u in acked - destroyed - inflight:
        assert u in now, "acknowledged vGPU %s lost" % u
    for u in destroyed:
        assert u not in now, "acknowledged destroy of %s undone" % u
    for v in now.values():
        assert v["state"] == "running", v
    # Engines: exactly one live engine per vGPU, holding that vGPU's range.
    eng = {}
    for p in engine_pids():
        a = engine_args(p)
        if d.state in a.get("control", ""):
            assert a["uuid"] not in eng, "two engines for %s" % a["uuid"]
            eng[a["uuid"]] = (p, a)
    assert set(eng) == set(now), ("engines", sorted(eng), "vgpus", sorted(now))
    for u, (p, a) in eng.items():
        v = now[u]
        assert p == v["engine_pid"], (p, v)
        assert int(a["fb-size"]) == v["fb_size"]
        assert int(a["device-address"], 0) == v["device_address"]
    # Framebuffer ranges never overlap and never pass the end of the GPU.
    ranges = sorted((v["fb_offset"], v["fb_offset"] + v["fb_size"]) for v in now.values())
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        assert a1 <= b0, ranges
    assert all(r[1] <= 80 << 30 for r in ranges)
    g = d.call("GET", "/v1/gpus/0")[1]
    assert g["fb_used_mib"] == sum(v["fb_mib"] for v in now.values())
    # Nothing left in the engines directory but what live vGPUs own.
    for name in os.listdir(os.path.join(d.state, "engines")):
        assert name[:36] in now, "leftover %s" % name
    return now


def main():
    d = Vgpud(gpus="H100-80GB").start()
    assert d.call("PUT", "/v1/gpus/0/mode", {"mode": "heterogeneous"})[0] == 200
    acked, destroyed = set(), set()
    rounds = ops = 0
    rng = random.Random(int(os.environ.get("VGPU_CRASH_SEED", "1")))
    end = time.time() + SECONDS
    ok = False
    try:
        while time.time() < end:
            live = sorted(acked - destroyed)
            inflight = set()
            killer = threading.Timer(rng.uniform(0.005, 0.3), d.kill)
            killer.start()
            try:
                while True:
                    if live and rng.random() < 0.45:
                        u = live.pop(rng.randrange(len(live)))
                        inflight = {u}
                        s, _ = d.call("DELETE", "/v1/vgpus/" + u)
                        inflight = set()
                        if s == 204:
                            destroyed.add(u)
                        else:
                            assert s == 404, s
                    else:
                        s, v = d.call("POST", "/v1/vgpus", {"type": rng.choice(TYPES)})
                        if s == 201:
                            acked.add(v["uuid"])
                            live.append(v["uuid"])
                        else:
                            assert s == 422, (s, v)
                    ops += 1
            except (ConnectionError, OSError):
                pass  # vgpud died mid-call: that call was never acknowledged
            killer.join()
            d.kill()
            d.start()
            now = check(d, acked, destroyed, inflight)
            # A destroy in flight either finished or did not; a create in flight either made a
            # whole vGPU or nothing. Track what is there from here on.
            destroyed |= inflight - set(now)
            acked |= set(now)
            rounds += 1
        ok = True
    finally:
        if ok:
            for u in d.call("GET", "/v1/vgpus")[1]["vgpus"]:
                d.call("DELETE", "/v1/vgpus/" + u["uuid"])
            assert wait_for(lambda: not [p for p in engine_pids()
                                         if d.state in engine_args(p).get("control", "")])
        else:
            print(d.read_log()[-4000:])
        d.stop_all()
        shutil.rmtree(d.tmp, ignore_errors=True)
    print("crash rounds: %d, operations: %d, acknowledged creates: %d, destroys: %d"
          % (rounds, ops, len(acked), len(destroyed)))
    assert rounds >= 3
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
