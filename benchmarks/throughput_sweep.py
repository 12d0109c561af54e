#!/usr/bin/env python
"""Throughput of each model over a sweep of batch sizes.

    python benchmarks/throughput_sweep.py [--models dsconv_cbam,resnet18] [--device auto]
        [--batch-sizes 1,2,4,...] [--image-size N] [--iters 10] [--warmup 3] [--out FILE]

Default batch sizes: 1, 2, 4, …, 256 on CUDA and 1, 2, 4, 8, 16 on CPU. Each point is one
`btc.bench.benchmark.benchmark_model` call (inference and training images/s, latency, memory,
the `btc benchmark` result entry); a point that fails (CUDA out of memory, batch-norm with one
sample) is recorded with its error, and larger batches of that model are skipped after an
out-of-memory error. Writes JSON to `benchmarks/results/throughput-<device>.json` (the shared
result header: device, versions, command, date; then settings and points).

A tiny CPU run: `python benchmarks/throughput_sweep.py --device cpu --models small_cnn
--batch-sizes 1,2 --iters 1 --warmup 0`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.benchmark import CHANNELS_LAST, Settings, benchmark_model, model_names  # noqa: E402
from btc.bench.provenance import result_header  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnesat,dsconv_cbam,resnet34_improved,resnet18_transfer")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="", help="Comma-separated (default: powers of 2, see above).")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    parser.add_argument("--channels-last", default="auto", choices=CHANNELS_LAST)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    models = model_names(args.models)
    settings = Settings(device=args.device, image_size=args.image_size, amp=args.amp,
                        channels_last=args.channels_last, compile=args.compile, iters=args.iters,
                        warmup=args.warmup)
    device = settings.device
    if args.batch_sizes:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    else:
        sizes = [2**i for i in range(9 if device.type == "cuda" else 5)]
    points = []
    for model in models:
        for batch_size in sizes:
            try:
                r = benchmark_model(model, dataclasses.replace(settings, batch_size=batch_size)).to_dict()
            except (RuntimeError, ValueError) as exc:  # OOM, BN with batch 1, …
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                points.append({"model": model, "batch_size": batch_size, "error": first})
                print(f"{model:<20} batch {batch_size:>4}: {first}", flush=True)
                if "out of memory" in first.lower():
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    break
                continue
            points.append(r)
            print(f"{model:<20} batch {batch_size:>4}: infer {r['infer_img_s']:>9.1f} img/s  "
                  f"train {r['train_img_s']:>9.1f} img/s  mem {r['peak_mem_mb']:>8.0f} MB", flush=True)
    swept = {k: v for k, v in settings.to_dict().items() if k != "batch_size"}
    result = {
        **result_header("throughput_sweep", device),
        "settings": {**swept, "batch_sizes": sizes},
        "results": points,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"throughput-{device.type}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
