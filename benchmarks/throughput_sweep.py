#!/usr/bin/env python
"""Throughput of each model over a sweep of batch sizes.

    python benchmarks/throughput_sweep.py [--models dsconv_cbam,resnet18] [--device auto]
        [--batch-sizes 1,2,4,...] [--image-size N] [--iters 10] [--warmup 3] [--out FILE]

Default batch sizes: 1, 2, 4, …, 256 on CUDA and 1, 2, 4, 8, 16 on CPU. Each point is one
`btc.bench.benchmark.benchmark_model` call (inference and training images/s, latency, memory);
a point that fails (CUDA out of memory, batch-norm with one sample) is recorded with its error
and larger batches of that model are skipped after an out-of-memory error. Writes JSON to
`benchmarks/results/throughput-<device>.json` (settings, versions, command, date).

A tiny CPU run: `python benchmarks/throughput_sweep.py --device cpu --models small_cnn
--batch-sizes 1,2 --iters 1 --warmup 0`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnesat,dsconv_cbam,resnet34_improved,resnet18_transfer")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    parser.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    import btc.models  # noqa: F401
    from btc.bench.benchmark import _amp_dtype, benchmark_model
    from btc.bench.memory_format import device_name
    from btc.engine.train import resolve_device
    from btc.io import atomic_write_json
    from btc.models.registry import get_spec

    device = resolve_device(args.device)
    if args.batch_sizes:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    else:
        sizes = [2**i for i in range(9 if device.type == "cuda" else 5)]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        get_spec(m)
    points = []
    for model in models:
        for bs in sizes:
            try:
                r = benchmark_model(model, device=device, batch_size=bs, image_size=args.image_size,
                                    amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                                    iters=args.iters, warmup=args.warmup)
            except (RuntimeError, ValueError) as exc:  # OOM, BN with batch 1, …
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                points.append({"model": model, "batch_size": bs, "error": first})
                print(f"{model:<20} batch {bs:>4}: {first}", flush=True)
                if "out of memory" in first.lower():
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    break
                continue
            points.append(r)
            print(f"{model:<20} batch {bs:>4}: infer {r['infer_img_s']:>9.1f} img/s  "
                  f"train {r['train_img_s']:>9.1f} img/s  mem {r['peak_mem_mb']:>8.0f} MB", flush=True)
    dtype = _amp_dtype(args.amp, device)
    record = {
        "command": shlex.join(["python", "benchmarks/throughput_sweep.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "settings": {"device_type": device.type, "batch_sizes": sizes, "image_size": args.image_size,
                     "amp": dtype is not None,
                     "amp_dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
                     "channels_last": args.channels_last, "compile": args.compile,
                     "iters": args.iters, "warmup": args.warmup},
        "results": points,
    }
    out = args.out or REPO / "benchmarks" / "results" / f"throughput-{device.type}.json"
    atomic_write_json(out, record)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
