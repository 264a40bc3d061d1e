# SPDX-License-Identifier: Apache-2.0
# Helpers for the licensing integration tests: make a server directory with `vgpu-licensed --init`,
# start and kill -9 the server, and talk HTTP/1.1 to it over its Unix socket or TCP+TLS.
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile

BUILD = os.environ.get("VGPU_BUILD", "build")
LICENSED = os.path.join(BUILD, "bin", "vgpu-licensed")
VGPUCTL = os.path.join(BUILD, "bin", "vgpuctl")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Licensed:
    """A vgpu-licensed on its own directory, socket and TLS port."""

    def __init__(self, extra=(), clock=None):
        self.tmp = tempfile.mkdtemp(prefix="vgpu-lic-test-")
        self.dir = os.path.join(self.tmp, "srv")
        self.sock = os.path.join(self.tmp, "licensed.sock")
        self.port = free_port()
        self.extra = list(extra)
        self.clock_file = None
        if clock is not None:
            self.clock_file = os.path.join(self.tmp, "clock")
            self.set_clock(clock)
            self.extra += ["--clock-file", self.clock_file]
        out = subprocess.run([LICENSED, "--init", self.dir, "--hostname", "testhost"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        with open(os.path.join(self.dir, "admin-token")) as f:
            self.token = f.read().strip()
        with open(os.path.join(self.dir, "client-token")) as f:
            self.client_token = f.read().strip()
        self.cert = os.path.join(self.dir, "tls.crt")
        self.pub = os.path.join(self.dir, "lease-signing.pub")
        self.proc = None

    def set_clock(self, t):
        with open(self.clock_file + ".new", "w") as f:
            f.write("%d\n" % t)
        os.rename(self.clock_file + ".new", self.clock_file)

    def start(self):
        self.log = open(os.path.join(self.tmp, "licensed.log"), "ab")
        self.proc = subprocess.Popen(
            [LICENSED, "--dir", self.dir, "--socket", self.sock,
             "--listen", "127.0.0.1:%d" % self.port] + self.extra,
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        if line.strip() != b"READY":
            self.proc.wait(10)
            raise RuntimeError("vgpu-licensed did not start: %r; log:\n%s" % (line, self.read_log()))
        return self

    def read_log(self):
        with open(os.path.join(self.tmp, "licensed.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self):
        """SIGTERM: the server must exit 0 with a clean log (no sanitizer report, no leak)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(10)
            log = self.read_log()
            if rc != 0 or "Sanitizer" in log or "runtime error" in log:
                raise AssertionError("vgpu-licensed exited %d; log:\n%s" % (rc, log[-4000:]))

    def cleanup(self):
        self.kill(signal.SIGTERM)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def conn(self, tls=False, timeout=30):
        if tls:
            ctx = ssl.create_default_context(cafile=self.cert)
            return http.client.HTTPSConnection("localhost", self.port, context=ctx,
                                               timeout=timeout)
        return UnixConnection(self.sock, timeout=timeout)

    def call(self, method, path, body=None, raw=None, tls=False, admin=False, headers=None,
             client=True):
        """Returns (status, parsed JSON or None). Over TLS the client token goes along unless
        admin (the admin token instead), headers or client=False say otherwise."""
        c = self.conn(tls)
        h = dict(headers or {})
        if admin:
            h["Authorization"] = "Bearer " + self.token
        elif tls and client and "Authorization" not in h:
            h["Authorization"] = "Bearer " + self.client_token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status, (json.loads(text) if text else None)

    def pool(self, name, seats, feature="vgpu-compute", expires=None):
        st, doc = self.call("POST", "/v1/pools",
                            {"name": name, "feature": feature, "seats": seats, "expires": expires},
                            admin=True, tls=True)
        assert st == 201, (st, doc)
        return doc

    def request(self, vgpu, host="node-1", feature="vgpu-compute", tls=False):
        return self.call("POST", "/v1/leases", {"feature": feature, "vgpu_uuid": vgpu,
                                                "host": host}, tls=tls)

    def leases(self, all=False):
        st, doc = self.call("GET", "/v1/leases" + ("?all=1" if all else ""), admin=True)
        assert st == 200, (st, doc)
        return doc["leases"]

    def ctl(self, *args):
        return subprocess.run([VGPUCTL, "license", "--server", self.sock] + list(args),
                              capture_output=True, text=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
