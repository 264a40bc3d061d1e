# SPDX-License-Identifier: Apache-2.0
# Seats under concurrency and crashes: many clients (Unix socket and TLS) racing for the last seats
# get exactly as many leases as there are seats; and with vgpu-licensed killed (-9) while clients
# keep requesting, every lease a client was granted is still there after a restart, no vGPU holds
# two leases, and no pool is over-issued.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from license_lib import Licensed, check  # noqa: E402


def test_race(srv):
    srv.pool("race", 10)
    results = []
    lock = threading.Lock()
    start = threading.Barrier(40)

    def client(i):
        start.wait()
        st, doc = srv.request("race-%d" % i, tls=(i % 2 == 1))
        with lock:
            results.append((st, doc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted = [d for s, d in results if s == 201]
    refused = [d for s, d in results if s == 409]
    check(len(granted) == 10, "race: %d granted, want 10: %r" % (len(granted), results[:3]))
    check(len(refused) == 30, "race: %d refused" % len(refused))
    check(all(d["error"]["code"] == "NO_SEATS" for d in refused), "race: refusal code")
    check(len({d["id"] for d in granted}) == 10, "race: duplicate lease IDs")
    st, pools = srv.call("GET", "/v1/pools")
    check(pools["pools"][0]["leased"] == 10 and pools["pools"][0]["free"] == 0,
          "race: pool counts %r" % pools)
    print("race: 40 clients, 10 seats: 10 granted, 30 refused with NO_SEATS")


def test_kill9(srv):
    seats = 1000
    srv.pool("crash", seats, feature="crash-feature")
    acked = {}  # vgpu -> lease id, for every 201/200 a client received
    lock = threading.Lock()
    stop = threading.Event()
    counter = [0]

    def client(k):
        while not stop.is_set():
            with lock:
                counter[0] += 1
                n = counter[0]
            vgpu = "crash-%d" % n
            try:
                st, doc = srv.request(vgpu, feature="crash-feature", tls=(k % 2 == 1))
            except (OSError, ValueError, Exception):
                time.sleep(0.005)
                continue
            if st in (200, 201):
                with lock:
                    acked[vgpu] = doc["id"]
            elif st == 409:
                stop.set()

    for cycle in range(4):
        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.15 + 0.05 * cycle)
        srv.kill()  # SIGKILL, mid-request for some clients
        stop.set()
        for t in threads:
            t.join()
        stop.clear()
        srv.start()
        active = [l for l in srv.leases() if l["feature"] == "crash-feature"]
        by_vgpu = {}
        for l in active:
            check(l["vgpu_uuid"] not in by_vgpu, "kill9: %s holds two leases" % l["vgpu_uuid"])
            by_vgpu[l["vgpu_uuid"]] = l["id"]
        for vgpu, lid in acked.items():
            check(by_vgpu.get(vgpu) == lid,
                  "kill9 cycle %d: acknowledged lease %s of %s lost" % (cycle, lid, vgpu))
        check(len(active) <= seats, "kill9: %d leases for %d seats" % (len(active), seats))
        # A client that retries after the crash gets its lease back, not a second seat.
        for vgpu, lid in list(acked.items())[:5]:
            st, doc = srv.request(vgpu, feature="crash-feature")
            check(st == 200 and doc["id"] == lid, "kill9: retry of %s gave %r" % (vgpu, (st, doc)))
        if len(active) >= seats:
            break
    print("kill9: %d kill -9 cycles, %d acknowledged leases all kept, none duplicated"
          % (cycle + 1, len(acked)))


def test_kill9_full(srv):
    """Clients race for the last seats of a small pool while the server is killed: never more
    leases than seats, and in the end exactly as many."""
    seats = 15
    srv.pool("small", seats, feature="small")
    stop = threading.Event()
    counter = [0]
    lock = threading.Lock()

    def client(k):
        while not stop.is_set():
            with lock:
                counter[0] += 1
                n = counter[0]
            try:
                srv.request("small-%d" % n, feature="small", tls=(k % 2 == 0))
            except Exception:
                time.sleep(0.002)

    for cycle in range(3):
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.02 + 0.03 * cycle)
        srv.kill()
        stop.set()
        for t in threads:
            t.join()
        stop.clear()
        srv.start()
        active = [l for l in srv.leases() if l["feature"] == "small"]
        check(len(active) <= seats, "kill9 full: %d leases for %d seats" % (len(active), seats))
        check(len({l["vgpu_uuid"] for l in active}) == len(active), "kill9 full: duplicates")
    # Fill up what is left: exactly `seats` in the end, the next one refused.
    n = 0
    while True:
        st, doc = srv.request("small-fill-%d" % n, feature="small")
        if st != 201:
            check(st == 409 and doc["error"]["code"] == "NO_SEATS", "fill: %r" % ((st, doc),))
            break
        n += 1
    active = [l for l in srv.leases() if l["feature"] == "small"]
    st, pool = srv.call("GET", "/v1/pools/small")
    check(len(active) == seats and pool["leased"] == seats and pool["free"] == 0,
          "kill9 full: %d active, pool %r" % (len(active), pool))
    print("kill9 on a full pool: %d seats, never over-issued across 3 kill -9 cycles" % seats)


def main():
    srv = Licensed().start()
    try:
        test_race(srv)
        test_kill9(srv)
        test_kill9_full(srv)
        srv.stop()
    except BaseException:
        print(srv.read_log()[-3000:])
        raise
    finally:
        srv.cleanup()
    print("license_seats: ok")


if __name__ == "__main__":
    main()
