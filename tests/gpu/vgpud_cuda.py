# SPDX-License-Identifier: Apache-2.0
# vgpud's control plane and crash safety on the cuda backend: what tests/integration/vgpud_api.py
# and vgpud_crash.py check on the sim, on whatever GPU vgpud finds, with the vGPU types of that
# GPU's model (GET /v1/types). Discovery (the driver's UUIDs and PCI bus ids, the model matched),
# the API's validation and placement refusals, homogeneous and heterogeneous rules, MIG refused on
# a GPU not in MIG mode, a vGPU's life (its engine on the right GPU, saxpy in it, its memory back
# once destroyed, destroy refused while a guest is attached unless forced), and crash safety:
# vgpud killed -9 at random points of a create/destroy loop and restarted (nothing half-made, no
# memory held by what is not a vGPU), engines re-adopted with their guest's data intact, a dead
# engine's vGPU faulted until restarted. Two ways to run:
# - on the stand-in driver (tests/fakegpu, `--fake`): two H100 SXM5 80GB, GPU memory as the
#   stand-in's <dir>/mem files; also a create refused for want of GPU memory (another process
#   holds it) that leaves nothing behind.
# - on a real GPU (no --fake): the first GPU not in MIG mode. Exits 77 when vgpud --backend cuda
#   cannot start (no driver, no GPU) or every GPU is in MIG mode (tests/gpu/mig.py covers those).
#   Never changes MIG mode or layout; holds at most 64 GiB of framebuffer at once (four 16 GiB
#   vGPUs, the least that reaches a type's maximum on an H100), mostly under 40 GiB; destroys
#   everything it created, even on failure.
# VGPU_CRASH_SECONDS (default 15; 40 on a GPU, where creates take longer) is how long the kill -9
# loop runs, VGPU_CRASH_SEED its seed.
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakegpu"))
import fakegpu  # noqa: E402
from vgpud_lib import UnixConnection, Vgpud, engine_args, engine_pids, wait_for  # noqa: E402

B = os.environ["VGPU_BUILD"]
FAKE = "--fake" in sys.argv
SECONDS = float(os.environ.get("VGPU_CRASH_SECONDS", "15" if FAKE else "40"))
MIB = 1 << 20
GIB = 1 << 30
# A real GPU: what one process's CUDA context may take besides its framebuffer, and what NVML's
# used memory may move by on its own. The stand-in counts exactly what was created.
CTX_SLACK = 0 if FAKE else 1536 * MIB
NOISE = 0 if FAKE else 256 * MIB
NO_UUID = "0b6d4f3e-2c1a-4f5e-9d8c-7b6a5f4e3d2c"
failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)
    return cond


def brief(b):
    """A reply in a line: the error, or the vGPU's identity and place."""
    if isinstance(b, dict) and "error" in b:
        return "%s: %s" % (b["error"].get("code"), b["error"].get("message"))
    if isinstance(b, dict) and "type" in b and "uuid" in b:
        return "%s %s on GPU %s at placement %s, %s, engine %s" % (
            b["uuid"], b["type"], b.get("gpu"), b.get("placement"), b.get("state"),
            b.get("engine_pid"))
    return str(b)


def refused(res, status, code, words=None):
    s, b = res
    return (s == status and isinstance(b, dict) and set(b) == {"error"} and
            set(b["error"]) == {"code", "message"} and b["error"]["code"] == code and
            (words is None or words in b["error"]["message"]))


class Run:
    """What the sections share: vgpud (replaced on each restart), the GPU under test, its types."""

    def __init__(self, tmp, fake):
        self.tmp = tmp
        self.fake = fake  # the stand-in's directory, or None
        self.d = None
        self.gpu = None  # GET /v1/gpus/N of the GPU under test
        self.others = []  # the other GPUs not in MIG mode
        self.base = {}  # GPU UUID -> NVML's used memory before anything was made
        self.guests = []  # guest processes started, stopped at the end
        self.create_s = 0.05  # the longest create seen, which sets the crash loop's timing
        self.mig = {}  # each GPU's MIG mode and devices before the test (never changed)
        self.killer = None  # the crash loop's pending kill of vgpud

    def start(self, extra=()):
        self.d = Vgpud(tmp=self.tmp, extra=["--backend", "cuda"] + list(extra)).start(timeout=30)
        return self.d

    def restart(self, sig=signal.SIGKILL):
        self.d.kill(sig)
        return self.start()

    def call(self, method, path, body=None, raw=None):
        return self.d.call(method, path, body, raw)

    def create(self, **kw):
        kw.setdefault("gpu", self.gpu["id"])
        t0 = time.time()
        s, v = self.call("POST", "/v1/vgpus", kw)
        if s == 201:
            self.create_s = max(self.create_s, time.time() - t0)
        return s, v


# ---- the GPU's memory, as the driver sees it ---------------------------------------------------

def nvml_gpus():
    """NVML's GPUs by UUID (vgpu-nvml-probe --json, through the same NVML as vgpud)."""
    r = subprocess.run([os.path.join(B, "bin", "vgpu-nvml-probe"), "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("vgpu-nvml-probe: %s" % r.stderr.decode(errors="replace").strip())
    return {g["uuid"]: g for g in json.loads(r.stdout)["gpus"]}


def mig_layout(nv):
    """Each GPU's MIG mode and MIG devices, as NVML lists them."""
    return {u: (n["mig_enabled"], sorted(str(m) for m in n["mig_devices"])) for u, n in nv.items()}


def mem_used(uuid):
    return nvml_gpus()[uuid]["sample"]["mem_used"]


def pid_alive(pid):
    """Alive and not a zombie (a zombie holds no GPU memory, on a GPU as on the stand-in)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def fake_mem(run, key):
    """The stand-in's <dir>/mem/<key>.<pid> of live processes: {pid: bytes}."""
    held = {}
    d = os.path.join(run.fake, "mem")
    for name in os.listdir(d):
        k, _, pid = name.rpartition(".")
        if k != key or not pid.isdigit() or not pid_alive(int(pid)):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                held[int(pid)] = int(f.read())
        except (OSError, ValueError):
            pass
    return held


def ours(run):
    """Our live engine processes: main engines {uuid: pid} and the number of workers."""
    main, workers = {}, 0
    for p in engine_pids():
        try:
            with open("/proc/%d/cmdline" % p, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if run.tmp.encode() not in cmd:
            continue
        if b"--worker" in cmd.split(b"\0"):
            workers += 1
        else:
            a = engine_args(p)
            main[a.get("uuid")] = p
    return main, workers


def memory_matches(run, gpu, vgpus):
    """NVML's used memory on gpu is its base plus the framebuffers of vgpus (exactly, on the
    stand-in; on a GPU within what the processes' contexts may add). Waits for it a while (an
    engine that ends gives its memory back when its process is gone). (ok, what was seen)."""
    want = sum(v["fb_size"] for v in vgpus if v["gpu_uuid"] == gpu["uuid"])
    seen = []

    def ok():
        main, workers = ours(run)
        extra = mem_used(gpu["uuid"]) - run.base[gpu["uuid"]]
        seen[:] = [extra >> 20, want >> 20]
        return want - NOISE <= extra <= want + NOISE + CTX_SLACK * (len(main) + workers)
    good = wait_for(ok, timeout=10 if FAKE else 30, step=0.1)
    return good, "%d MiB over the base, vGPUs hold %d MiB" % tuple(seen)


# ---- helpers -----------------------------------------------------------------------------------

def guest_env(run, uuid):
    return dict(os.environ, LD_LIBRARY_PATH=os.path.join(B, "lib"), VGPU_SOCKET=run.d.sock,
                VGPU_UUID=uuid)


def saxpy(run, uuid, quiet=False):
    """Runs examples/saxpy in the vGPU: (passed, its output)."""
    r = subprocess.run([os.path.join(B, "examples", "saxpy"), "--n", "4096"],
                       env=guest_env(run, uuid), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    out = r.stdout.decode(errors="replace")
    ok = r.returncode == 0 and "PASS" in out
    if not ok and not quiet:
        print(out)
    return ok, out


def start_guest(run, uuid, name):
    """tests/migration/mig_guest in the vGPU: 64 MiB of a known pattern, then idle until
    <tmp>/<name>.stop exists; it checks the pattern at the end. (the process, whether it got
    ready and runs)."""
    ready = os.path.join(run.tmp, name + ".ready")
    p = subprocess.Popen([os.path.join(B, "tests", "migration", "mig_guest"), "--mib", "64",
                          "--seconds", "0.2", "--idle", "--until",
                          os.path.join(run.tmp, name + ".stop"), "--ready", ready],
                         env=guest_env(run, uuid), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    run.guests.append(p)
    if not wait_for(lambda: os.path.exists(ready) or p.poll() is not None, timeout=120):
        return p, False
    return p, os.path.exists(ready) and p.poll() is None


def end_guest(run, p, name, timeout=120):
    """Tells the guest to finish; (exit status, output)."""
    open(os.path.join(run.tmp, name + ".stop"), "w").close()
    try:
        out = p.communicate(timeout=timeout)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0].decode(errors="replace") + "\n(timed out: killed)"
    return p.returncode, out


def metrics(run):
    c = UnixConnection(run.d.sock)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    return r.status, text


def metric(text, name, gpu, vgpu=None):
    """The value of name's sample for GPU index gpu (and vGPU uuid vgpu), or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") or ('gpu="%d"' % gpu) not in line:
            continue
        if (vgpu is None) != ("vgpu_uuid=" not in line):
            continue
        if vgpu is not None and ('vgpu_uuid="%s"' % vgpu) not in line:
            continue
        return float(line.rsplit(" ", 1)[1])
    return None


def all_vgpus(run):
    return run.call("GET", "/v1/vgpus")[1]["vgpus"]


def destroy_all(run):
    """Destroys every vGPU (forced) and puts the GPUs back in homogeneous mode."""
    for v in all_vgpus(run):
        run.call("DELETE", "/v1/vgpus/%s?force=1" % v["uuid"])
    for g in run.call("GET", "/v1/gpus")[1]["gpus"]:
        if g["mode"] != "mig":
            run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "homogeneous"})


def leftovers(run, live):
    """Files in the engines folder that no live vGPU owns."""
    d = os.path.join(run.d.state, "engines")
    return sorted(n for n in os.listdir(d) if n[:36] not in live) if os.path.isdir(d) else []


def gone(pids):
    """The processes pids end (within 30 s)."""
    return wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=30)


class Types:
    """The time-sliced types of the GPU's model chosen for the sections, from GET /v1/types."""

    def __init__(self, run):
        t = run.call("GET", "/v1/types?gpu=%d" % run.gpu["id"])[1]
        self.model = t["model"]
        self.all = {x["name"]: x for x in t["types"]}
        ts = sorted((x for x in t["types"] if x["class"] == "time-sliced"),
                    key=lambda x: x["fb_mib"])
        self.ts = ts
        self.mig = [x["name"] for x in t["types"] if x["class"] == "mig-backed"]
        if len(ts) < 3:
            raise RuntimeError("%s has %d time-sliced types; the suite needs 3" % (self.model,
                                                                                   len(ts)))
        self.tiny, self.small = ts[0]["name"], ts[1]["name"]

        def largest(limit_mib, taken):
            fit = [x for x in ts if x["fb_mib"] <= limit_mib and x["name"] not in taken]
            return (fit[-1] if fit else next(x for x in ts if x["name"] not in taken))["name"]
        self.mid = largest(10240, (self.tiny, self.small))
        self.big = largest(20480, (self.tiny, self.small, self.mid))
        # the type whose most vGPUs in heterogeneous mode take the least memory (fewest vGPUs
        # when equal): the only way to see VGPU_EMAX_INSTANCES without filling the GPU
        mixed = [x for x in ts if x.get("max_instances_mixed", 0) >= 2]
        self.maxer = min(mixed, key=lambda x: (x["max_instances_mixed"] * x["fb_mib"],
                                               x["max_instances_mixed"]))["name"]

    def fb(self, name):
        return self.all[name]["fb_mib"] * MIB


# ---- the sections ------------------------------------------------------------------------------

def discovery(run, types):
    s, h = run.call("GET", "/v1/health")
    check(s == 200 and h["status"] == "ok" and h["backend"] == "cuda",
          "GET /v1/health: ok, backend cuda: %s" % h)
    gpus = run.call("GET", "/v1/gpus")[1]["gpus"]
    nv = nvml_gpus()
    got = [(g["uuid"], g["pci_bus_id"]) for g in gpus]
    if FAKE:
        want = [(g["uuid"], g["bus_id"]) for g in fakegpu.read(run.fake)["gpus"]]
        check(got == want, "GET /v1/gpus lists exactly gpus.json's GPUs, by UUID and PCI bus id, "
              "in order: %s" % got)
    else:
        # vgpud leaves out what CUDA_VISIBLE_DEVICES hides
        want = sorted((g["uuid"], g["bus_id"]) for g in nv.values())
        hidden = "CUDA_VISIBLE_DEVICES" in os.environ
        check(set(got) <= set(want) and (hidden or sorted(got) == want),
              "GET /v1/gpus lists NVML's GPUs by UUID and PCI bus id: %s, NVML: %s" % (got, want))
        if shutil.which("nvidia-smi"):
            r = subprocess.run(["nvidia-smi", "--query-gpu=uuid,pci.bus_id",
                                "--format=csv,noheader"], stdout=subprocess.PIPE, timeout=60)
            smi = [tuple(x.strip() for x in line.split(","))
                   for line in r.stdout.decode().splitlines() if line.strip()]
            check(set(got) <= set(smi), "and as nvidia-smi shows them: %s" % smi)
    check([g["id"] for g in gpus] == list(range(len(gpus))) and
          all(g["backend"] == "cuda" for g in gpus), "numbered from 0, each on backend cuda")
    models = {int(m["pci_device_id"], 16): m["id"] for m in json.loads(subprocess.run(
        [os.path.join(B, "bin", "vgpuctl"), "--json", "models"], stdout=subprocess.PIPE,
        check=True).stdout)["models"]}
    for g in gpus:
        n = nv.get(g["uuid"], {})
        want_model = models.get(int(n.get("pci_device_id", "0"), 16))
        if n.get("name") == "NVIDIA H100 80GB HBM3":
            want_model = "H100-SXM-80GB"
        if want_model:
            check(g["model"] == want_model, "GPU %d (%s, PCI device %s) is model %s: %s"
                  % (g["id"], n.get("name"), n.get("pci_device_id"), want_model, g["model"]))
        else:
            print("note: GPU %d (%s) is no catalog model: %s" % (g["id"], n.get("name"),
                                                                   g["model"]))
    if FAKE:
        check([g["model"] for g in gpus] == ["H100-SXM-80GB"] * 2 and
              all(g["mode"] == "homogeneous" and not g["vgpus"] and not g["gpu_instances"]
                  for g in gpus), "the stand-in's H100 80GB HBM3s: H100-SXM-80GB, homogeneous, "
              "empty")
    g = run.gpu
    check(run.call("GET", "/v1/gpus/" + g["uuid"])[1]["id"] == g["id"],
          "GET /v1/gpus/<uuid> is GPU %d" % g["id"])
    check(refused(run.call("GET", "/v1/gpus/%d" % len(gpus)), 404, "NOT_FOUND"),
          "GET /v1/gpus/%d: no such GPU" % len(gpus))
    t = run.call("GET", "/v1/types?gpu=%d" % g["id"])[1]
    prefix = types.ts[0]["name"].split("-")[0]
    check(t["model"] == g["model"] and t["mode"] == "homogeneous" and
          all(x["name"].startswith(prefix + "-") for x in t["types"]) and
          all(x["creatable"] for x in t["types"] if x["class"] == "time-sliced"),
          "GET /v1/types: %s's types (%s-*), every time-sliced one creatable"
          % (g["model"], prefix))
    if g["model"] == "H100-SXM-80GB":
        names = {x["name"] for x in t["types"]}
        check({"H100XM-4C", "H100XM-10C", "H100XM-20C", "H100XM-80C", "H100XM-1-10C"} <= names,
              "H100-SXM-80GB's types include H100XM-4C, -10C, -20C, -80C, -1-10C")
    print("types used: tiny %s, small %s, mid %s, big %s, max-instances %s"
          % (types.tiny, types.small, types.mid, types.big, types.maxer))
    check(refused(run.call("GET", "/v1/types?gpu=%d&creatable=yes" % g["id"]), 400,
                  "BAD_REQUEST") and
          refused(run.call("GET", "/v1/types?gpu=%d" % (len(gpus) + 7)), 404, "NOT_FOUND"),
          "GET /v1/types: bad creatable, unknown GPU refused")


def validation(run, types):
    t, gid = types.mid, run.gpu["id"]

    def bad(what, res, status=400, code="BAD_REQUEST", words=None):
        check(refused(res, status, code, words), "%s: refused %d %s: %s" % (what, status, code,
                                                                           res))
    bad("no body", run.call("POST", "/v1/vgpus", raw=b""), words="body is required")
    bad("malformed JSON", run.call("POST", "/v1/vgpus", raw=b"{"), words="malformed JSON")
    bad("a duplicate key", run.call("POST", "/v1/vgpus", raw=('{"type":"%s","type":"%s"}' % (
        t, types.tiny)).encode()))
    bad("an array", run.call("POST", "/v1/vgpus", raw=b"[1,2]"), words="JSON object")
    bad("not UTF-8", run.call("POST", "/v1/vgpus", raw=b"\xff\xfe"))
    bad("an unknown field", run.call("POST", "/v1/vgpus", {"type": t, "colour": "red"}),
        words="unknown field 'colour'")
    bad("no type", run.call("POST", "/v1/vgpus", {"gpu": gid}), words="'type' is required")
    bad("type a number", run.call("POST", "/v1/vgpus", {"type": 7}))
    bad("gpu an array", run.call("POST", "/v1/vgpus", {"type": t, "gpu": [gid]}))
    bad("gpu negative", run.call("POST", "/v1/vgpus", {"type": t, "gpu": -1}))
    bad("placement a string", run.call("POST", "/v1/vgpus", {"type": t, "placement": "1"}))
    bad("placement negative", run.call("POST", "/v1/vgpus", {"type": t, "placement": -2}))
    bad("placement 1.5", run.call("POST", "/v1/vgpus", {"type": t, "placement": 1.5}))
    bad("placement 2^40", run.call("POST", "/v1/vgpus", {"type": t, "placement": 2**40}))
    bad("owner_uid 2^32", run.call("POST", "/v1/vgpus", {"type": t, "owner_uid": 2**32}))
    bad("uuid a number", run.call("POST", "/v1/vgpus", {"type": t, "uuid": 5}))
    bad("uuid not a UUID", run.call("POST", "/v1/vgpus", {"type": t, "uuid": "xyz"}),
        words="must be a UUID")
    bad("a 70 kB body", run.call("POST", "/v1/vgpus", raw=b'{"type":"' + b"A" * 70000 + b'"}'),
        413, "PAYLOAD_TOO_LARGE")
    bad("mode sideways", run.call("PUT", "/v1/gpus/%d/mode" % gid, {"mode": "sideways"}))
    bad("mode a number", run.call("PUT", "/v1/gpus/%d/mode" % gid, {"mode": 1}))
    bad("an unknown GPU", run.call("POST", "/v1/vgpus", {"type": t, "gpu": 99}), 404, "NOT_FOUND")
    bad("an unknown type", run.call("POST", "/v1/vgpus", {"type": "NOPE-1C", "gpu": gid}), 422,
        "VGPU_EUNKNOWN_TYPE", "vgpuctl types")
    other = "A100-20C" if not types.model.startswith("A100") else "H100-20C"
    bad("another model's type (%s)" % other, run.call("POST", "/v1/vgpus", {"type": other,
                                                                            "gpu": gid}),
        422, "VGPU_EUNKNOWN_TYPE")
    bad("a route that is not", run.call("GET", "/v1/nothing"), 404, "NOT_FOUND")
    bad("DELETE /v1/gpus", run.call("DELETE", "/v1/gpus"), 405, "METHOD_NOT_ALLOWED")
    bad("an unknown vGPU", run.call("GET", "/v1/vgpus/" + NO_UUID), 404, "VGPU_ENO_VGPU")
    bad("destroying an unknown vGPU", run.call("DELETE", "/v1/vgpus/" + NO_UUID), 404,
        "VGPU_ENO_VGPU")
    main, workers = ours(run)
    check(all_vgpus(run) == [] and not main and not workers,
          "nothing was made by any of that: no vGPU, no engine")


def mig_refused(run, types):
    """A GPU not in MIG mode: vgpud never turns MIG on, and makes no GPU instance there."""
    g = run.gpu
    before = {u: n["mig_enabled"] for u, n in nvml_gpus().items()}
    check(refused(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "mig"}), 409,
                  "VGPU_EMIG_OFF", "never turns it on"),
          "MIG mode on GPU %d, where it is off: refused (VGPU_EMIG_OFF)" % g["id"])
    check(refused(run.call("POST", "/v1/gpus/%d/gpu-instances" % g["id"],
                           {"profile": "1g.10gb"}), 422, "VGPU_EMODE"),
          "a GPU instance on it: refused (VGPU_EMODE)")
    if types.mig:
        s, b = run.create(type=types.mig[0])
        check(s == 422 and b["error"]["code"] == "VGPU_EMODE",
              "a MIG-backed vGPU (%s) on it: refused: %s" % (types.mig[0], b))
    check(run.call("GET", "/v1/gpus/%d" % g["id"])[1]["mode"] == "homogeneous",
          "its mode stays homogeneous")
    after = {u: n["mig_enabled"] for u, n in nvml_gpus().items()}
    check(after == before, "NVML's MIG modes are unchanged: %s" % after)
    if FAKE:
        hw = fakegpu.read(run.fake)["gpus"]
        check(all(not x["mig_mode"] and not x["gpu_instances"] for x in hw),
              "the stand-in's MIG modes and instances are unchanged")


def homogeneous(run, types):
    g, t, fb = run.gpu, types.mid, types.fb(types.mid)
    s, v = run.create(type=t, owner_uid=1234)
    if not check(s == 201, "create %s on GPU %d: %s" % (t, g["id"], brief(v))):
        return
    check(v["gpu"] == g["id"] and v["gpu_uuid"] == g["uuid"] and v["placement"] == 0 and
          v["state"] == "running" and v["fb_size"] == fb and v["owner_uid"] == 1234 and
          v["class"] == "time-sliced" and v["gpu_instance"] is None,
          "it is at placement 0, running, %d MiB, owner 1234" % (fb >> 20))
    st = run.d.engine(v["uuid"], {"op": "status"})
    check(st.get("gpu_uuid") == g["uuid"] and st.get("backend") == "cuda" and
          st.get("fb_size") == fb and st.get("device_address") == v["device_address"] and
          st.get("pid") == v["engine_pid"],
          "its engine runs on the GPU's UUID, backend cuda, holding its framebuffer: %s" % st)
    main, _ = ours(run)
    a = engine_args(v["engine_pid"])
    check(main == {v["uuid"]: v["engine_pid"]} and a.get("gpu-uuid") == g["uuid"] and
          int(a.get("fb-size", 0)) == fb and int(a.get("device-address", "0"), 0) ==
          v["device_address"], "one engine, started with --gpu-uuid %s: %s" % (g["uuid"], a))
    if FAKE:
        held = fake_mem(run, "gpu%d" % g["id"])
        check(held == {v["engine_pid"]: fb},
              "the stand-in: its engine, and only it, created %d MiB on gpu%d: %s"
              % (fb >> 20, g["id"], held))
    ok, seen = memory_matches(run, g, [v])
    check(ok, "NVML: the GPU's used memory grew by the framebuffer: %s" % seen)
    q = run.call("GET", "/v1/vgpus/" + v["uuid"])[1]
    check(q["uuid"] == v["uuid"] and q["engine_pid"] == v["engine_pid"] and q["guests"] == 0,
          "GET /v1/vgpus/<uuid>")
    passed, _ = saxpy(run, v["uuid"])
    check(passed, "saxpy runs in it")
    s, m = metrics(run)
    check(s == 200 and metric(m, "DCGM_FI_DEV_FB_USED", g["id"]) == fb >> 20 and
          metric(m, "DCGM_FI_DEV_FB_TOTAL", g["id"], v["uuid"]) == fb >> 20 and
          metric(m, "DCGM_FI_DEV_GPU_TEMP", g["id"]) is not None,
          "GET /metrics: the GPU's framebuffer used, the vGPU's total, NVML's temperature")

    # equal-size mode: one type per GPU
    s, c = run.call("GET", "/v1/types?gpu=%d&creatable=1" % g["id"])
    names = [x["name"] for x in c["types"] if x["class"] == "time-sliced"]
    left = next((x["placements"] for x in c["types"] if x["name"] == t), [])
    check(names == [t] and left and 0 not in [p["placement"] for p in left],
          "creatable now: only %s, not at placement 0: %s" % (t, names))
    check(refused(run.create(type=types.small), 409, "VGPU_ETYPE_MIX", "homogeneous"),
          "another type (%s): refused, homogeneous" % types.small)
    check(refused(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "heterogeneous"}), 409,
                  "VGPU_EGPU_BUSY"), "heterogeneous mode while it has a vGPU: refused")
    check(refused(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "mig"}), 409,
                  "VGPU_EMIG_OFF"), "MIG mode while it has a vGPU: refused (MIG off)")

    # a UUID given by the client, at the last placement, and what clashes with it
    last = max(p["placement"] for p in types.all[t]["placements"])
    u = "0B6D4F3E-2C1A-4F5E-9D8C-7B6A5F4E3D2C"
    s, w = run.create(type=t, uuid=u, placement=last, gpu=g["uuid"])
    check(s == 201 and w["uuid"] == u.lower() and w["placement"] == last and
          w["fb_offset"] == last * fb and w["gpu"] == g["id"],
          "a client's UUID at the last placement (%d, offset %d GiB), GPU named by UUID: %s"
          % (last, last * fb >> 30, brief(w)))
    check(refused(run.create(type=t, uuid=u), 409, "VGPU_EEXIST"), "its UUID again: refused")
    check(refused(run.create(type=t, placement=last), 409, "VGPU_EPLACEMENT_BUSY"),
          "its placement again: refused")
    check(refused(run.create(type=t, placement=last + 1), 422, "VGPU_EPLACEMENT"),
          "placement %d, past the last: refused" % (last + 1))
    check(run.call("GET", "/v1/vgpus/" + u)[1]["uuid"] == u.lower(), "found by its UUID in "
          "upper case")
    check(refused(run.call("DELETE", "/v1/vgpus/%s?force=2" % u), 400, "BAD_REQUEST"),
          "destroy with force=2: refused")
    gg = run.call("GET", "/v1/gpus/%d" % g["id"])[1]
    check(gg["fb_used_mib"] == 2 * (fb >> 20) and sorted(gg["vgpus"]) == sorted(
        [v["uuid"], u.lower()]), "the GPU shows both, %d MiB used" % (2 * (fb >> 20)))
    main, _ = ours(run)
    pids = list(main.values())
    check(run.call("DELETE", "/v1/vgpus/" + u)[0] == 204 and
          run.call("DELETE", "/v1/vgpus/" + v["uuid"])[0] == 204, "both destroyed")
    check(gone(pids) and not ours(run)[0], "their engines are gone")
    check(leftovers(run, ()) == [], "nothing of them is left in the engines folder: %s"
          % leftovers(run, ()))
    if FAKE:
        check(fake_mem(run, "gpu%d" % g["id"]) == {}, "the stand-in: no live process holds "
              "memory on gpu%d" % g["id"])
    ok, seen = memory_matches(run, g, [])
    check(ok, "NVML: the memory is back: %s" % seen)
    s, m = metrics(run)
    check(metric(m, "DCGM_FI_DEV_FB_USED", g["id"]) == 0 and v["uuid"] not in m,
          "GET /metrics: nothing used, the vGPU's samples gone")
    check(refused(run.call("GET", "/v1/vgpus/" + v["uuid"]), 404, "VGPU_ENO_VGPU"),
          "GET of a destroyed vGPU: 404")


def heterogeneous(run, types):
    g = run.gpu
    check(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "heterogeneous"})[0] == 200,
          "GPU %d: heterogeneous mode" % g["id"])
    t = run.call("GET", "/v1/types?gpu=%d" % g["id"])[1]
    check(t["mode"] == "heterogeneous", "GET /v1/types says so")
    base = {x["name"]: x for x in t["types"] if x["class"] == "time-sliced"}
    made = []
    for name in (types.small, types.big, types.mid):
        free = [p["placement"] for x in run.call(
            "GET", "/v1/types?gpu=%d&creatable=1" % g["id"])[1]["types"]
            if x["name"] == name for p in x["placements"]]
        s, v = run.create(type=name)
        check(s == 201 and v["placement"] == (free[0] if free else None),
              "%s goes to its first free placement (%s): %s" % (name, free[:1], brief(v)))
        if s == 201:
            made.append(v)
    if len(made) < 3:
        return
    # slots each vGPU covers; the creatable placements are exactly those clear of them
    busy = set()
    for v in made:
        busy |= set(range(v["placement"], v["placement"] + base[v["type"]]["placement_size"]))
    c = {x["name"]: [p["placement"] for p in x["placements"]] for x in run.call(
        "GET", "/v1/types?gpu=%d&creatable=1" % g["id"])[1]["types"]}
    want = {}
    for name, x in base.items():
        clear = [p["placement"] for p in x["placements"]
                 if not busy & set(range(p["placement"], p["placement"] + x["placement_size"]))]
        if clear:
            want[name] = clear
    check({k: v for k, v in c.items() if k in base} == want,
          "creatable placements are those clear of the vGPUs: %s" % c)
    ranges = sorted((v["fb_offset"], v["fb_offset"] + v["fb_size"]) for v in made)
    check(all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:])) and
          ranges[-1][1] <= g["fb_total_mib"] * MIB, "their framebuffers do not overlap: %s"
          % ranges)
    for v in made:
        st = run.d.engine(v["uuid"], {"op": "status"})
        check(st.get("gpu_uuid") == g["uuid"] and st.get("fb_size") == v["fb_size"] and
              st.get("fb_offset") == v["fb_offset"],
              "%s's engine holds its range on the GPU" % v["type"])
    ok, seen = memory_matches(run, g, made)
    check(ok, "NVML: the GPU holds the three framebuffers: %s" % seen)
    big_pl = base[types.big]["placements"]
    over = next(p["placement"] for p in big_pl if p["placement"] in busy)
    check(refused(run.create(type=types.big, placement=over), 409, "VGPU_EPLACEMENT_BUSY"),
          "%s at placement %d, over a vGPU: refused" % (types.big, over))
    nowhere = next(p for p in range(64) if p not in [x["placement"] for x in big_pl])
    check(refused(run.create(type=types.big, placement=nowhere), 422, "VGPU_EPLACEMENT"),
          "%s at placement %d, not one of its: refused" % (types.big, nowhere))
    if types.mig:
        check(refused(run.create(type=types.mig[0]), 422, "VGPU_EMODE", "MIG-backed"),
              "a MIG-backed type: refused")
    check(refused(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "homogeneous"}), 409,
                  "VGPU_EGPU_BUSY"), "homogeneous mode while it has vGPUs: refused")
    for v in made:
        run.call("DELETE", "/v1/vgpus/" + v["uuid"])
    check(all_vgpus(run) == [], "destroyed")

    # the most vGPUs of one type, where that takes the least memory
    m = types.all[types.maxer]
    n = m["max_instances_mixed"]
    mem = nvml_gpus()[g["uuid"]]["sample"]
    room = mem["mem_total"] - mem["mem_used"] - 8 * GIB - n * CTX_SLACK
    if n * m["fb_mib"] * MIB > room:
        print("note: %d x %s do not fit with room to spare here: max instances not checked"
              % (n, types.maxer))
        n = 0
    vs = []
    for _ in range(n):
        s, v = run.create(type=types.maxer)
        if not check(s == 201, "%s number %d of %d: %s" % (types.maxer, len(vs) + 1, n, brief(v))):
            break
        vs.append(v)
    if n and len(vs) == n:
        check(refused(run.create(type=types.maxer), 422, "VGPU_EMAX_INSTANCES"),
              "one more %s: refused, the most there may be (%d)" % (types.maxer, n))
        gg = run.call("GET", "/v1/gpus/%d" % g["id"])[1]
        check(gg["fb_used_mib"] == n * m["fb_mib"], "the GPU shows %d MiB used"
              % (n * m["fb_mib"]))
        ok, seen = memory_matches(run, g, vs)
        check(ok, "NVML: the GPU holds the %d framebuffers: %s" % (n, seen))
    for v in vs:
        run.call("DELETE", "/v1/vgpus/" + v["uuid"])
    check(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "homogeneous"})[0] == 200,
          "back to homogeneous once empty")


def guests(run, types):
    """Destroy refused while a guest is attached unless forced; engines re-adopted across a
    vgpud kill -9 with their guest's memory intact."""
    g, t = run.gpu, types.mid
    s, a = run.create(type=t)
    if not check(s == 201, "create %s: %s" % (t, brief(a))):
        return
    ga, ready = start_guest(run, a["uuid"], "ga")
    if not check(ready, "a guest (mig_guest, 64 MiB of a pattern) attached"):
        print(end_guest(run, ga, "ga", 5)[1])
        return
    check(run.call("GET", "/v1/vgpus/" + a["uuid"])[1]["guests"] == 1, "GET shows 1 guest")
    check(refused(run.call("DELETE", "/v1/vgpus/" + a["uuid"]), 409, "VGPU_EGUESTS"),
          "destroy while a guest is attached: refused")
    check(run.call("GET", "/v1/vgpus/" + a["uuid"])[1]["state"] == "running" and
          pid_alive(a["engine_pid"]), "the vGPU runs on")

    s, b = run.create(type=t)
    if check(s == 201, "a second %s: %s" % (t, brief(b))):
        gb, ready = start_guest(run, b["uuid"], "gb")
        check(ready, "a guest attached to it")
        _, workers = ours(run)
        check(workers == 2, "each guest has its engine's worker process: %d" % workers)
        check(run.call("DELETE", "/v1/vgpus/%s?force=1" % b["uuid"])[0] == 204,
              "forced destroy with a guest attached: done")
        check(gone([b["engine_pid"]]), "its engine is gone")
        try:
            gb.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        check(gb.returncode not in (None, 0), "its guest got an error and ended: %s"
              % gb.returncode)
        check(wait_for(lambda: ours(run)[1] == 1, timeout=30), "its worker is gone")

    # vgpud killed -9 with a guest attached: the engine is re-adopted, the guest notices nothing
    gpus_before = run.call("GET", "/v1/gpus")[1]
    run.restart()
    check(run.call("GET", "/v1/gpus")[1] == gpus_before, "after vgpud's kill -9 and restart: "
          "GET /v1/gpus as before")
    now = run.call("GET", "/v1/vgpus/" + a["uuid"])[1]
    check(now["state"] == "running" and now["engine_pid"] == a["engine_pid"] and
          now["guests"] == 1, "the vGPU's engine %d re-adopted, its guest attached: %s, "
          "%s guest(s)" % (a["engine_pid"], brief(now), now.get("guests")))
    check("re-adopted engine %d" % a["engine_pid"] in run.d.read_log(), "vgpud says so")
    rc, out = end_guest(run, ga, "ga")
    check(rc == 0 and "PASS" in out and "steps=0 " not in out,
          "the guest ran on and found its memory intact: %s" % out.strip().splitlines()[-2:])
    check(wait_for(lambda: run.call("GET", "/v1/vgpus/" + a["uuid"])[1]["guests"] == 0,
                   timeout=30), "the guest gone, GET shows none")
    check(wait_for(lambda: ours(run)[1] == 0, timeout=30), "its worker is gone")
    check(run.call("DELETE", "/v1/vgpus/" + a["uuid"])[0] == 204, "then destroy: done")
    check(gone([a["engine_pid"]]), "its engine is gone")
    ok, seen = memory_matches(run, g, [])
    check(ok, "NVML: the memory is back: %s" % seen)


def faults(run, types):
    """An engine that dies leaves its vGPU faulted until restarted (POST and vgpuctl)."""
    g, t = run.gpu, types.tiny
    s, v = run.create(type=t)
    if not check(s == 201, "create %s: %s" % (t, brief(v))):
        return
    u = v["uuid"]
    check(refused(run.call("POST", "/v1/vgpus/%s/restart" % u), 409, "VGPU_EGPU_BUSY"),
          "restart of a running vGPU: refused")
    pid = v["engine_pid"]
    for how in ("POST /v1/vgpus/<uuid>/restart", "vgpuctl restart"):
        xid0 = metric(metrics(run)[1], "DCGM_FI_DEV_XID_ERRORS", g["id"], u)
        os.kill(pid, signal.SIGKILL)
        check(wait_for(lambda: run.call("GET", "/v1/vgpus/" + u)[1]["state"] == "faulted"),
              "engine %d killed: the vGPU is faulted" % pid)
        check("Xid: vGPU %s: engine %d exited" % (u, pid) in run.d.read_log(),
              "vgpud logs an Xid naming it")
        check(metric(metrics(run)[1], "DCGM_FI_DEV_XID_ERRORS", g["id"], u) == xid0 + 1,
              "GET /metrics counts it")
        ok, seen = memory_matches(run, g, [])
        check(ok, "NVML: the dead engine's memory is free: %s" % seen)
        passed, out = saxpy(run, u, quiet=True)
        check(not passed, "a guest of the faulted vGPU gets an error: %s"
              % out.strip().splitlines()[-1:])
        if how.startswith("POST"):
            s, now = run.call("POST", "/v1/vgpus/%s/restart" % u)
            check(s == 200, "%s: %s" % (how, brief(now)))
        else:
            r = subprocess.run([os.path.join(B, "bin", "vgpuctl"), "--socket", run.d.sock,
                                "restart", u], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            check(r.returncode == 0 and ("Restarted vGPU %s: engine" % u) in r.stdout.decode(),
                  "%s: %s" % (how, r.stdout.decode().strip()))
            now = run.call("GET", "/v1/vgpus/" + u)[1]
        check(now["state"] == "running" and now["engine_pid"] not in (pid, 0) and
              now["placement"] == v["placement"] and now["fb_size"] == v["fb_size"],
              "running again, in a new engine, in its place: %s" % brief(now))
        pid = now["engine_pid"]
        st = run.d.engine(u, {"op": "status"})
        check(st.get("gpu_uuid") == g["uuid"] and st.get("pid") == pid,
              "the new engine is on the GPU")
        ok, seen = memory_matches(run, g, [v])
        check(ok, "NVML: it holds the framebuffer again: %s" % seen)
        check(saxpy(run, u)[0], "saxpy runs in it")
    check(refused(run.call("POST", "/v1/vgpus/%s/restart" % NO_UUID), 404, "VGPU_ENO_VGPU"),
          "restart of an unknown vGPU: 404")
    check(refused(run.call("GET", "/v1/vgpus/%s/restart" % u), 405, "METHOD_NOT_ALLOWED"),
          "GET on restart: 405")
    check(run.call("DELETE", "/v1/vgpus/" + u)[0] == 204 and gone([pid]), "destroyed")


def other_gpus(run, types):
    """A vGPU on another GPU runs there (engines open their GPU by UUID); on the stand-in, a
    create refused for want of memory (another process holds it) leaves nothing behind."""
    if not run.others:
        print("note: one GPU not in MIG mode: no second-GPU checks")
        return
    g = run.others[0]
    s, v = run.call("POST", "/v1/vgpus", {"type": types.tiny, "gpu": g["id"]})
    if not check(s == 201 and v["gpu"] == g["id"] and v["gpu_uuid"] == g["uuid"],
                 "%s on GPU %d: %s" % (types.tiny, g["id"], brief(v))):
        return
    st = run.d.engine(v["uuid"], {"op": "status"})
    check(st.get("gpu_uuid") == g["uuid"], "its engine runs on GPU %d's UUID %s: %s"
          % (g["id"], g["uuid"], st.get("gpu_uuid")))
    if FAKE:
        check(fake_mem(run, "gpu%d" % g["id"]) == {v["engine_pid"]: v["fb_size"]} and
              fake_mem(run, "gpu%d" % run.gpu["id"]) == {},
              "the stand-in: its memory is on gpu%d, none on gpu%d" % (g["id"], run.gpu["id"]))
    ok, seen = memory_matches(run, g, [v])
    check(ok, "NVML: GPU %d holds it: %s" % (g["id"], seen))
    ok, seen = memory_matches(run, run.gpu, [])
    check(ok, "NVML: GPU %d does not: %s" % (run.gpu["id"], seen))
    check(saxpy(run, v["uuid"])[0], "saxpy runs in it")
    if FAKE:
        # another process holds all but 2 GiB of the GPU, as a foreign CUDA program would
        hog = subprocess.Popen(["sleep", "600"])
        try:
            total = nvml_gpus()[g["uuid"]]["mem_total"]
            keep = total - v["fb_size"] - 2 * GIB
            mem = os.path.join(run.fake, "mem")
            with open(os.path.join(mem, ".hog.tmp"), "w") as f:
                f.write("%d\n" % keep)
            os.replace(os.path.join(mem, ".hog.tmp"),
                       os.path.join(mem, "gpu%d.%d" % (g["id"], hog.pid)))
            before = run.call("GET", "/v1/gpus/%d" % g["id"])[1]
            s, w = run.call("POST", "/v1/vgpus", {"type": types.tiny, "gpu": g["id"]})
            check(s == 503 and w["error"]["code"] == "VGPU_EENGINE" and
                  "not enough free memory on the GPU" in w["error"]["message"],
                  "another %s where another process holds the memory: refused, saying so: %s"
                  % (types.tiny, brief(w)))
            live = [x["uuid"] for x in all_vgpus(run)]
            check(live == [v["uuid"]] and run.call("GET", "/v1/gpus/%d" % g["id"])[1] == before,
                  "nothing half-made: no new vGPU, the GPU's layout as before")
            check(list(ours(run)[0]) == [v["uuid"]] and
                  set(fake_mem(run, "gpu%d" % g["id"])) == {v["engine_pid"], hog.pid},
                  "no engine left, none holding memory")
            check(leftovers(run, live) == [], "nothing of it left in the engines folder: %s"
                  % leftovers(run, live))
        finally:
            hog.kill()
            hog.wait()
        s, w = run.call("POST", "/v1/vgpus", {"type": types.tiny, "gpu": g["id"]})
        check(s == 201, "that process gone (its memory free again): it is made: %s" % brief(w))
        if s == 201:
            run.call("DELETE", "/v1/vgpus/" + w["uuid"])
    check(run.call("DELETE", "/v1/vgpus/" + v["uuid"])[0] == 204 and
          gone([v["engine_pid"]]), "destroyed")
    ok, seen = memory_matches(run, g, [])
    check(ok, "NVML: GPU %d's memory is back: %s" % (g["id"], seen))


def crash_state(run, acked, destroyed, inflight, pids):
    """After a restart: what vgpud_crash.py checks, plus engines re-adopted (the same pids) and
    GPU memory held by exactly the vGPUs' engines. The vGPUs there now, or None."""
    now = {v["uuid"]: v for v in all_vgpus(run)}
    bad = ["acknowledged vGPU %s lost" % u for u in acked - destroyed - inflight if u not in now]
    bad += ["acknowledged destroy of %s undone" % u for u in destroyed if u in now]
    bad += ["%s is %s" % (u, v["state"]) for u, v in now.items() if v["state"] != "running"]
    bad += ["%s's engine %d was not re-adopted (now %d)" % (u, pids[u], v["engine_pid"])
            for u, v in now.items() if u in pids and pids[u] != v["engine_pid"]]
    main, _ = ours(run)
    if main != {u: v["engine_pid"] for u, v in now.items()}:
        bad.append("engines %s, vGPUs %s" % (main, {u: v["engine_pid"] for u, v in now.items()}))
    for u, p in main.items():
        a = engine_args(p)
        if u in now and (int(a.get("fb-size", 0)) != now[u]["fb_size"] or
                         int(a.get("device-address", "0"), 0) != now[u]["device_address"]):
            bad.append("engine %d does not hold %s's range: %s" % (p, u, a))
    ranges = sorted((v["fb_offset"], v["fb_offset"] + v["fb_size"]) for v in now.values())
    if any(a[1] > c[0] for a, c in zip(ranges, ranges[1:])) or any(
            r[1] > run.gpu["fb_total_mib"] * MIB for r in ranges):
        bad.append("ranges overlap or pass the end: %s" % ranges)
    g = run.call("GET", "/v1/gpus/%d" % run.gpu["id"])[1]
    if g["fb_used_mib"] != sum(v["fb_mib"] for v in now.values()):
        bad.append("the GPU says %d MiB used" % g["fb_used_mib"])
    if leftovers(run, now):
        bad.append("left in the engines folder: %s" % leftovers(run, now))
    if FAKE:
        want = {v["engine_pid"]: v["fb_size"] for v in now.values()}
        if not wait_for(lambda: fake_mem(run, "gpu%d" % run.gpu["id"]) == want, timeout=10):
            bad.append("the stand-in's memory %s, the vGPUs' %s"
                       % (fake_mem(run, "gpu%d" % run.gpu["id"]), want))
    ok, seen = memory_matches(run, run.gpu, list(now.values()))
    if not ok:
        bad.append("NVML: " + seen)
    if bad:
        check(False, "after a kill -9: " + "; ".join(bad))
        return None
    return now


def crash(run, types):
    """vgpud killed -9 at random moments of a create/destroy loop, and restarted."""
    g = run.gpu
    check(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "heterogeneous"})[0] == 200,
          "GPU %d: heterogeneous mode for the loop" % g["id"])
    names = [types.tiny, types.small, types.mid]
    cap = 40 * GIB  # the most the loop's vGPUs hold
    rng = random.Random(int(os.environ.get("VGPU_CRASH_SEED", "1")))
    # kill within about three creates' time, so that kills land inside creates and destroys
    span = max(0.3, 3 * run.create_s)
    acked, destroyed, pids, sizes = set(), set(), {}, {}
    rounds = ops = 0
    cut = {"create": 0, "destroy": 0}  # kills that cut a call short
    end = time.time() + SECONDS
    while time.time() < end:
        live = sorted(acked - destroyed)
        inflight = set()
        killer = run.killer = threading.Timer(rng.uniform(0.005, span), run.d.kill)
        killer.start()
        try:
            while True:
                held = sum(sizes[u] for u in live)
                name = rng.choice(names)
                if live and (rng.random() < 0.45 or held + types.fb(name) > cap):
                    doing = "destroy"
                    u = live.pop(rng.randrange(len(live)))
                    inflight = {u}
                    s, _ = run.call("DELETE", "/v1/vgpus/" + u)
                    inflight = set()
                    if s == 204:
                        destroyed.add(u)
                    else:
                        assert s == 404, s
                else:
                    doing = "create"
                    s, v = run.create(type=name)
                    if s == 201:
                        acked.add(v["uuid"])
                        live.append(v["uuid"])
                        pids[v["uuid"]], sizes[v["uuid"]] = v["engine_pid"], v["fb_size"]
                    else:
                        assert s == 422, (s, v)  # no placement left that fits it
                ops += 1
        except (ConnectionError, OSError) as e:
            # vgpud died mid-call: that call was never acknowledged (a refused connection:
            # it died before the call)
            cut[doing] += not isinstance(e, (ConnectionRefusedError, FileNotFoundError))
        killer.join()
        run.d.kill()
        run.start()
        now = crash_state(run, acked, destroyed, inflight, pids)
        if now is None:
            break
        # a destroy in flight finished or not; a create in flight made a whole vGPU or nothing
        destroyed |= inflight - set(now)
        acked |= set(now)
        for u, v in now.items():
            pids[u], sizes[u] = v["engine_pid"], v["fb_size"]
        rounds += 1
    print("crash rounds: %d, operations: %d, acknowledged creates: %d, destroys: %d, kills "
          "inside a create: %d, inside a destroy: %d" % (rounds, ops, len(acked), len(destroyed),
                                                         cut["create"], cut["destroy"]))
    check(rounds >= 3 and len(acked) >= 3 and destroyed,
          "%d rounds of kill -9 and restart, each consistent" % rounds)
    if FAKE:
        check(cut["create"] and cut["destroy"], "kills landed inside creates and inside "
              "destroys")
    left = [v["engine_pid"] for v in all_vgpus(run)]
    for v in all_vgpus(run):
        run.call("DELETE", "/v1/vgpus/" + v["uuid"])
    check(all_vgpus(run) == [] and gone(left) and not ours(run)[0],
          "all destroyed, their engines gone")
    ok, seen = memory_matches(run, g, [])
    check(ok, "NVML: the memory is back: %s" % seen)
    check(run.call("PUT", "/v1/gpus/%d/mode" % g["id"], {"mode": "homogeneous"})[0] == 200,
          "back to homogeneous")


# ---- running it --------------------------------------------------------------------------------

def skip_reason(log):
    """Why vgpud --backend cuda did not start, when that means no GPU to test here."""
    for line in log.splitlines():
        if "error:" in line and any(w in line for w in (
                "no NVIDIA driver", "sees no GPU", "has no cuda backend")):
            return line.strip()
    return None


def setup():
    tmp = tempfile.mkdtemp(prefix="vgpu-cuda-")
    run = Run(tmp, os.path.join(tmp, "gpu") if FAKE else None)
    if FAKE:
        cuda, nvml = fakegpu.libs()
        if not (os.path.exists(cuda) and os.path.exists(nvml)):
            print("FAIL: the stand-in driver is not built (%s, %s)" % (cuda, nvml))
            sys.exit(1)
        fakegpu.write(run.fake, [fakegpu.h100(0), fakegpu.h100(1)])
        os.environ.update(fakegpu.environ(run.fake))  # vgpud, engines, workers inherit it
    try:
        run.start()
    except RuntimeError as e:
        why = skip_reason(str(e))
        if why and not FAKE:
            print("SKIP: vgpud --backend cuda does not start here: %s" % why)
            shutil.rmtree(tmp, ignore_errors=True)
            sys.exit(77)
        print("FAIL: %s" % e)
        sys.exit(1)
    gpus = run.call("GET", "/v1/gpus")[1]["gpus"]
    usable = [g for g in gpus if g["mode"] != "mig" and not g["vgpus"]]
    if not usable:
        run.d.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        print("SKIP: every GPU is in MIG mode (tests/gpu/mig.py covers those; vgpu never "
              "changes a GPU's MIG mode in tests): %s" % [g["uuid"] for g in gpus])
        sys.exit(77)
    run.gpu, run.others = usable[0], usable[1:]
    try:
        nv = nvml_gpus()
    except (RuntimeError, OSError, ValueError) as e:
        run.d.stop_all()
        print("FAIL: %s" % e)
        sys.exit(1)
    run.base = {u: n["sample"]["mem_used"] for u, n in nv.items()}
    run.mig = mig_layout(nv)
    print("GPU %d: %s (%s, %s), %d MiB, %d MiB used before the test"
          % (run.gpu["id"], nv[run.gpu["uuid"]]["name"], run.gpu["uuid"], run.gpu["model"],
             nv[run.gpu["uuid"]]["mem_total"] >> 20, run.base[run.gpu["uuid"]] >> 20))
    return run


def processes_of(run):
    """Our processes that are still there: vgpud, engines, workers, guests (their command lines
    name the test's folder)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid() or not pid_alive(int(p)):
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if run.tmp.encode() in f.read():
                    found.append(int(p))
        except OSError:
            pass
    return found


def cleanup(run):
    """Whatever happened: every vGPU destroyed, every engine and guest of ours ended."""
    if run.killer:
        run.killer.cancel()
        run.killer.join()
    for p in run.guests:
        if p.poll() is None:
            p.kill()
            p.wait()
    try:
        if run.d.proc.poll() is not None:
            run.start()
        destroy_all(run)
    except Exception as e:  # noqa: BLE001 (the engines are stopped below anyway)
        print("cleanup: %s" % e)
    run.d.stop_all()
    if not wait_for(lambda: not processes_of(run), timeout=30):
        left = processes_of(run)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        check(False, "processes of the test still there after vgpud and its engines were "
              "told to stop (killed): %s" % left)


def main():
    # a test runner's SIGTERM still destroys what was made (the finally below)
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    run = setup()
    t0 = time.time()
    try:
        types = Types(run)
        for section in (discovery, validation, mig_refused, homogeneous, heterogeneous,
                        guests, faults, other_gpus, crash):
            print("== %s" % section.__name__, flush=True)
            try:
                section(run, types)
            except Exception:  # noqa: BLE001 (one section's failure is reported, the rest run)
                traceback.print_exc()
                check(False, "%s raised" % section.__name__)
                try:
                    if run.d.proc.poll() is not None:
                        run.start()
                    destroy_all(run)
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
        check(mig_layout(nvml_gpus()) == run.mig, "NVML: every GPU's MIG mode and MIG devices "
              "as they were")
        if FAKE:
            check(len(fakegpu.read(run.fake)["gpus"]) == 2 and not any(
                x["mig_mode"] or x["gpu_instances"] for x in fakegpu.read(run.fake)["gpus"]),
                "the stand-in's GPUs are as written: no MIG mode, no GPU instance")
    finally:
        cleanup(run)
        if failures:
            print(run.d.read_log()[-4000:])
    print("%.1f s" % (time.time() - t0))
    if failures:
        print("FAILED: %d" % len(failures))
        for f in failures:
            print("  " + f)
        sys.exit(1)
    shutil.rmtree(run.tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
