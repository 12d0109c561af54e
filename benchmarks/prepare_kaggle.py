#!/usr/bin/env python
"""Time `btc prepare kaggle` against a single-process loop of the same crop.

    python benchmarks/prepare_kaggle.py [--src ../shared/data/kaggle-224] [--size 256] [--workers N]

Three timings over the same images:
- `reference`: one process, a plain loop — read, grayscale, the extreme-point crop
  (`btc.data.sources.kaggle.crop_box`), resize, PNG encode, write. No hashes, manifest or audit.
- `prepare`: `prepare_kaggle(src, fresh OUT, workers=N)` — the same per-image work over N
  processes plus the pixel SHA-256 and perceptual hashes of each image, the manifest, the audit
  (exact and near duplicates over every pair) and dataset.yaml, with atomic writes.
- `rerun`: the same command again over the finished OUT (everything reused; idempotency cost).
- `prepare_1_worker`: `prepare_kaggle` with one process, separating btc's extra per-image work
  (ratio to `reference`) from the parallel speed-up (ratio to `prepare`).

Prints images/s and the ratio prepare / reference, and writes a JSON record to
`benchmarks/results/prepare_kaggle-<host>.json` (device/CPU, versions, command, date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402

from btc import __version__  # noqa: E402
from btc.bench.provenance import cpu_name  # noqa: E402
from btc.data.images import encode_png, read_image, resize_square, to_gray_uint8  # noqa: E402
from btc.data.prepare.work import default_workers  # noqa: E402
from btc.data.sources.kaggle import _scan, crop_box, prepare_kaggle  # noqa: E402


def reference_loop(files: list[Path], out: Path, size: int) -> int:
    """The same crop in one process, as a user's script would run it."""
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    for i, f in enumerate(files):
        try:
            image = read_image(f)
        except Exception:  # noqa: BLE001 - a reference loop skips what it cannot read
            continue
        gray = to_gray_uint8(image)
        x0, y0, x1, y1 = crop_box(gray).box
        (out / f"{i}.png").write_bytes(encode_png(resize_square(gray[y0:y1, x0:x1], size)))
        done += 1
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "data" / "kaggle-224")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None, help="default: os.cpu_count()")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (reference loop)")
    parser.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="result file (default: benchmarks/results/…)")
    parser.add_argument("--skip-single", action="store_true", help="do not also time prepare with 1 worker")
    args = parser.parse_args()
    if not args.src.is_dir():
        sys.exit(f"{args.src}: not found (the Kaggle data folder, see ../shared/data/README.md)")
    workers = default_workers(args.workers)

    skipped: list = []
    files = [i.path for i in _scan(args.src, skipped, exclude=[])]
    src = args.src
    scratch = Path(tempfile.mkdtemp(prefix="btc-bench-", dir=args.tmp))
    try:
        if args.limit:
            files = files[: args.limit]
            src = scratch / "src"
            for f in files:
                dst = src / f.relative_to(args.src)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(f, dst)
        n = len(files)
        load_before = os.getloadavg()
        print(f"{n} images from {args.src}, size {args.size}, {workers} workers "
              f"({os.cpu_count()} CPUs: {cpu_name()})", flush=True)

        t0 = time.perf_counter()
        ref_done = reference_loop(files, scratch / "reference", args.size)
        t_ref = time.perf_counter() - t0
        print(f"reference loop (1 process): {t_ref:.1f} s, {ref_done / t_ref:.1f} images/s", flush=True)

        out = scratch / "prepared"
        t0 = time.perf_counter()
        summary = prepare_kaggle(src, out, size=args.size, workers=workers)
        t_prep = time.perf_counter() - t0
        print(f"btc prepare kaggle ({workers} workers): {t_prep:.1f} s, {summary.images / t_prep:.1f} images/s",
              flush=True)

        t0 = time.perf_counter()
        again = prepare_kaggle(src, out, size=args.size, workers=workers)
        t_rerun = time.perf_counter() - t0
        print(f"re-run over the finished OUT: {t_rerun:.1f} s ({again.reused} reused)", flush=True)

        t_one = None
        if workers > 1 and not args.skip_single:
            t0 = time.perf_counter()
            prepare_kaggle(src, scratch / "prepared-1", size=args.size, workers=1)
            t_one = time.perf_counter() - t0
            print(f"btc prepare kaggle (1 worker): {t_one:.1f} s, {summary.images / t_one:.1f} images/s "
                  f"(speed-up of {workers} workers: {t_one / t_prep:.2f}x)", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load_after = os.getloadavg()
    ratio = (summary.images / t_prep) / (ref_done / t_ref)
    print(f"ratio prepare / reference: {ratio:.2f}x")
    audit = summary.audit
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname() or cpu_name())[:60]
    record = {
        "benchmark": "prepare_kaggle",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "host": host,
        "device": {"cpu": cpu_name(), "cpu_count": os.cpu_count(),
                   "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                   "platform": platform.platform(),
                   # other processes compete for the CPUs when these are well above 0
                   "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)]},
        "versions": {"btc": __version__, "python": platform.python_version(), "numpy": np.__version__,
                     "opencv": cv2.__version__, "h5py": h5py.__version__},
        "src": str(args.src), "images": n, "size": args.size, "workers": workers,
        "reference": {"processes": 1, "images": ref_done, "seconds": round(t_ref, 3),
                      "images_per_s": round(ref_done / t_ref, 2)},
        "prepare": {"processes": workers, "images": summary.images, "seconds": round(t_prep, 3),
                    "images_per_s": round(summary.images / t_prep, 2)},
        "rerun": {"seconds": round(t_rerun, 3), "reused": again.reused},
        "prepare_1_worker": None if t_one is None else {
            "processes": 1, "seconds": round(t_one, 3), "images_per_s": round(summary.images / t_one, 2),
            "speedup_of_workers": round(t_one / t_prep, 3)},
        "ratio_prepare_over_reference": round(ratio, 3),
        "audit": {"exact_groups": audit["exact"]["groups"], "exact_cross_split": audit["exact"]["cross_split_groups"],
                  "near_groups": audit["near"]["groups"], "near_cross_split": audit["near"]["cross_split_groups"],
                  "near_cross_class": audit["near"]["cross_class_groups"],
                  "near_threshold": audit["near"]["threshold"]},
        "skipped": len(summary.skipped), "flagged": len(summary.flagged),
    }
    path = args.json or ROOT / "benchmarks" / "results" / f"prepare_kaggle-{host}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
