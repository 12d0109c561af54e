#!/usr/bin/env python
"""The CPU-capable benchmark subset (`make bench`): `btc benchmark` on CPU for the four papers'
models at their paper input sizes, batch 8, few iterations (a few minutes on 2 cores).

    python benchmarks/run_cpu.py [--iters 3] [--warmup 1] [--batch-size 8] [--out FILE]

`btc.bench.benchmark.run_benchmark(isolate=True)` measures each model in its own process, so
that `peak_mem_mb` (the process peak RSS on CPU) is that model's own. The result is the
`btc benchmark --json` object (shared header: device, versions, command, date) plus `host`,
written to `benchmarks/results/benchmark-cpu.json`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.benchmark import Settings, run_benchmark  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402

MODELS = ("resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer")  # papers 001–004


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=None, help="Default: each model's paper size.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "benchmark-cpu.json")
    args = parser.parse_args(argv)

    settings = Settings(device="cpu", batch_size=args.batch_size, image_size=args.image_size,
                        iters=args.iters, warmup=args.warmup)
    report = run_benchmark(args.models, settings, isolate=True)
    atomic_write_json(args.out, {**report.to_dict(), "host": socket.gethostname()})
    print(f"{'model':<20}{'params':>12}{'GFLOPs':>9}{'infer img/s':>13}{'train img/s':>13}{'peak MB':>9}")
    for r in report.results:
        print(f"{r.model:<20}{r.params:>12,}{r.flops / 1e9:>9.2f}{r.infer_img_s:>13.2f}{r.train_img_s:>13.2f}"
              f"{r.peak_mem_mb:>9.0f}")
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
