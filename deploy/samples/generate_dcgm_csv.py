#!/usr/bin/env python3
"""Generates a realistic DCGM-exporter CSV for the collector module.

Columns: timestamp, metric_name, gpu_id, device, uuid, modelName, Hostname,
container, pod, namespace, value, labels_raw. Several hosts with N GPUs each,
a dozen DCGM metrics, one sample per GPU and metric every --step seconds.
Values follow a per-GPU load curve (deterministic for a given --seed).

  generate_dcgm_csv.py --hosts 3 --gpus 8 --minutes 15 --step 10 > dcgm_sample.csv
  generate_dcgm_csv.py --hours 3 --out big.csv
"""
import argparse
import datetime as dt
import math
import random
import sys
import uuid

METRICS = [
    # name, unit scale, base, load factor
    ("DCGM_FI_DEV_GPU_UTIL", 0, 100),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", 0, 60),
    ("DCGM_FI_DEV_GPU_TEMP", 32, 50),
    ("DCGM_FI_DEV_MEMORY_TEMP", 30, 45),
    ("DCGM_FI_DEV_POWER_USAGE", 60, 340),
    ("DCGM_FI_DEV_SM_CLOCK", 210, 1770),
    ("DCGM_FI_DEV_MEM_CLOCK", 1593, 0),
    ("DCGM_FI_DEV_FB_USED", 500, 78000),
    ("DCGM_FI_DEV_FB_FREE", 81000, -78000),
    ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", 1000, 900000),
    ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", 1000, 1200000),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0, 1),
]
MODELS = ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"]
NAMESPACES = ["ml-training", "inference", "research", "default"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--hours", type=float, default=0, help="overrides --minutes")
    parser.add_argument("--step", type=int, default=10, help="seconds between samples")
    parser.add_argument("--start", default="2025-07-18T20:00:00Z")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="-")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    start = dt.datetime.strptime(args.start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    minutes = args.hours * 60 if args.hours else args.minutes
    steps = int(minutes * 60 // args.step)
    gpus = []
    for h in range(args.hosts):
        host = f"mtv5-dgx1-hgpu-{31 + h:03d}"
        model = MODELS[h % len(MODELS)]
        for g in range(args.gpus):
            ns = NAMESPACES[(h + g) % len(NAMESPACES)]
            pod = f"{ns}-job-{h}{g}-{rng.randrange(16**5):05x}"
            gpus.append({
                "host": host, "gpu": g, "device": f"nvidia{g}",
                "uuid": "GPU-" + str(uuid.UUID(int=rng.getrandbits(128))),
                "model": model, "namespace": ns, "pod": pod,
                "container": "trainer" if ns == "ml-training" else "worker",
                "phase": rng.random() * math.tau, "period": rng.uniform(600, 3600),
            })
    out = sys.stdout if args.out == "-" else open(args.out, "w", newline="")
    out.write("timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,"
              "namespace,value,labels_raw\n")
    for step in range(steps):
        t = start + dt.timedelta(seconds=step * args.step)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        for gpu in gpus:
            load = 0.5 + 0.45 * math.sin(gpu["phase"] + step * args.step / gpu["period"] * math.tau)
            load = min(1.0, max(0.0, load + rng.gauss(0, 0.03)))
            labels = (f'DCGM_FI_DRIVER_VERSION="535.129.03",Hostname="{gpu["host"]}",'
                      f'modelName="{gpu["model"]}"')
            for name, base, factor in METRICS:
                value = base + factor * load
                if name.endswith("_UTIL"):
                    value = round(value)
                elif name == "DCGM_FI_PROF_GR_ENGINE_ACTIVE":
                    value = round(value, 4)
                else:
                    value = round(value, 1)
                out.write(f'{stamp},{name},{gpu["gpu"]},{gpu["device"]},{gpu["uuid"]},'
                          f'{gpu["model"]},{gpu["host"]},{gpu["container"]},{gpu["pod"]},'
                          f'{gpu["namespace"]},{value},"{labels.replace(chr(34), chr(34) * 2)}"\n')
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
