# SPDX-License-Identifier: Apache-2.0
# The stand-in NVIDIA driver's host (tests/fakegpu/README.md), for Python tests: write a gpus.json
# describing H100 SXM5 80GB GPUs, with or without MIG instances, and the environment that makes
# vgpud, its engines and their workers load the stand-in libraries instead of NVIDIA's.
import json
import os
import uuid as uuidlib

BUILD = os.environ.get("VGPU_BUILD", "build")

# H100 SXM5 80GB's GPU instance profiles, as vgpu's catalog has them (src/core/catalog_data.c,
# h100_sxm_mig, from NVIDIA's MIG user guide and `nvidia-smi mig -lgip`): NVML's profile index,
# the profile ID, compute slices, memory MiB, SMs, instance count, and [start, size] placements.
H100_SXM_PROFILES = [
    {"profile": 0, "id": 19, "slices": 1, "mem_mib": 9984, "sms": 16, "count": 7,
     "placements": [[i, 1] for i in range(7)]},
    {"profile": 7, "id": 20, "slices": 1, "mem_mib": 9984, "sms": 16, "count": 1,
     "placements": [[i, 1] for i in range(7)]},
    {"profile": 9, "id": 15, "slices": 1, "mem_mib": 20096, "sms": 26, "count": 4,
     "placements": [[i, 2] for i in (0, 2, 4, 6)]},
    {"profile": 1, "id": 14, "slices": 2, "mem_mib": 20096, "sms": 32, "count": 3,
     "placements": [[i, 2] for i in (0, 2, 4)]},
    {"profile": 2, "id": 9, "slices": 3, "mem_mib": 40448, "sms": 60, "count": 2,
     "placements": [[0, 4], [4, 4]]},
    {"profile": 3, "id": 5, "slices": 4, "mem_mib": 40448, "sms": 64, "count": 1,
     "placements": [[0, 4]]},
    {"profile": 4, "id": 0, "slices": 7, "mem_mib": 81152, "sms": 132, "count": 1,
     "placements": [[0, 8]]},
]


def profile(pid):
    return next(p for p in H100_SXM_PROFILES if p["id"] == pid)


def mig_uuid():
    return "MIG-" + str(uuidlib.uuid4())


def gi(gid, profile_id, start, with_ci=True):
    """A GPU instance of profile_id at start, with one compute instance spanning it or none."""
    p = profile(profile_id)
    size = next(s for st, s in p["placements"] if st == start)
    cis = [{"id": 0, "slices": p["slices"], "sms": p["sms"], "uuid": mig_uuid()}] if with_ci else []
    return {"id": gid, "profile_id": profile_id, "start": start, "size": size,
            "compute_instances": cis}


def h100(n, mig=False, instances=()):
    """GPU n: an H100 SXM5 80GB (its usable memory as measured on one, 81559 MiB)."""
    return {"name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-5e1f0c1e-0000-4000-8000-%012x" % (n + 1),
            "bus_id": "00000000:%02X:00.0" % (0x41 + n),
            "pci_device_id": 0x2330, "mem_mib": 81559, "sms": 132, "cc": [9, 0],
            "mig_mode": mig, "gi_profiles": H100_SXM_PROFILES,
            "gpu_instances": list(instances)}


def write(directory, gpus, driver_version=13000):
    """gpus.json in directory; driver_version: what cuDriverGetVersion says (README.md)."""
    os.makedirs(os.path.join(directory, "mem"), exist_ok=True)
    tmp = os.path.join(directory, "gpus.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"driver_version": driver_version, "gpus": gpus}, f, indent=1)
    os.replace(tmp, os.path.join(directory, "gpus.json"))


def read(directory):
    with open(os.path.join(directory, "gpus.json")) as f:
        return json.load(f)


def libs():
    d = os.path.join(BUILD, "tests", "fakegpu")
    return os.path.join(d, "libfakecuda.so"), os.path.join(d, "libfakenvml.so")


def environ(directory):
    """This process's environment, with the stand-in driver of directory in place of NVIDIA's."""
    cuda, nvml = libs()
    env = dict(os.environ)
    env.update({"VGPU_FAKE_GPU": directory, "VGPU_CUDA_DRIVER": os.path.abspath(cuda),
                "VGPU_NVML_LIB": os.path.abspath(nvml)})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env
