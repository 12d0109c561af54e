#!/usr/bin/env python
"""Wall time of paper 001's 10-fold protocol, extrapolated from measured training steps.

Paper 001 (Tables III–IV): ResNeSAt, 256 px, batch 16, 100 epochs, ten folds of the dataset,
the last epoch's model tested on each fold. The whole protocol is 10 × 100 epochs; a lease of a
GPU is shorter, so this script measures and extrapolates:

1. for N in `--parallel-folds` (e.g. 1,2,4), N spawned processes train folds 1..N at the same
   time with the real engine (`btc.bench.cv_walltime.measure_parallel_folds`, real images) for
   `--steps` steps after `--warmup`, and time a pass of evaluation over their test images;
2. a fold takes `epochs × n_train / train_rate + n_test / eval_rate` seconds at that sharing,
   and the protocol `ceil(folds / N)` such rounds (`btc.bench.cv_walltime.protocol_row`: the
   figure `btc cv --parallel-folds N` would take, data decoding and checkpoint writes aside).

Prints the table and saves JSON (device, versions, command, date, the measured rates).

    btc prepare kaggle ../shared/data/kaggle-224 /tmp/k224 --size 256
    python benchmarks/cv_walltime.py --data /tmp/k224 --device cuda --parallel-folds 1,2,4
    # CPU smoke run: --device cpu --image-size 64 --steps 2 --warmup 1 --parallel-folds 1,2
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.cv_walltime import measure_parallel_folds, protocol_row  # noqa: E402
from btc.bench.provenance import result_header  # noqa: E402
from btc.engine.config import resolve_config  # noqa: E402
from btc.engine.devices import resolve_device  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="Prepared dataset (btc prepare kaggle …).")
    ap.add_argument("--model", default="resnesat")
    ap.add_argument("--recipe", default="paper001")
    ap.add_argument("--task", default="multiclass")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=None, help="Default: the recipe's (100).")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--parallel-folds", default="1,2,4")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="Result file (default: benchmarks/results/…).")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    overrides = {"device": str(device), "pretrained": False, "task": args.task}
    if args.image_size:
        overrides["image_size"] = args.image_size
    config = resolve_config(args.model, args.recipe, args.task, overrides)
    epochs = args.epochs or config.epochs
    rows = []
    for n in (int(x) for x in args.parallel_folds.split(",")):
        measured = measure_parallel_folds(n, args.data, args.model, args.recipe, overrides, args.folds,
                                          args.steps, args.warmup, device.type)
        row = protocol_row(measured, epochs, args.folds)
        rows.append(row)
        rate = row["train_img_s_per_process"]
        print(f"parallel folds {n}: {rate:8.1f} img/s per process ({rate * n:8.1f} total), "
              f"fold {row['fold_s'] / 60:8.1f} min, {args.folds}-fold × {epochs} epochs "
              f"≈ {row['protocol_s'] / 3600:7.2f} h", flush=True)
    best = min(rows, key=lambda r: r["protocol_s"])
    result = {
        **result_header("cv_walltime", device),
        "cpu_cores": multiprocessing.cpu_count(),
        "protocol": {"model": args.model, "recipe": args.recipe, "task": args.task, "folds": args.folds,
                     "epochs": epochs, "image_size": config.image_size, "batch_size": config.batch_size},
        "extrapolated_from": f"{args.steps} timed steps per process after {args.warmup} warm-up steps",
        "rows": rows,
        "best": {"parallel_folds": best["parallel_folds"], "protocol_h": best["protocol_s"] / 3600},
        "speedup_of_best_over_sequential": rows[0]["protocol_s"] / best["protocol_s"] if rows[0]["parallel_folds"] == 1 else None,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"cv_walltime-{device.type}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
