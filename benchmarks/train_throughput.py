#!/usr/bin/env python
"""Training images/s of the four papers' models: btc on real data vs the ceiling vs a naive loop.

For each model at its paper input size and recipe batch (`btc.bench.training`):

- `btc`: the engine's training epoch on the real Kaggle images (`--data`, a `btc prepare`d
  dataset), uint8 images on the device, batched augmentation, AMP and memory format as
  `btc train` uses them;
- `ceiling`: the same model/optimiser on random tensors already on the device;
- `naive`: torchvision `ImageFolder` + PIL `DataLoader` (`--workers`) fp32 on the raw folder
  (`--raw`, e.g. ../shared/data/kaggle-224/Training), the papers' kind of loop.

Prints the table with the ratios btc/ceiling (target ≥ 0.95) and btc/naive (target ≥ 2) and
saves JSON (device, versions, command, date). With `--repeats N` every model is measured N times,
the models in turn (btc, ceiling, naive each time), so that a slow spell of a shared machine
hits all three; the rows give the medians (ratios of medians), every repeat's figures and the
1-minute load average before each repeat. `--channels-last on` trains btc channels-last
(`btc train --channels-last on`); the naive loop is always the papers' contiguous fp32 loop.

    btc prepare kaggle ../shared/data/kaggle-224 /tmp/k224 --size 256
    python benchmarks/train_throughput.py --data /tmp/k224 --raw ../shared/data/kaggle-224/Training \\
        --device cuda --steps 50
    # CPU smoke run (tiny sizes; the figures say nothing about a GPU):
    python benchmarks/train_throughput.py --data /tmp/k224 --raw ../shared/data/kaggle-224/Training \\
        --device cpu --image-size 64 --batch-size 8 --steps 3 --warmup 1 --workers 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.provenance import result_header  # noqa: E402
from btc.bench.training import ceiling_rate, engine_rate, naive_rate  # noqa: E402
from btc.data.manifest import load_dataset  # noqa: E402
from btc.engine.config import resolve_config  # noqa: E402
from btc.engine.devices import resolve_device  # noqa: E402
from btc.engine.runs import TaskData  # noqa: E402
from btc.engine.train import Trainer  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402
from btc.models import create_model  # noqa: E402

MODELS = ("resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer")  # papers 001–004


def measure(name: str, data: TaskData, device: torch.device, args: argparse.Namespace) -> dict:
    """One measurement of `name`: btc's epoch, its ceiling, then the naive loop."""
    overrides = {"device": str(device), "pretrained": False, "compile": args.compile}
    for key in ("image_size", "batch_size", "channels_last"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    config = resolve_config(name, overrides=overrides)
    split = data.split(np.ones(len(data.rows), dtype=bool), config).to(device)
    torch.manual_seed(0)
    trainer = Trainer(create_model(name, len(data.classes), input_size=config.image_size), config, device)
    btc_rate = engine_rate(trainer, split, args.steps, args.warmup)
    ceiling = ceiling_rate(trainer, len(data.classes), args.steps, args.warmup)
    amp, channels_last = str(trainer.amp_dtype), trainer.predictor.memory_format == torch.channels_last
    del trainer, split
    torch.manual_seed(0)
    naive = naive_rate(create_model(name, len(data.classes), input_size=config.image_size), args.raw,
                       config.image_size, config.batch_size, device, args.steps, args.warmup, args.workers)
    return {"image_size": config.image_size, "batch_size": config.batch_size, "amp": amp,
            "channels_last": channels_last, "btc_img_s": btc_rate, "ceiling_img_s": ceiling, "naive_img_s": naive}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="Prepared dataset (btc prepare kaggle …).")
    ap.add_argument("--raw", type=Path, required=True, help="Class-per-folder raw images for the naive loop.")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=50, help="Timed training steps per measurement.")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=None, help="Override every model's paper size.")
    ap.add_argument("--batch-size", type=int, default=None, help="Override every recipe's batch.")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the naive loop.")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--channels-last", default=None, choices=("auto", "on", "off"),
                    help="btc's memory format (default: the recipe's, auto).")
    ap.add_argument("--repeats", type=int, default=1, help="Measure every model this many times, in turn.")
    ap.add_argument("--out", type=Path, default=None, help="Result file (default: benchmarks/results/…).")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    data = TaskData.from_dataset(load_dataset(args.data), "multiclass")
    names = args.models.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    loads = []
    for repeat in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name in names:
            runs[name].append(measure(name, data, device, args))
            run = runs[name][-1]
            print(f"[{repeat + 1}/{args.repeats}] {name:18s} btc {run['btc_img_s']:9.1f}  ceiling "
                  f"{run['ceiling_img_s']:9.1f}  naive {run['naive_img_s']:9.1f}", flush=True)
    rows = []
    for name in names:
        first = runs[name][0]
        med = {key: statistics.median(r[key] for r in runs[name]) for key in ("btc_img_s", "ceiling_img_s", "naive_img_s")}
        row = {"model": name, "image_size": first["image_size"], "batch_size": first["batch_size"],
               "amp": first["amp"], "channels_last": first["channels_last"], **med,
               "btc_over_ceiling": med["btc_img_s"] / med["ceiling_img_s"],
               "btc_over_naive": med["btc_img_s"] / med["naive_img_s"],
               "runs": [{k: r[k] for k in ("btc_img_s", "ceiling_img_s", "naive_img_s")} for r in runs[name]]}
        rows.append(row)
        print(f"{name:18s} {row['image_size']:4d}px b{row['batch_size']:<3d} btc {row['btc_img_s']:9.1f}  "
              f"ceiling {row['ceiling_img_s']:9.1f}  naive {row['naive_img_s']:9.1f}  btc/ceiling "
              f"{row['btc_over_ceiling']:.3f}  btc/naive {row['btc_over_naive']:.2f}", flush=True)
    result = {
        **result_header("train_throughput", device),
        "data": str(args.data), "raw": str(args.raw), "steps": args.steps, "warmup": args.warmup,
        "naive_workers": args.workers, "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp: spins before sleeping)"),
        "repeats": args.repeats,
        "statistic": "median over repeats", "load_before_repeats": loads, "rows": rows,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"train_throughput-{device.type}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
