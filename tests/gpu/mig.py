# SPDX-License-Identifier: Apache-2.0
# MIG-backed vGPUs on the cuda backend (docs/cuda.md, "MIG"). Two ways to run:
# - on the stand-in driver (tests/fakegpu, `--fake`): an H100 SXM5 in MIG mode with GPU instances
#   (one without a compute instance) and one not in MIG mode. vgpud finds the instances, runs each
#   MIG-backed vGPU's engine on its MIG device, refuses every MIG change without --mig-admin, and
#   with it creates and destroys instances through NVML; a GPU instance gone while vgpud was
#   stopped takes its vGPU with it.
# - on a real GPU: only when one is in MIG mode with a GPU instance that has a compute instance
#   and no vGPU; it creates a MIG-backed vGPU there and runs saxpy in it. vgpu never changes a
#   real GPU's MIG mode or layout in tests, so there is no --mig-admin part. Exits 77 otherwise.
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "fakegpu"))
import fakegpu  # noqa: E402
from vgpud_lib import Vgpud, wait_for  # noqa: E402

B = os.environ["VGPU_BUILD"]
FAKE = "--fake" in sys.argv
failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)


def refused(res, status, code, words=None):
    s, b = res
    return (s == status and b and b["error"]["code"] == code and
            (words is None or words in b["error"]["message"]))


def saxpy(d, uuid, env):
    r = subprocess.run([os.path.join(B, "examples", "saxpy"), "--n", "4096"],
                       env=dict(env, LD_LIBRARY_PATH=os.path.join(B, "lib"), VGPU_SOCKET=d.sock,
                                VGPU_UUID=uuid),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or "PASS" not in out:
        print(out)
    return r.returncode == 0 and "PASS" in out


def start(tmp, env, extra=()):
    os.environ.update(env)  # vgpud, its engines and their workers inherit it
    return Vgpud(tmp=tmp, extra=["--backend", "cuda"] + list(extra)).start(timeout=30)


def engines_of(tmp):
    """The live engines whose command line names a path under tmp."""
    found = []
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read()
        except (OSError, ValueError):
            continue
        if b"vgpu-engine" in cmd and tmp.encode() in cmd:
            found.append(p)
    return found


def gis(d, gpu=0):
    return {g["id"]: g for g in d.call("GET", "/v1/gpus/%d/gpu-instances" % gpu)[1]
            ["gpu_instances"]}


def real_gpu():
    """On a real GPU: a free GPU instance with a compute instance, or exit 77."""
    tmp = tempfile.mkdtemp(prefix="vgpu-mig-")
    env = dict(os.environ)
    try:
        d = start(tmp, env)
    except RuntimeError as e:
        print("SKIP: vgpud --backend cuda does not start here: %s" % str(e).splitlines()[0])
        sys.exit(77)
    try:
        gpus = d.call("GET", "/v1/gpus")[1]["gpus"]
        for g in gpus:
            if g["mode"] != "mig":
                continue
            for gi in g["gpu_instances"]:
                if gi.get("mig_device") and not gi["vgpus"]:
                    return d, env, g, gi
        print("SKIP: no GPU in MIG mode with a free GPU instance that has a compute instance "
              "(vgpu never changes a GPU's MIG mode or layout in tests)")
        d.stop_all()
        sys.exit(77)
    except BaseException:
        d.stop_all()
        raise


def type_for(d, gpu, profile_id):
    types = d.call("GET", "/v1/types?gpu=%d" % gpu)[1]["types"]
    return next(t["name"] for t in types
                if t["class"] == "mig-backed" and t.get("gpu_instance_profile_id") == profile_id)


def run_real():
    d, env, g, gi = real_gpu()
    try:
        t = type_for(d, g["id"], gi["profile_id"])
        s, v = d.call("POST", "/v1/vgpus", {"gpu": g["id"], "type": t, "gpu_instance": gi["id"]})
        check(s == 201, "%s in GPU instance %d of GPU %d: %s" % (t, gi["id"], g["id"], v))
        if s == 201:
            st = d.engine(v["uuid"], {"op": "status"})
            check(st.get("gpu_uuid") == gi["mig_device"], "its engine runs on MIG device %s"
                  % gi["mig_device"])
            check(saxpy(d, v["uuid"], env), "saxpy in it")
            check(d.call("DELETE", "/v1/vgpus/" + v["uuid"])[0] == 204, "destroyed")
        check(gis(d, g["id"])[gi["id"]]["mig_device"] == gi["mig_device"],
              "the GPU instance stays as it was")
    finally:
        d.stop_all()


def run_fake():
    tmp = tempfile.mkdtemp(prefix="vgpu-mig-")
    fake = os.path.join(tmp, "gpu")
    cuda, nvml = fakegpu.libs()
    if not (os.path.exists(cuda) and os.path.exists(nvml)):
        print("FAIL: the stand-in driver is not built (%s, %s)" % (cuda, nvml))
        sys.exit(1)
    g0 = [fakegpu.gi(1, 19, 0), fakegpu.gi(2, 9, 4), fakegpu.gi(3, 19, 1, with_ci=False)]
    fakegpu.write(fake, [fakegpu.h100(0, mig=True, instances=g0), fakegpu.h100(1)])
    env = fakegpu.environ(fake)
    dev1 = g0[0]["compute_instances"][0]["uuid"]
    dev2 = g0[1]["compute_instances"][0]["uuid"]
    d = start(tmp, env)
    try:
        gpus = d.call("GET", "/v1/gpus")[1]["gpus"]
        check([g["mode"] for g in gpus] == ["mig", "homogeneous"],
              "GPU 0 is in MIG mode, GPU 1 not: %s" % [g["mode"] for g in gpus])
        # vgpud's GPU instance IDs are NVML's plus one (NVML's whole-GPU instance is ID 0)
        have = gis(d)
        check(sorted(have) == [2, 3, 4] and have[2]["profile"] == "1g.10gb" and
              have[3]["profile"] == "3g.40gb" and have[3]["start"] == 4 and
              have[2]["mig_device"] == dev1 and have[4]["mig_device"] is None and
              all(x["nvml_id"] == i - 1 for i, x in have.items()),
              "vgpud found the GPU instances with their MIG devices, NVML's IDs beside: %s" % have)

        s, a = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-1-10C"})
        check(s == 201 and a["gpu_instance"] == 2,
              "a MIG-backed vGPU goes into the free instance with a compute instance: %s" % a)
        st = d.engine(a["uuid"], {"op": "status"})
        check(st.get("gpu_uuid") == dev1, "its engine runs on MIG device %s: %s" % (dev1, st))
        check(0 < st["fb_size"] <= 9984 << 20,
              "its framebuffer fits the instance's 9984 MiB: %d MiB" % (st["fb_size"] >> 20))
        check(saxpy(d, a["uuid"], env), "saxpy runs in it")
        check(refused(d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-1-10C"}), 403,
                      "VGPU_EMIG_ADMIN", "--mig-admin"),
              "no free instance: refused, naming --mig-admin")
        check(refused(d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-1-10C",
                                                  "gpu_instance": 4}), 409, "VGPU_EMIG_DEVICE"),
              "an instance without a compute instance: refused")
        s, b = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-10C", "gpu_instance": 3})
        check(s == 201, "a time-sliced vGPU in the 3g.40gb instance: %s" % b)
        if s == 201:
            check(d.engine(b["uuid"], {"op": "status"}).get("gpu_uuid") == dev2,
                  "its engine runs on MIG device %s" % dev2)
            check(saxpy(d, b["uuid"], env), "saxpy runs in it")
        check(refused(d.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "1g.10gb"}), 403,
                      "VGPU_EMIG_ADMIN"), "creating a GPU instance without --mig-admin: refused")
        check(refused(d.call("DELETE", "/v1/gpus/0/gpu-instances/4"), 403, "VGPU_EMIG_ADMIN"),
              "destroying one: refused")
        check(refused(d.call("PUT", "/v1/gpus/1/mode", {"mode": "mig"}), 409, "VGPU_EMIG_OFF"),
              "MIG mode on a GPU where it is off: refused")
        check(len(fakegpu.read(fake)["gpus"][0]["gpu_instances"]) == 3,
              "the hardware's layout is unchanged")

        # vgpud restarted: the vGPUs are re-adopted in their instances
        d.kill(signal.SIGTERM)
        d = start(tmp, env)
        vs = {v["uuid"]: v for v in d.call("GET", "/v1/vgpus")[1]["vgpus"]}
        check(a["uuid"] in vs and vs[a["uuid"]]["state"] == "running" and
              vs[a["uuid"]]["gpu_instance"] == 2, "after a vgpud restart the vGPU is back in "
              "instance 2: %s" % vs.get(a["uuid"]))
        check(saxpy(d, a["uuid"], env), "and runs")

        # with --mig-admin: instances made and destroyed through NVML
        d.kill(signal.SIGTERM)
        d = start(tmp, env, ["--mig-admin"])
        s, n = d.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "1g.10gb", "start": 2})
        hw = fakegpu.read(fake)["gpus"][0]["gpu_instances"]
        check(s == 201 and n.get("mig_device") and
              any(x["id"] == n["nvml_id"] == n["id"] - 1 and x["start"] == 2 and
                  x["compute_instances"] for x in hw),
              "--mig-admin: a 1g.10gb instance made at slice 2, with a compute instance: %s" % n)
        check(refused(d.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "1g.10gb",
                                                                   "start": 2}), 409,
                      "VGPU_EPLACEMENT_BUSY"), "a second one at slice 2: refused by the layout")
        check(d.call("DELETE", "/v1/gpus/0/gpu-instances/4")[0] == 204 and
              not any(x["id"] == 3 for x in fakegpu.read(fake)["gpus"][0]["gpu_instances"]),
              "--mig-admin: instance 4 (NVML's 3) destroyed")
        s, c = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-1-10C"})
        check(s == 201 and c["gpu_instance"] == n["id"], "the next 1g.10gb vGPU goes into it")
        s, e = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-1-10C"})
        made = e.get("gpu_instance") if s == 201 else None
        check(made is not None and
              any(x["id"] == made - 1 for x in fakegpu.read(fake)["gpus"][0]["gpu_instances"]),
              "none free: --mig-admin makes one for it: %s" % e)
        if made is not None:
            check(saxpy(d, e["uuid"], env), "saxpy runs in it")
            check(d.call("DELETE", "/v1/vgpus/" + e["uuid"])[0] == 204 and
                  not any(x["id"] == made - 1
                          for x in fakegpu.read(fake)["gpus"][0]["gpu_instances"]),
                  "destroying that vGPU destroys its instance")

        s, h = d.call("POST", "/v1/vgpus", {"gpu": 1, "type": "H100XM-10C"})
        check(s == 201, "a time-sliced vGPU on GPU 1 (not in MIG mode): %s" % h)

        # an instance gone while vgpud was stopped takes its vGPU with it; so does MIG mode
        # turned on (which resets the GPU, ending its engines)
        d.stop_all()
        wait_for(lambda: not engines_of(tmp), timeout=15)
        cfg = fakegpu.read(fake)
        cfg["gpus"][0]["gpu_instances"] = [x for x in cfg["gpus"][0]["gpu_instances"]
                                           if x["id"] != 2]  # vgpud's 3
        cfg["gpus"][1]["mig_mode"] = True
        fakegpu.write(fake, cfg["gpus"])
        d = start(tmp, env)
        vs = [v["uuid"] for v in d.call("GET", "/v1/vgpus")[1]["vgpus"]]
        check(b["uuid"] not in vs and a["uuid"] in vs,
              "instance 3 (NVML's 2) gone: its vGPU is removed, the others stay: %s" % vs)
        check("which is gone" in d.read_log(), "vgpud says why")
        check(h.get("uuid") not in vs and "does not fit GPU 1" in d.read_log() and
              d.call("GET", "/v1/gpus/1")[1]["mode"] == "mig",
              "GPU 1 now in MIG mode: its time-sliced vGPU is removed, with the reason")
    finally:
        d.stop_all()

    # just after `nvidia-smi -mig 1`: MIG mode, no instance, so no CUDA device at all
    fakegpu.write(fake, [fakegpu.h100(0, mig=True)])
    os.makedirs(os.path.join(tmp, "empty"))
    d = start(os.path.join(tmp, "empty"), env, ["--mig-admin"])
    try:
        s, f = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-2-20C"})
        check(s == 201 and f["gpu_instance"] - 1 in
              [x["id"] for x in fakegpu.read(fake)["gpus"][0]["gpu_instances"]],
              "a GPU in MIG mode with no instance (no CUDA device): vgpud starts, and with "
              "--mig-admin makes an instance for a 2g.20gb vGPU: %s" % f)
        if s == 201:
            check(saxpy(d, f["uuid"], env), "saxpy runs in it")
            check(d.call("DELETE", "/v1/vgpus/" + f["uuid"])[0] == 204, "and goes with its vGPU")
        # the whole GPU's instance: NVML numbers it 0, which is "none" in vgpud's API
        s, w = d.call("POST", "/v1/gpus/0/gpu-instances", {"profile": "7g.80gb"})
        hw = fakegpu.read(fake)["gpus"][0]["gpu_instances"]
        check(s == 201 and w.get("nvml_id") == 0 and w.get("id") == 1 and
              [x["id"] for x in hw] == [0] and w.get("mig_device"),
              "--mig-admin: a 7g.80gb instance, NVML's ID 0, is vgpud's 1: %s" % w)
        s, x = d.call("POST", "/v1/vgpus", {"gpu": 0, "type": "H100XM-7-80C"})
        check(s == 201 and x["gpu_instance"] == 1, "a 7-80C vGPU goes into it: %s" % x)
        if s == 201:
            check(saxpy(d, x["uuid"], env), "saxpy runs in it")
            check(d.call("DELETE", "/v1/vgpus/" + x["uuid"])[0] == 204, "destroyed")
        d.kill(signal.SIGTERM)
        d = start(os.path.join(tmp, "empty"), env, ["--mig-admin"])
        check(sorted(gis(d)) == [1] and gis(d)[1]["mig_device"],
              "after a restart vgpud finds it again as instance 1: %s" % gis(d))
        check(d.call("DELETE", "/v1/gpus/0/gpu-instances/1")[0] == 204 and
              not fakegpu.read(fake)["gpus"][0]["gpu_instances"],
              "and destroys NVML's instance 0")
        check(refused(d.call("DELETE", "/v1/gpus/0/gpu-instances/0"), 404, "VGPU_ENO_GI"),
              "there is no instance 0 in vgpud's API")
    finally:
        d.stop_all()

    # NVML's order is not promised across reboots, and a GPU can fail: vGPUs stay with theirs
    a, b = fakegpu.h100(0), fakegpu.h100(1)
    fakegpu.write(fake, [a, b])
    os.makedirs(os.path.join(tmp, "order"))
    d = start(os.path.join(tmp, "order"), env)
    try:
        on, addr = {}, {}
        for gpu in (0, 1):
            s, v = d.call("POST", "/v1/vgpus", {"gpu": gpu, "type": "H100XM-20C"})
            check(s == 201, "a vGPU on GPU %d: %s" % (gpu, v))
            on[gpu], addr[gpu] = v.get("uuid"), v.get("device_address")
        # each GPU's scheduler is its own, whatever number it has later
        for gpu, policy in ((0, "equal-share"), (1, "fixed-share")):
            check(d.call("PUT", "/v1/gpus/%d/scheduler" % gpu, {"policy": policy})[0] == 200,
                  "GPU %d: %s" % (gpu, policy))
        d.stop_all()
        wait_for(lambda: not engines_of(os.path.join(tmp, "order")), timeout=15)
        fakegpu.write(fake, [b, a])  # after a "reboot", NVML lists them the other way round
        d = start(os.path.join(tmp, "order"), env)
        gpus = d.call("GET", "/v1/gpus")[1]["gpus"]
        vs = {v["uuid"]: v for v in d.call("GET", "/v1/vgpus")[1]["vgpus"]}
        check([g["uuid"] for g in gpus] == [a["uuid"], b["uuid"]] and
              all(vs.get(on[i], {}).get("gpu_uuid") == x["uuid"] for i, x in ((0, a), (1, b))),
              "NVML's order changed: each GPU keeps its number, each vGPU its GPU: %s" %
              [(g["index"] if "index" in g else g.get("id"), g["uuid"]) for g in gpus])
        check(saxpy(d, on[1], env), "and runs there")
        d.stop_all()
        wait_for(lambda: not engines_of(os.path.join(tmp, "order")), timeout=15)
        # GPU a, number 0, failed: NVML lists only b. vgpud keeps the vGPUs of a unless told
        fakegpu.write(fake, [b])
        try:
            d = start(os.path.join(tmp, "order"), env)
            check(False, "a GPU gone: vgpud started without --forget-gone-gpus")
        except RuntimeError as e:
            check("--forget-gone-gpus" in str(e),
                  "a GPU gone: vgpud does not start, and names --forget-gone-gpus")
        d = start(os.path.join(tmp, "order"), env, ["--forget-gone-gpus"])
        gpus = d.call("GET", "/v1/gpus")[1]["gpus"]
        vs = {v["uuid"]: v for v in d.call("GET", "/v1/vgpus")[1]["vgpus"]}
        check([g["uuid"] for g in gpus] == [b["uuid"]] and list(vs) == [on[1]] and
              vs[on[1]]["gpu"] == 0 and vs[on[1]]["gpu_uuid"] == b["uuid"] and
              "which NVML does not list now" in d.read_log(),
              "with --forget-gone-gpus: the vGPU of the GPU gone is removed with the reason; the "
              "other GPU is GPU 0 now and keeps its vGPU: %s" % vs)
        check(vs.get(on[1], {}).get("device_address") == addr[1],
              "and that vGPU keeps its device address: %s, was %s" %
              (vs.get(on[1], {}).get("device_address"), addr[1]))
        check(saxpy(d, on[1], env), "and that vGPU runs")
        sched = d.call("GET", "/v1/gpus/0/scheduler")[1]
        check(sched.get("policy") == "fixed-share",
              "and keeps its scheduler (fixed share), not GPU a's: %s" % sched)
        d.kill(signal.SIGTERM)
        c = fakegpu.h100(2)
        fakegpu.write(fake, [b, c])  # a new GPU c takes number 1, b's number before
        d = start(os.path.join(tmp, "order"), env)
        vs = {v["uuid"]: v for v in d.call("GET", "/v1/vgpus")[1]["vgpus"]}
        check(list(vs) == [on[1]] and vs[on[1]]["gpu"] == 0 and vs[on[1]]["state"] == "running",
              "the state says so from then on: %s" % vs)
        for _ in range(2):  # and after one more restart
            s0 = d.call("GET", "/v1/gpus/0/scheduler")[1].get("policy")
            s1 = d.call("GET", "/v1/gpus/1/scheduler")[1].get("policy")
            check(s0 == "fixed-share" and s1 == "best-effort",
                  "a new GPU at number 1 starts best effort, not with what b left there: %s, %s"
                  % (s0, s1))
            d.kill(signal.SIGTERM)
            d = start(os.path.join(tmp, "order"), env)
        # b (fixed share, number 0) gone too: c moves to 0 and does not take b's setting there
        d.stop_all()
        wait_for(lambda: not engines_of(os.path.join(tmp, "order")), timeout=15)
        fakegpu.write(fake, [c])
        d = start(os.path.join(tmp, "order"), env, ["--forget-gone-gpus"])
        for _ in range(2):
            pol = d.call("GET", "/v1/gpus/0/scheduler")[1].get("policy")
            check(pol == "best-effort" and not d.call("GET", "/v1/vgpus")[1]["vgpus"],
                  "b gone as well: c is GPU 0, best effort, not b's fixed share: %s" % pol)
            d.kill(signal.SIGTERM)
            d = start(os.path.join(tmp, "order"), env)
    finally:
        d.stop_all()

    # a driver before R570 (CUDA 12.6): CUDA shows one MIG device and then no whole GPU
    fakegpu.write(fake, [fakegpu.h100(0, mig=True, instances=[fakegpu.gi(1, 19, 0)]),
                         fakegpu.h100(1)], driver_version=12060)
    os.makedirs(os.path.join(tmp, "r565"))
    d = start(os.path.join(tmp, "r565"), env)
    try:
        gpus = d.call("GET", "/v1/gpus")[1]["gpus"]
        check([g["mode"] for g in gpus] == ["mig", "homogeneous"],
              "a driver before R570: vgpud serves the GPU CUDA does not show beside a GPU in MIG "
              "mode: %s" % [g["mode"] for g in gpus])
        for gpu, t in ((1, "H100XM-10C"), (0, "H100XM-1-10C")):
            s, v = d.call("POST", "/v1/vgpus", {"gpu": gpu, "type": t})
            check(s == 201, "%s on GPU %d: %s" % (t, gpu, v))
            if s == 201:
                check(saxpy(d, v["uuid"], env), "saxpy runs in it (its engine names its device)")
    finally:
        d.stop_all()
    if not failures:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if FAKE:
        run_fake()
    else:
        run_real()
    if failures:
        print("FAILED: %d" % len(failures))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
