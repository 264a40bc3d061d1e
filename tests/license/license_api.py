# SPDX-License-Identifier: Apache-2.0
# vgpu-licensed's API end to end: expiry and renewal under the test clock (--clock-file), bad
# requests refused with clear errors, admin-only routes, forged and tampered leases refused by
# `vgpuctl license verify`, vgpuctl's views over the Unix socket and over TLS, and --init and the
# directory lock refusing a second use.
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from license_lib import LICENSED, VGPUCTL, Licensed, check  # noqa: E402

T0 = 1795600000


def expect_error(srv, status, code, method, path, body=None, raw=None, tls=False, headers=None,
                 admin=False, client=True):
    st, doc = srv.call(method, path, body=body, raw=raw, tls=tls, headers=headers, admin=admin,
                       client=client)
    check(st == status, "%s %s %r: status %d, want %d: %r" % (method, path, raw or body, st,
                                                             status, doc))
    check(isinstance(doc, dict) and doc["error"]["code"] == code and doc["error"]["message"],
          "%s %s: error body %r, want code %s" % (method, path, doc, code))


def test_expiry_and_renewal(srv):
    srv.pool("main", 1)
    st, a = srv.request("vgpu-a")
    check(st == 201 and a["expires"] == T0 + 100 and a["issued"] == T0, "grant: %r" % (a,))
    check(a["renew_after"] == T0 + 15, "renew_after %r" % a["renew_after"])
    expect_error(srv, 409, "NO_SEATS", "POST", "/v1/leases",
                 {"feature": "vgpu-compute", "vgpu_uuid": "vgpu-b", "host": "node-1"})
    srv.set_clock(T0 + 60)
    st, r = srv.call("POST", "/v1/leases/%s/renew" % a["id"])
    check(st == 200 and r["id"] == a["id"] and r["expires"] == T0 + 160, "renew: %r" % (r,))
    srv.set_clock(T0 + 159)
    check(len(srv.leases()) == 1, "still active at T0+159")
    srv.set_clock(T0 + 160)
    check(srv.leases() == [], "expired at T0+160")
    states = {l["id"]: l["state"] for l in srv.leases(all=True)}
    check(states[a["id"]] == "expired", "state %r" % states)
    st, pools = srv.call("GET", "/v1/pools")
    check(pools["pools"][0]["leased"] == 0 and pools["pools"][0]["free"] == 1, "seat freed")
    st, b = srv.request("vgpu-b")
    check(st == 201, "the freed seat goes to vgpu-b: %r" % (b,))
    expect_error(srv, 410, "LEASE_EXPIRED", "POST", "/v1/leases/%s/renew" % a["id"])
    st, _ = srv.call("DELETE", "/v1/leases/%s" % b["id"])
    check(st == 204, "release")
    expect_error(srv, 410, "LEASE_RELEASED", "POST", "/v1/leases/%s/renew" % b["id"])
    st, one = srv.call("GET", "/v1/leases/%s" % b["id"])
    check(st == 200 and one["state"] == "released", "lease state %r" % (one,))
    # A pool with an expiry cuts leases at it and stops granting after it.
    srv.pool("short", 5, feature="short", expires=T0 + 200)
    st, s = srv.request("vgpu-s", feature="short")
    check(st == 201 and s["expires"] == T0 + 200, "lease cut at pool expiry: %r" % (s,))
    srv.set_clock(T0 + 200)
    expect_error(srv, 422, "NO_POOL", "POST", "/v1/leases",
                 {"feature": "short", "vgpu_uuid": "vgpu-t", "host": "h"})
    print("expiry and renewal under the test clock: ok")
    return b


def test_bad_requests(srv):
    lease_body = {"feature": "vgpu-compute", "vgpu_uuid": "x", "host": "h"}
    cases = [
        (400, "BAD_REQUEST", "POST", "/v1/leases", None, b"{not json"),
        (400, "BAD_REQUEST", "POST", "/v1/leases", None, b"[1,2]"),
        (400, "BAD_REQUEST", "POST", "/v1/leases", None, b""),
        (400, "BAD_REQUEST", "POST", "/v1/leases", None, b'{"feature":"a","feature":"b"}'),
        (400, "BAD_REQUEST", "POST", "/v1/leases", {"feature": "vgpu-compute", "host": "h"}, None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, extra=1), None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, vgpu_uuid=7), None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, vgpu_uuid=""), None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, host="a\nb"), None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, host="x" * 200), None),
        (400, "BAD_REQUEST", "POST", "/v1/leases", dict(lease_body, feature="caf\u00e9"), None),
        (422, "NO_POOL", "POST", "/v1/leases", dict(lease_body, feature="nothing"), None),
        (404, "NO_SUCH_LEASE", "POST", "/v1/leases/00000000-0000-4000-8000-000000000000/renew",
         None, None),
        (404, "NO_SUCH_LEASE", "DELETE", "/v1/leases/not-a-lease!", None, None),
        (404, "NO_SUCH_LEASE", "GET", "/v1/leases/zzzz", None, None),
        (400, "BAD_REQUEST", "POST", "/v1/leases/00000000-0000-4000-8000-000000000000/renew",
         {"x": 1}, None),
        (404, "NOT_FOUND", "GET", "/v2/leases", None, None),
        (404, "NOT_FOUND", "GET", "/", None, None),
        (404, "NOT_FOUND", "GET", "/v1/leases/a/b/c", None, None),
        (404, "NO_SUCH_POOL", "GET", "/v1/pools/nope", None, None),
        (405, "METHOD_NOT_ALLOWED", "DELETE", "/v1/pools", None, None),
        (405, "METHOD_NOT_ALLOWED", "PUT", "/v1/leases", None, None),
        (405, "METHOD_NOT_ALLOWED", "GET", "/v1/leases/00000000-0000-4000-8000-000000000000/renew",
         None, None),
        (405, "METHOD_NOT_ALLOWED", "POST", "/v1/health", None, None),
    ]
    for status, code, method, path, body, raw in cases:
        expect_error(srv, status, code, method, path, body=body, raw=raw)
    pool = {"name": "p", "feature": "f", "seats": 1}
    admin_cases = [
        (400, "BAD_REQUEST", dict(pool, seats=-1)),
        (400, "BAD_REQUEST", dict(pool, seats="3")),
        (400, "BAD_REQUEST", dict(pool, seats=10 ** 12)),
        (400, "BAD_REQUEST", dict(pool, expires=T0 + 5)),
        (400, "BAD_REQUEST", dict(pool, colour="red")),
        (400, "BAD_REQUEST", {"feature": "f", "seats": 1}),
        (409, "POOL_EXISTS", dict(pool, name="main")),
    ]
    for status, code, body in admin_cases:
        expect_error(srv, status, code, "POST", "/v1/pools", body=body, tls=True, admin=True)
    # Admin routes over TLS need the token; the wrong one is refused.
    expect_error(srv, 401, "UNAUTHORIZED", "POST", "/v1/pools", body=pool, tls=True, client=False)
    expect_error(srv, 403, "FORBIDDEN", "POST", "/v1/pools", body=pool, tls=True)  # client token
    # Leases over TCP need the client token (the Unix socket's mode guards it there).
    lease = {"feature": "vgpu-compute", "vgpu_uuid": "x", "host": "h"}
    expect_error(srv, 401, "UNAUTHORIZED", "POST", "/v1/leases", body=lease, tls=True,
                 client=False)
    expect_error(srv, 403, "FORBIDDEN", "POST", "/v1/leases", body=lease, tls=True,
                 headers={"Authorization": "Bearer nope"})
    expect_error(srv, 401, "UNAUTHORIZED", "DELETE", "/v1/leases/%s" % ("0" * 36), tls=True,
                 client=False)
    expect_error(srv, 401, "UNAUTHORIZED", "GET", "/v1/leases", tls=True, client=False)
    expect_error(srv, 403, "FORBIDDEN", "GET", "/v1/leases", tls=True,
                 headers={"Authorization": "Bearer nope"})
    expect_error(srv, 403, "FORBIDDEN", "GET", "/v1/leases", tls=True,
                 headers={"Authorization": "Basic " + srv.token})
    st, doc = srv.call("POST", "/v1/leases", raw=b"x" * (65 * 1024))
    check(st == 413 and doc["error"]["code"] == "PAYLOAD_TOO_LARGE", "413: %r" % ((st, doc),))
    st, doc = srv.call("GET", "/v1/health", tls=True)
    check(st == 200 and doc["status"] == "ok", "the server still answers after all that")
    print("bad requests: %d refused with clear errors" % (len(cases) + len(admin_cases) + 9))


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def verify(pub, token, *extra):
    return subprocess.run([VGPUCTL, "license", "verify", "--key", pub, "--now", str(T0 + 1001)]
                          + list(extra) + [token], capture_output=True, text=True)


def test_forged(srv):
    st, doc = srv.call("POST", "/v1/leases", {"feature": "vgpu-compute", "vgpu_uuid": "vgpu-f",
                                              "host": "node-1"})
    check(st == 201, "grant for the forgery test: %r" % (doc,))
    tok = doc["token"]
    out = verify(srv.pub, tok, "--vgpu", "vgpu-f")
    check(out.returncode == 0, "genuine lease: %s" % out.stderr)
    check("License Status                       : Licensed (Expiry: 2026-11-" in out.stdout,
          "status line: %r" % out.stdout)
    ver, payload, sig = tok.split(".")
    p = json.loads(b64d(payload))
    forgeries = {}
    p2 = dict(p, exp=p["exp"] + 10 ** 7)
    forgeries["longer expiry"] = ".".join([ver, b64e(json.dumps(p2).encode()), sig])
    p3 = dict(p, vgpu="vgpu-other")
    forgeries["other vGPU"] = ".".join([ver, b64e(json.dumps(p3).encode()), sig])
    s = bytearray(b64d(sig))
    s[10] ^= 1
    forgeries["flipped signature bit"] = ".".join([ver, payload, b64e(bytes(s))])
    forgeries["no signature"] = ver + "." + payload + "."
    forgeries["garbage"] = "v1.AAAA.BBBB"
    for what, t in forgeries.items():
        out = verify(srv.pub, t)
        check(out.returncode == 1 and ("does not verify" in out.stderr
                                       or "not a well-formed" in out.stderr),
              "%s: rc %d %r" % (what, out.returncode, out.stderr))
    # Another server's key (the forger's own --init) refuses the genuine lease.
    other = Licensed()
    try:
        out = verify(other.pub, tok)
        check(out.returncode == 1 and "does not verify" in out.stderr, "other key: %r" % out.stderr)
    finally:
        other.cleanup()
    out = verify(srv.pub, tok, "--vgpu", "another-vgpu")
    check(out.returncode == 1 and "another vGPU" in out.stderr, "wrong vGPU: %r" % out.stderr)
    out = subprocess.run([VGPUCTL, "license", "verify", "--key", srv.pub, "--now",
                          str(T0 + 10 ** 8), tok], capture_output=True, text=True)
    check(out.returncode == 1 and "expired" in out.stderr and "Unlicensed" in out.stdout,
          "expired: %r %r" % (out.stdout, out.stderr))
    print("forged and tampered leases: %d refused" % (len(forgeries) + 3))


def test_vgpuctl(srv):
    out = srv.ctl("status")
    check(out.returncode == 0 and "Status                               : ok" in out.stdout,
          "status: %r %r" % (out.stdout, out.stderr))
    check("Server Time                          : 2026-11-" in out.stdout, out.stdout)
    out = srv.ctl("pools")
    check(out.returncode == 0 and "main" in out.stdout and "vgpu-compute" in out.stdout,
          "pools: %r" % out.stdout)
    out = srv.ctl("leases")
    check(out.returncode == 0 and "vgpu-f" in out.stdout and "active" in out.stdout,
          "leases: %r" % out.stdout)
    out = srv.ctl("--json", "pools")
    check(out.returncode == 0 and json.loads(out.stdout)["pools"][0]["name"] == "main",
          "--json pools")
    url = ["--url", "https://localhost:%d" % srv.port, "--ca", srv.cert]
    out = subprocess.run([VGPUCTL, "license"] + url + ["pools"], capture_output=True, text=True)
    check(out.returncode == 1 and "client token" in out.stderr, "pools over TLS, no token")
    ctok = os.path.join(srv.dir, "client-token")
    out = subprocess.run([VGPUCTL, "license"] + url + ["--token-file", ctok, "pools"],
                         capture_output=True, text=True)
    check(out.returncode == 0 and "main" in out.stdout, "pools over TLS: %r" % out.stderr)
    out = subprocess.run([VGPUCTL, "license"] + url + ["--token-file", ctok, "status"],
                         capture_output=True, text=True)
    check(out.returncode == 0 and "Free" in out.stdout, "status over TLS: %r" % out.stderr)
    out = subprocess.run([VGPUCTL, "license"] + url + ["leases"], capture_output=True, text=True)
    check(out.returncode == 1 and "admin token" in out.stderr, "leases over TLS, no token")
    tokf = os.path.join(srv.dir, "admin-token")
    out = subprocess.run([VGPUCTL, "license"] + url + ["--token-file", tokf, "pool-create", "tls",
                                                       "vgpu-compute", "3"],
                         capture_output=True, text=True)
    check(out.returncode == 0, "pool-create over TLS: %r" % out.stderr)
    out = subprocess.run([VGPUCTL, "license"] + url + ["--token-file", tokf, "leases", "--all"],
                         capture_output=True, text=True)
    check(out.returncode == 0 and "released" in out.stdout, "leases --all: %r" % out.stdout)
    other = Licensed()
    try:
        out = subprocess.run([VGPUCTL, "license", "--url", "https://localhost:%d" % srv.port,
                              "--ca", other.cert, "status"], capture_output=True, text=True)
        check(out.returncode == 1 and "does not verify" in out.stderr,
              "wrong CA: %r" % out.stderr)
    finally:
        other.cleanup()
    out = subprocess.run([VGPUCTL, "license", "--server", "/nonexistent.sock", "status"],
                         capture_output=True, text=True)
    check(out.returncode == 1 and "cannot reach the license server" in out.stderr, out.stderr)
    print("vgpuctl license status|pools|leases|pool-create: ok")


def test_init_and_lock(srv):
    out = subprocess.run([LICENSED, "--init", srv.dir], capture_output=True, text=True)
    check(out.returncode == 1 and "initialised already" in out.stderr, "re-init: %r" % out.stderr)
    out = subprocess.run([LICENSED, "--dir", srv.dir, "--socket", srv.sock + "2"],
                         capture_output=True, text=True, timeout=10)
    check(out.returncode == 1 and "another vgpu-licensed" in out.stderr, "lock: %r" % out.stderr)
    mode = os.stat(os.path.join(srv.dir, "lease-signing.key")).st_mode & 0o777
    check(mode == 0o600, "signing key mode %o" % mode)
    out = subprocess.run([LICENSED, "--dir", srv.dir, "--lease-seconds", "0"],
                         capture_output=True, text=True)
    check(out.returncode == 2, "bad option refused")
    print("--init and the directory lock: ok")


def main():
    srv = Licensed(extra=["--lease-seconds", "100"], clock=T0).start()
    try:
        test_expiry_and_renewal(srv)
        srv.set_clock(T0 + 1000)  # forward only: every lease above has expired or been released
        test_bad_requests(srv)
        test_forged(srv)
        test_vgpuctl(srv)
        test_init_and_lock(srv)
        srv.stop()
    except BaseException:
        print(srv.read_log()[-3000:])
        raise
    finally:
        srv.cleanup()
    print("license_api: ok")


if __name__ == "__main__":
    main()
