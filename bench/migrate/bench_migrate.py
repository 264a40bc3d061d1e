# SPDX-License-Identifier: Apache-2.0
# Migration and suspend-resume on the sim (docs/migration.md), for a guest using N MiB of its
# framebuffer (VGPU_BENCH_MIG_MIB, default "64 256 1024"; up to 8192 fits an H100-20C):
#  - migrate --gpu, stop and copy and pre-copy, with the guest busy (a kernel and a sync in a
#    loop: it writes its context's memory all the time) and mostly idle (a sync every 5 ms):
#    the guest's longest step (the pause it saw) and the call's total time;
#  - suspend (zstd, to the state directory) and resume: each call's time and the image's size.
# Baseline, in the same run: the host's memcpy bandwidth over N MiB, the move's "link". Goal
# (issue 8): stun <= 100 ms + N / bandwidth; pre-copy stun of a mostly idle guest independent of
# N.
# Between two vgpuds over loopback TCP (VGPU_BENCH_MIG_REMOTE_MIB, default "64 256 1024 2048",
# about 2 minutes on 2 cores): each case a fresh vGPU on A whose guest (busy or mostly idle, as
# above) fills N MiB, moved to B (stop and copy, pre-copy), its guest checked alive there, then
# destroyed: the engine's pause (transfer.stun_ms), the move's time (transfer.seconds) and the
# bytes on the wire. Baseline, in the same run: loopback TCP bandwidth (two threads, one
# socket); the goal as above with it as the link. VGPU_BENCH_MIG_SECTIONS ("local remote") picks
# the sections.
# Prints BENCH lines: name value unit. A missed goal is reported, not failed; a guest that fails
# its own checks fails the run.
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "integration"))
from vgpud_lib import BUILD, UnixConnection, Vgpud, wait_for  # noqa: E402

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


def local_section():
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


def loopback_gbps(total=1 << 30, chunk=1 << 20, tries=5):
    """GB/s from one thread to another over one 127.0.0.1 TCP connection: best of tries, total
    bytes each."""
    srv = socket.create_server(("127.0.0.1", 0))
    tx = socket.create_connection(srv.getsockname())
    rx = srv.accept()[0]
    srv.close()
    data, buf, errors = b"\x5a" * chunk, memoryview(bytearray(chunk)), []
    best = float("inf")

    def drain():
        got = 0
        try:
            while got < total:
                n = rx.recv_into(buf)
                if n == 0:
                    raise OSError("loopback: the connection closed early")
                got += n
        except OSError as e:
            errors.append(e)

    try:
        for _ in range(tries):
            th = threading.Thread(target=drain)
            t0 = time.perf_counter()
            th.start()
            for _ in range(total // chunk):
                tx.sendall(data)
            th.join()
            if errors:
                raise errors[0]
            best = min(best, time.perf_counter() - t0)
    finally:
        tx.close()
        rx.close()
    return total / best / 1e9


def secret_file(tmp):
    path = os.path.join(tmp, "secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32).hex().encode())
    os.close(fd)
    return path


def listen_addr(vd):
    """The port vd's log says it takes migrations on."""
    pat = r"taking migrations on \S+ \(port (\d+)\)"
    if not wait_for(lambda: re.search(pat, vd.read_log()), 10):
        raise RuntimeError("vgpud takes no migrations; its log:\n" + vd.read_log())
    return "127.0.0.1:" + re.findall(pat, vd.read_log())[-1]


def post(vd, path, body, timeout=600):
    """vd.call's POST with a longer timeout: a big move outlasts its 30 s."""
    conn = UnixConnection(vd.sock, timeout)
    conn.request("POST", path, body=json.dumps(body).encode())
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    return resp.status, (json.loads(text) if text else None)


def guests_on(vd, uuid):
    st, v = vd.call("GET", "/v1/vgpus/" + uuid)
    return v["guests"] if st == 200 else None


def remote_case(a, b, to, mib, idle, precopy, n):
    """A fresh vGPU on a whose guest fills mib MiB, moved to b (to), its guest checked alive
    there and stopped, the vGPU destroyed. Returns (transfer, the call's seconds, the guest's
    longest step in ms)."""
    st, v = a.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
    assert st == 201, (st, v)
    uuid, g = v["uuid"], None
    ready = os.path.join(a.tmp, "remote-ready-%d" % n)
    stop = os.path.join(a.tmp, "remote-stop-%d" % n)
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=a.sock,
               VGPU_UUID=uuid)
    try:
        g = subprocess.Popen([GUEST, "--mib", str(mib), "--seconds", "1", "--until", stop,
                              "--ready", ready] + (["--idle"] if idle else []), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(ready) or g.poll() is not None, 300)
        if not os.path.exists(ready):
            raise RuntimeError("the guest did not fill its memory:\n" + g.communicate()[0].decode())
        time.sleep(0.3)
        t0 = time.time()
        st, reply = post(a, "/v1/vgpus/%s/migrate" % uuid, {"to": to, "precopy": precopy})
        call_s = time.time() - t0
        if st != 200 or reply.get("state") != "moved":
            raise RuntimeError("the move failed: %s %s" % (st, reply))
        if guests_on(a, uuid) is not None:
            raise RuntimeError("the vGPU is still on the source after its move")
        if not wait_for(lambda: guests_on(b, uuid) == 1, 30):
            raise RuntimeError("the guest did not re-attach on the target")
        time.sleep(0.2)
        if g.poll() is not None:
            raise RuntimeError("the guest died after the move:\n" + g.communicate()[0].decode())
        open(stop, "w").close()
        out = g.communicate(timeout=300)[0].decode()
        if g.returncode != 0 or "PASS" not in out:
            raise RuntimeError("the guest failed after the move:\n" + out)
        return reply["transfer"], call_s, float(out.split("step_ms_max=")[1].split()[0])
    finally:
        if g and g.poll() is None:
            g.kill()
            g.wait()
        for vd in (b, a):
            try:
                vd.call("DELETE", "/v1/vgpus/" + uuid)
            except OSError:
                pass  # that vgpud is gone: stop_all ends its engines


def remote_section():
    sizes = [int(x) for x in os.environ.get("VGPU_BENCH_MIG_REMOTE_MIB",
                                            "64 256 1024 2048").split()]
    if not sizes:
        return
    gbps = loopback_gbps()
    bench("loopback_tcp_bandwidth", gbps, "GB/s")
    tmp = tempfile.mkdtemp(prefix="bench-migrate-")
    secret = secret_file(tmp)
    extra = ["--migrate-secret", secret, "--migrate-listen", "127.0.0.1:0"]
    daemons, rows, n = [], [], 0
    try:
        for _ in range(2):
            daemons.append(Vgpud(gpus="H100-80GB", extra=extra))
            daemons[-1].start()
        a, b = daemons
        to = listen_addr(b)
        for mib in sizes:
            goal_ms = 100 + mib * 1048576 / (gbps * 1e9) * 1e3
            bench("migrate_remote_stun_goal_%dMiB" % mib, goal_ms, "ms")
            for load in ("busy", "idle"):
                for precopy in (False, True):
                    mode = "precopy" if precopy else "stopcopy"
                    n += 1
                    tr, call_s, pause = remote_case(a, b, to, mib, load == "idle", precopy, n)
                    name = "migrate_remote_%s_%s_%dMiB" % (mode, load, mib)
                    bench(name + "_stun_ms", tr["stun_ms"], "ms")
                    bench(name + "_total_s", tr["seconds"], "s")
                    bench(name + "_call_s", call_s, "s")
                    bench(name + "_guest_pause_ms", pause, "ms")
                    bench(name + "_wire_MiB", tr["wire_bytes"] / 1048576, "MiB")
                    bench(name + "_wire_vs_loopback",
                          tr["wire_bytes"] / tr["seconds"] / 1e9 / gbps, "ratio")
                    bench(name + "_stun_vs_goal", tr["stun_ms"] / goal_ms, "ratio")
                    rows.append((mib, mode, load, tr, call_s, pause, goal_ms))
    finally:
        for vd in daemons:
            vd.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    remote_summary(rows, gbps)


def remote_summary(rows, gbps):
    met = sum(1 for r in rows if r[3]["stun_ms"] <= r[6])
    worst = max(r[3]["stun_ms"] / r[6] for r in rows)
    bench("migrate_remote_cases", len(rows), "cases")
    bench("migrate_remote_cases_meeting_goal", met, "cases")
    bench("migrate_remote_stun_vs_goal_max", worst, "ratio")
    idle = {r[0]: r[3]["stun_ms"] for r in rows if r[1] == "precopy" and r[2] == "idle"}
    if len(idle) > 1:
        lo, hi = min(idle), max(idle)
        bench("migrate_remote_precopy_idle_stun_spread", max(idle.values()) -
              min(idle.values()), "ms")
        bench("migrate_remote_precopy_idle_stun_%dMiB_vs_%dMiB" % (hi, lo), idle[hi] / idle[lo],
              "ratio")
    print("\nBetween two vgpuds over loopback TCP (%.2f GB/s); goal: stun <= 100 ms + used / "
          "loopback" % gbps)
    print("%9s  %-8s  %-4s  %9s  %8s  %8s  %9s  %9s  %6s" % (
        "used", "mode", "load", "stun ms", "total s", "call s", "wire MiB", "goal ms", "ratio"))
    for mib, mode, load, tr, call_s, pause, goal_ms in rows:
        print("%5d MiB  %-8s  %-4s  %9.1f  %8.3f  %8.3f  %9.1f  %9.1f  %6.2f" % (
            mib, mode, load, tr["stun_ms"], tr["seconds"], call_s, tr["wire_bytes"] / 1048576,
            goal_ms, tr["stun_ms"] / goal_ms))
    print("%d of %d cases met the goal (worst %.2fx); pre-copy, idle guest: stun %s ms by size"
          % (met, len(rows), worst,
             ", ".join("%.1f" % idle[k] for k in sorted(idle)) or "-"), flush=True)


def main():
    sections = os.environ.get("VGPU_BENCH_MIG_SECTIONS", "local remote").split()
    if "local" in sections:
        local_section()
    if "remote" in sections:
        remote_section()
    return 0


if __name__ == "__main__":
    if not os.path.exists(GUEST):
        print("SKIP: %s is not built" % GUEST)
        sys.exit(77)
    sys.exit(main())
