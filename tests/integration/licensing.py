# SPDX-License-Identifier: Apache-2.0
# vgpud holding leases for its vGPUs from a vgpu-licensed with one seat, grace period 3 s:
# the first vGPU with a guest gets the seat ("Licensed (Expiry: ...)", metric 1); the second runs
# unrestricted for the grace period, then restricted: the scheduler gives it a minimal share of
# accounted GPU time while both are busy; when the first guest leaves, its lease goes back and the
# second gets it and its full share. Without --license-server, licensing is off ("Not Required").
import os
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "license"))
from license_lib import Licensed  # noqa: E402
from vgpud_lib import BUILD, UnixConnection, Vgpud, wait_for  # noqa: E402

failures = []
vd = lic = None
guests = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def vgpu(uuid):
    st, body = vd.call("GET", "/v1/vgpus/" + uuid)
    assert st == 200, (st, body)
    return body


def status(uuid):
    return vgpu(uuid).get("license_status", "")


def start_guest(uuid):
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(BUILD, "lib"), VGPU_SOCKET=vd.sock,
               VGPU_UUID=uuid)
    p = subprocess.Popen([os.path.join(BUILD, "examples", "longrun"), "--iters", "5000",
                          "--launches", "1000000"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    guests.append(p)
    return p


def shares(uuids, clock_ns=300e6):
    """Shares of accounted time over 300 ms of it (however fast this build runs)."""
    a = {u: vgpu(u)["scheduler"] for u in uuids}
    end = time.time() + 180
    while True:
        time.sleep(0.25)
        b = {u: vgpu(u)["scheduler"] for u in uuids}
        if b[uuids[0]]["clock_ns"] - a[uuids[0]]["clock_ns"] >= clock_ns or time.time() > end:
            break
    dc = b[uuids[0]]["clock_ns"] - a[uuids[0]]["clock_ns"]
    return {u: 100.0 * (b[u]["charged_ns"] - a[u]["charged_ns"]) / dc if dc else 0.0
            for u in uuids}


def metric(uuid):
    conn = UnixConnection(vd.sock)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith("DCGM_FI_DEV_VGPU_LICENSE_STATUS") and uuid in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    global vd, lic
    lic = Licensed().start()
    lic.pool("compute", 1)
    vd = Vgpud(gpus="H100-80GB", extra=["--license-server", lic.sock, "--license-key", lic.pub,
                                        "--license-grace", "3"]).start()
    uuids = []
    for _ in range(2):
        st, body = vd.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100-20C"})
        assert st == 201, (st, body)
        uuids.append(body["uuid"])
    a, b = uuids
    check(status(a) == "N/A (no guest attached)", "no guest, no lease: %s" % status(a))

    ga = start_guest(a)
    check(wait_for(lambda: status(a).startswith("Licensed (Expiry: "), 15),
          "the first vGPU with a guest is licensed: %s" % status(a))
    check(vgpu(a)["licensed"] is True and metric(a) == 1.0,
          "licensed in the API and DCGM_FI_DEV_VGPU_LICENSE_STATUS 1")
    leases = lic.leases()
    check(len(leases) == 1 and leases[0]["vgpu_uuid"] == a, "the server holds its lease")

    start_guest(b)
    check(wait_for(lambda: status(b) == "Unlicensed (Unrestricted)", 15),
          "the second, no seat left: unlicensed, unrestricted during the grace: %s" % status(b))
    check(metric(b) == 0.0, "DCGM_FI_DEV_VGPU_LICENSE_STATUS 0")
    check(wait_for(lambda: status(b) == "Unlicensed (Restricted)", 15),
          "after the 3 s grace: restricted: %s" % status(b))
    time.sleep(0.5)
    s = shares(uuids)
    # (a sanitizer build's slower guests, or a loaded machine, leave the GPU idle now and then:
    # the licensed one's share is not all the rest, but it has most of the busy time)
    check(s[b] < 8.0 and s[a] > 50.0 and s[a] > 10 * s[b],
          "both busy, best effort: licensed %.1f %%, restricted %.1f %% (minimal)" % (s[a], s[b]))
    out = subprocess.run([os.path.join(BUILD, "bin", "vgpuctl"), "--socket", vd.sock, "query", b],
                         capture_output=True, text=True)
    check("License Status               : Unlicensed (Restricted)" in out.stdout,
          "vgpuctl query shows it:\n" + out.stdout[:600])

    # The licensed guest leaves: its lease goes back, and the other gets the seat.
    ga.kill()
    ga.wait()
    check(wait_for(lambda: status(b).startswith("Licensed (Expiry: "), 20),
          "the seat passes to the second vGPU: %s" % status(b))
    check(wait_for(lambda: all(lease["vgpu_uuid"] == b for lease in lic.leases()), 10),
          "the first vGPU's lease was returned: %s" % lic.leases())
    time.sleep(0.5)
    s = shares([b])
    check(s[b] > 95.0, "licensed again, alone: %.1f %% (full share)" % s[b])


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        failures.append("exception")
    finally:
        for p in guests:
            if p.poll() is None:
                p.kill()
            p.wait()
        if vd:
            if failures:
                print(vd.read_log()[-3000:])
            vd.stop_all()
        if lic:
            lic.cleanup()
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)
