# SPDX-License-Identifier: Apache-2.0
# Migration and suspend-resume on the sim (docs/migration.md), for a guest using N MiB of its
# framebuffer (VGPU_BENCH_MIG_MIB, default "64 256 1024"; up to 8192 fits an H100-20C):
#  - migrate --gpu, stop and copy and pre-copy, with the guest busy (a kernel and a sync in a
#    loop: it writes its context's memory all the time) and mostly idle (a sync every 5 ms):
#    the guest's longest step (the pause it saw) and the call's total time;
#  - suspend (zstd, to the state directory) and resume: each call's time and the image's size.
# Baseline, in the same run: the host's memcpy bandwidth over N MiB, the move's "link". Goal
# (issue 8): stun <= 100 ms + N / bandwidth; pre-copy stun of a mostly idle guest independent of
# N. Prints BENCH lines: name value unit.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration"))
from vgpud_lib import BUILD, Vgpud, wait_for  # noqa: E402

GUEST = os.path.join(BUILD, "tests", "migration", "mig_guest")


def bench(name, value, unit):
    print("BENCH %s %.3f %s" % (name, value, unit), flush=True)


class Run:
    def __init__(self, vd, env):
        self.vd, self.env, self.n = vd, env, 0

    def guest(self, mib, seconds, idle):
        self.n += 1
        ready = os.path.join(self.vd.tmp, "ready-%d" % self.n)
        args = [GUEST, "--mib", str(mib), "--seconds", str(seconds), "--ready", ready]
        g = subprocess.Popen(args + (["--idle"] if idle else []), env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_for(lambda: os.path.exists(ready), 300), "guest not ready"
        time.sleep(0.3)
        return g

    def finish(self, g):
        out = g.communicate(timeout=900)[0].decode()
        if g.returncode != 0 or "PASS" not in out:
            raise RuntimeError("the guest failed:\n" + out)
        return float(out.split("step_ms_max=")[1].split()[0])

    def call(self, action, body=None):
        uuid = self.env["VGPU_UUID"]
        t0 = time.time()
        st, reply = self.vd.call("POST", "/v1/vgpus/%s/%s" % (uuid, action), body)
        assert st == 200, (st, reply)
        return time.time() - t0, reply

    def gpu(self):
        return self.vd.call("GET", "/v1/vgpus/" + self.env["VGPU_UUID"])[1]["gpu"]


def main():
    sizes = [int(x) for x in os.environ.get("VGPU_BENCH_MIG_MIB", "64 256 1024").split()]
    vd = Vgpud(gpus="H100-80GB,H100-80GB").start()
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock)
    try:
        st, v = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
        assert st == 201, (st, v)
        env["VGPU_UUID"] = v["uuid"]
        run = Run(vd, env)
        for mib in sizes:
            out = subprocess.run([GUEST, "--memcpy-mib", str(mib)], stdout=subprocess.PIPE,
                                 check=True).stdout.decode()
            gbps = float(out.split("memcpy_gbps=")[1].split()[0])
            goal_ms = 100 + mib * 1048576 / (gbps * 1e9) * 1e3
            bench("memcpy_bandwidth_%dMiB" % mib, gbps, "GB/s")
            bench("migrate_stun_goal_%dMiB" % mib, goal_ms, "ms")
            for load in ("busy", "idle"):
                for precopy in (False, True):
                    mode = "precopy" if precopy else "stopcopy"
                    g = run.guest(mib, 3 + mib // 200, load == "idle")
                    total, reply = run.call("migrate", {"gpu": 1 - run.gpu(), "precopy": precopy})
                    stun = run.finish(g)
                    name = "migrate_%s_%s_%dMiB" % (mode, load, mib)
                    bench(name + "_stun", stun, "ms")
                    bench(name + "_engine_stun", reply["transfer"]["stun_ms"], "ms")
                    bench(name + "_total", total * 1e3, "ms")
                    bench(name + "_stun_vs_goal", stun / goal_ms, "ratio")
            g = run.guest(mib, 4 + mib // 200, True)
            t_susp, reply = run.call("suspend")
            img = reply["transfer"]["image_bytes"]
            t_res, _ = run.call("resume")
            run.finish(g)
            bench("suspend_%dMiB" % mib, t_susp * 1e3, "ms")
            bench("resume_%dMiB" % mib, t_res * 1e3, "ms")
            bench("suspend_image_%dMiB" % mib, img / 1048576, "MiB")
    finally:
        vd.stop_all()
    return 0


if __name__ == "__main__":
    if not os.path.exists(GUEST):
        print("SKIP: %s is not built" % GUEST)
        sys.exit(77)
    sys.exit(main())
