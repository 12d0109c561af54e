#!/usr/bin/env python
"""The CPU-capable benchmark subset (`make bench`): `btc benchmark` on CPU for the four papers'
models at their paper input sizes, batch 8, few iterations (a few minutes on 2 cores).

    python benchmarks/run_cpu.py [--iters 3] [--warmup 1] [--batch-size 8] [--out FILE]

Each model runs in its own `btc benchmark` process so that `peak_mem_mb` (the process peak RSS on
CPU) is that model's own. The merged JSON (the `btc benchmark --json` object plus `command`,
`date` and `host`) goes to `benchmarks/results/benchmark-cpu.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ("resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer")  # papers 001–004


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "benchmark-cpu.json")
    args = parser.parse_args(argv)

    from btc.io import atomic_write_json

    merged: dict | None = None
    commands = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            part = Path(tmp) / f"{model}.json"
            cmd = [sys.executable, "-m", "btc", "benchmark", "--device", "cpu", "--models", model,
                   "--batch-size", str(args.batch_size), "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--json", str(part)]
            shown = ["btc", *cmd[3:-1], f"{model}.json"]
            commands.append(shlex.join(shown))
            print(f"$ {commands[-1]}", flush=True)
            subprocess.run(cmd, cwd=REPO, check=True)
            report = json.loads(part.read_text())
            if merged is None:
                merged = report
            else:
                merged["results"].extend(report["results"])
    assert merged is not None
    record = {
        "command": f"python benchmarks/run_cpu.py {shlex.join(argv if argv is not None else sys.argv[1:])}".strip(),
        "commands": commands,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        **merged,
    }
    atomic_write_json(args.out, record)
    print(f"\n{'model':<20}{'params':>12}{'GFLOPs':>9}{'infer img/s':>13}{'train img/s':>13}")
    for r in record["results"]:
        print(f"{r['model']:<20}{r['params']:>12,}{r['flops'] / 1e9:>9.2f}"
              f"{r['infer_img_s']:>13.2f}{r['train_img_s']:>13.2f}")
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
