# SPDX-License-Identifier: Apache-2.0
# Helpers for vgpud integration tests: start and stop a vgpud on a temporary state directory and
# socket, and talk raw HTTP/1.1 to it over the Unix socket.
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("VGPU_BUILD", "build")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Vgpud:
    """A vgpud process on its own state directory and socket."""

    def __init__(self, gpus="H100-80GB,A100-40GB", tmp=None, extra=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="vgpud-test-")
        self.state = os.path.join(self.tmp, "state")
        self.sock = os.path.join(self.tmp, "vgpud.sock")
        self.gpus = gpus
        self.extra = list(extra)
        self.proc = None

    def start(self, timeout=10):
        self.log = open(os.path.join(self.tmp, "vgpud.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "bin", "vgpud"), "--sim-gpus", self.gpus, "--state", self.state,
             "--socket", self.sock, "--foreground"] + self.extra,
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        if line.strip() != b"READY":
            self.proc.wait(timeout)
            raise RuntimeError("vgpud did not start: %r; log:\n%s" % (line, self.read_log()))
        return self

    def read_log(self):
        with open(os.path.join(self.tmp, "vgpud.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop_all(self):
        """Stop vgpud and every engine it left (engines outlive vgpud by design)."""
        self.kill(signal.SIGTERM)
        for name in os.listdir(os.path.join(self.state, "engines")) if os.path.isdir(
                os.path.join(self.state, "engines")) else []:
            if name.endswith(".sock"):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(2)
                    s.connect(os.path.join(self.state, "engines", name))
                    s.sendall(b'{"op":"stop"}\n')
                    s.recv(100)
                    s.close()
                except OSError:
                    pass

    def engine(self, uuid, req, timeout=30):
        """One request to vGPU uuid's engine on its control socket; its JSON answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(os.path.join(self.state, "engines", uuid + ".sock"))
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)

    def call(self, method, path, body=None, raw=None, headers=None):
        """Returns (status, parsed JSON or None)."""
        conn = UnixConnection(self.sock)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        return resp.status, (json.loads(text) if text else None)


def engine_pids():
    """PIDs of live (non-zombie) vgpu-engine processes."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        state = stat[stat.rfind(")") + 2]
        if cmd and cmd[0].endswith(b"vgpu-engine") and state not in "ZX":
            pids.append(int(d))
    return pids


def engine_args(pid):
    """An engine's --option values by name; {} when the process has gone meanwhile."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            parts = [p.decode() for p in f.read().split(b"\0") if p]
    except OSError:
        return {}
    return {parts[i][2:]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def wait_for(pred, timeout=10, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
