#!/usr/bin/env python
"""`btc prepare kaggle` against the plain two-process script of the Kaggle dataset page (issue 17.1).

    python benchmarks/prepare_kaggle.py [--src DIR ...] [--size 256] [--workers 2] [--rounds 3]
                                        [--limit N] [--profile] [--btc COMMAND] [--out FILE]

Both are timed as the commands a user runs, end to end (interpreter start, imports, every image,
and for btc the bookkeeping), on the same images, into fresh output folders on the same disk:

- **reference**: what the dataset page's snippet does and nothing else, written as a plain
  script (`reference_main`, this file run with `--reference`; it imports neither btc nor torch):
  `cv2.imread` → gray → Gaussian blur 5×5 → threshold 45 → erode ×2 → dilate ×2 → largest
  external contour (`imutils.grab_contours`) → its extreme left/right/top/bottom points → crop →
  `cv2.resize` to `--size` → `cv2.imwrite` PNG, over a `multiprocessing.Pool(2)`. The snippet crops
  the colour image; here the gray one is cropped and written, as btc writes gray images, so both
  write the same pixels' worth of PNG. The pool gets chunks of 32 images (a bare `pool.map`
  would cut 7k images into 8 chunks and leave one core idle at the end: the reference is given
  the better chunking). An image without a contour is counted as failed, not written.
- **btc**: `btc prepare kaggle SRC OUT --size N --workers W --quiet`: the same read, crop and
  write (btc's crop also keeps the head whole, `btc.data.crop`), plus the pixel SHA-256 and the
  perceptual hash of every original and written image, the resume cache, the manifest, the
  audit (exact duplicates, near-duplicate candidates by multi-index hashing, each confirmed by
  its pixels), dataset.yaml, the ownership marker and the atomic swap into OUT.

Both write PNG through OpenCV's encoder with the same parameters (none: OpenCV's default
compression level), and the total bytes each wrote are recorded. The machine is shared, so the
two are run alternately, each round in the other order (reference then btc, btc then reference,
…), each command started after a `sync` (the files the previous one wrote and deleted on the
disk: otherwise the second command of a pair pays for the first's writeback when it creates its
files), and the result is the median over
rounds of the speed ratio btc / reference (= reference seconds / btc seconds, ≥ 0.9 is the
target), with the load average before each run and the CPU seconds each used (`getrusage` of
the finished command and the processes it waited for: less sensitive to other jobs than wall
time, and complete only when every worker is reaped by the command, as with a forked pool; the
workers of a fork server, which btc used before issue 17, are not counted). Each command also
reports its own work time (from listing the inputs to the end, without interpreter start and
imports): `work_seconds`.

`--btc` times another btc, e.g. the version before a change:
`git archive <commit> btc | tar -x -C /tmp/old` then
`--btc "env PYTHONPATH=/tmp/old .venv/bin/python -P -m btc"` (`-P`: not the btc of the current folder).

`--profile` also runs `prepare_kaggle` in this process under cProfile (workers=1, so every
image's work is seen) and records the time per stage and the top functions.

Writes `benchmarks/results/prepare_kaggle-cpu.json` with the shared header (`btc.bench.provenance`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shlex
import sys
import time
from pathlib import Path

import cv2
import imutils

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("Training", "Testing")


# --------------------------------------------------------------------------- the reference script


def reference_crop(path: str, out: str, size: int) -> bool:
    """The dataset page's extreme-point crop of one image, written as PNG; False if unusable."""
    image = cv2.imread(path)
    if image is None:
        return False
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    thresh = cv2.threshold(blurred, 45, 255, cv2.THRESH_BINARY)[1]
    thresh = cv2.erode(thresh, None, iterations=2)
    thresh = cv2.dilate(thresh, None, iterations=2)
    contours = imutils.grab_contours(cv2.findContours(thresh.copy(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE))
    if not contours:
        return False
    c = max(contours, key=cv2.contourArea)
    ext_left = tuple(c[c[:, :, 0].argmin()][0])
    ext_right = tuple(c[c[:, :, 0].argmax()][0])
    ext_top = tuple(c[c[:, :, 1].argmin()][0])
    ext_bot = tuple(c[c[:, :, 1].argmax()][0])
    cropped = gray[ext_top[1]:ext_bot[1], ext_left[0]:ext_right[0]]
    if cropped.size == 0:
        return False
    return bool(cv2.imwrite(out, cv2.resize(cropped, (size, size))))


def _reference_one(job: tuple[str, str, int]) -> bool:
    return reference_crop(*job)


def reference_main(src: Path, out: Path, size: int, processes: int) -> dict[str, float]:
    """The plain script: list SRC/{Training,Testing}/<class>/*, crop each image over a pool.

    Returns the images written and failed, and the seconds from the listing to the end.
    """
    started = time.perf_counter()
    jobs = []
    for split in SPLITS:
        for label in sorted(os.listdir(src / split)):
            folder = src / split / label
            os.makedirs(out / split / label, exist_ok=True)
            for name in sorted(os.listdir(folder)):
                jobs.append((str(folder / name), str(out / split / label / (Path(name).stem + ".png")), size))
    with multiprocessing.Pool(processes) as pool:
        done = pool.map(_reference_one, jobs, chunksize=32)
    return {"images": sum(done), "failed": len(done) - sum(done), "work_seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- timing both commands


def _cpu_of_children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bytes_under(folder: Path, suffix: str = ".png") -> int:
    return sum(p.stat().st_size for p in folder.rglob(f"*{suffix}"))


def _timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and its processes, stdout)."""
    import subprocess

    cpu0, t0 = _cpu_of_children(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _cpu_of_children() - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, cpu, done.stdout


def _settle() -> None:
    """Before each timed command: the previous command's written and deleted files reach the disk
    (`sync`), so that neither command pays for the other's writeback (270 MB of PNG per run on
    kaggle-224: whichever ran second was charged up to half a millisecond per file it created)."""
    os.sync()
    time.sleep(0.5)


def _btc_command() -> list[str]:
    exe = Path(sys.executable).with_name("btc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "btc"]


def _linked_subset(src: Path, limit: int, into: Path) -> Path:
    """The first `limit` images of each split/class folder in turn, as symlinks under `into`."""
    per_folder = [sorted((src / s / c).iterdir()) for s in SPLITS if (src / s).is_dir()
                  for c in sorted(os.listdir(src / s))]
    picked: list[Path] = []
    for k in range(max(map(len, per_folder), default=0)):
        picked += [files[k] for files in per_folder if k < len(files)]
    for f in picked[:limit]:
        dst = into / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f, dst)
    return into


class _StageClock:
    """A `btc.progress.Progress` that records when each bar starts and last moves (seconds)."""

    def __init__(self) -> None:
        from btc.progress import Progress

        clock = self
        self.t0 = time.perf_counter()
        self.stages: dict[str, list[float]] = {}

        class Clock(Progress):
            def add(self, description: str, total: float | None = None, *, transient: bool = False) -> int:
                now = time.perf_counter() - clock.t0
                clock.stages[description] = [now, now]
                self._last = description
                return len(clock.stages)

            def update(self, task: int, **kwargs: object) -> None:
                clock.stages[self._last][1] = time.perf_counter() - clock.t0

        self.progress = Clock()


def _profile(src: Path, size: int, scratch: Path, top: int = 25) -> dict:
    import cProfile
    import io
    import pstats

    from btc.data.sources.kaggle import prepare_kaggle

    clock = _StageClock()
    profiler = cProfile.Profile()
    profiler.enable()
    summary = prepare_kaggle(src, scratch / "profiled", size=size, workers=1, progress=clock.progress)
    profiler.disable()
    total = time.perf_counter() - clock.t0
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    rows = [line for line in text.getvalue().splitlines() if line.strip()[:1].isdigit()][:top]
    return {"workers": 1, "images": summary.images, "seconds": round(total, 3),
            "stages_s": {k: [round(a, 3), round(b, 3)] for k, (a, b) in clock.stages.items()},
            "top_tottime": rows}


def measure(src: Path, *, size: int, workers: int, rounds: int, scratch: Path, limit: int | None,
            profile: bool, btc: list[str] | None = None, log=print) -> dict:
    """Alternate reference and btc `rounds` times on `src`; the record of one dataset."""
    import shutil

    if limit:
        src = _linked_subset(src, limit, scratch / "src")
    images = sum(1 for s in SPLITS if (src / s).is_dir() for f in (src / s).rglob("*") if f.is_file() or f.is_symlink())
    ref_cmd = [sys.executable, str(Path(__file__).resolve()), "--reference", str(src), "{out}", "--size", str(size),
               "--processes", str(workers)]
    btc_cmd = [*(btc or _btc_command()), "prepare", "kaggle", str(src), "{out}", "--size", str(size),
               "--workers", str(workers), "--quiet"]
    runs = []
    for r in range(rounds):
        row = {"round": r + 1, "first": "reference" if r % 2 == 0 else "btc"}
        order = (("reference", ref_cmd), ("btc", btc_cmd))
        for name, command in order if r % 2 == 0 else order[::-1]:
            out = scratch / f"{name}-{r}"
            _settle()
            load = os.getloadavg()[0]
            wall, cpu, stdout = _timed([out.as_posix() if c == "{out}" else c for c in command])
            row[name] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "load_1min_before": round(load, 2),
                         "png_bytes": _bytes_under(out)}
            if name == "reference":
                row[name].update(json.loads(stdout))
            else:  # the one-line result: "wrote N images to OUT in S s; …"
                row[name]["work_seconds"] = float(re.search(r" in ([0-9.]+) s;", stdout).group(1))
            row[name]["work_seconds"] = round(row[name]["work_seconds"], 3)
            shutil.rmtree(out, ignore_errors=True)
        row["speed_ratio"] = round(row["reference"]["seconds"] / row["btc"]["seconds"], 3)
        row["work_speed_ratio"] = round(row["reference"]["work_seconds"] / row["btc"]["work_seconds"], 3)
        row["cpu_ratio"] = round(row["reference"]["cpu_seconds"] / row["btc"]["cpu_seconds"], 3)
        log(f"  round {r + 1}: reference {row['reference']['seconds']:.2f} s (work {row['reference']['work_seconds']:.2f} "
            f"s, {row['reference']['cpu_seconds']:.1f} CPU s), btc {row['btc']['seconds']:.2f} s (work "
            f"{row['btc']['work_seconds']:.2f} s, {row['btc']['cpu_seconds']:.1f} CPU s): speed btc/reference "
            f"{row['speed_ratio']:.2f}, work {row['work_speed_ratio']:.2f}, CPU {row['cpu_ratio']:.2f} "
            f"(load {row['reference']['load_1min_before']:.1f})")
        runs.append(row)

    def median(values: list[float]) -> float:
        values = sorted(values)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    record = {
        "src": str(src if not limit else src.resolve()), "images": images, "limit": limit, "size": size,
        "processes": workers, "rounds": runs,
        "median_reference_s": round(median([r["reference"]["seconds"] for r in runs]), 3),
        "median_btc_s": round(median([r["btc"]["seconds"] for r in runs]), 3),
        "median_speed_ratio": round(median([r["speed_ratio"] for r in runs]), 3),
        "median_work_speed_ratio": round(median([r["work_speed_ratio"] for r in runs]), 3),
        "median_cpu_ratio": round(median([r["cpu_ratio"] for r in runs]), 3),
        "median_load_1min": round(median([r[k]["load_1min_before"] for r in runs for k in ("reference", "btc")]), 2),
    }
    if profile:
        record["profile_btc_in_process"] = _profile(src, size, scratch)
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = ROOT.parent / "shared" / "data"
    parser.add_argument("--src", type=Path, action="append", default=None,
                        help="a Kaggle-layout folder (repeatable; default: ../shared/data/kaggle-224 and "
                             "kaggle-original-sample)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="processes of both (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="reference/btc pairs per dataset (default 3)")
    parser.add_argument("--limit", type=int, default=None, help="only N images of each dataset")
    parser.add_argument("--profile", action="store_true", help="also profile btc's prepare in this process")
    parser.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--btc", default=None,
                        help="the command that runs btc (default: the btc next to this Python), e.g. "
                             "'env PYTHONPATH=/tmp/old python -m btc' to time another version")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prepare_kaggle-cpu.json")
    args = parser.parse_args(argv)

    import shutil
    import tempfile

    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from btc.bench.provenance import cpu_name, result_header

    sources = args.src or [data / "kaggle-224", data / "kaggle-original-sample"]
    for src in sources:
        if not (src / "Training").is_dir():
            sys.exit(f"{src}: not the Kaggle layout (Training/, Testing/); see ../shared/data/README.md")
    result = {
        **result_header("prepare_kaggle", torch.device("cpu")),
        "cpu": {"name": cpu_name(), "count": os.cpu_count(),
                "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
        "libraries": {"opencv": cv2.__version__, "numpy": np.__version__, "imutils": imutils.__version__},
        "png": "both through OpenCV's PNG encoder with no parameter (its default compression level)",
        "ratio": "speed btc / reference = reference seconds / btc seconds, median over alternating rounds",
        "datasets": [],
    }
    for src in sources:
        print(f"{src} (--size {args.size}, {args.workers} processes, {args.rounds} rounds; "
              f"{os.cpu_count()} CPUs: {cpu_name()})", flush=True)
        scratch = Path(tempfile.mkdtemp(prefix="btc-prepare-bench-", dir=args.tmp))
        try:
            record = measure(src, size=args.size, workers=args.workers, rounds=args.rounds, scratch=scratch,
                             limit=args.limit, profile=args.profile, btc=shlex.split(args.btc) if args.btc else None,
                             log=lambda s: print(s, flush=True))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        record["src"] = str(src)
        print(f"  median speed btc/reference {record['median_speed_ratio']:.2f} (CPU {record['median_cpu_ratio']:.2f}), "
              f"median load {record['median_load_1min']:.1f}", flush=True)
        result["datasets"].append(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reference":
        ref = argparse.ArgumentParser()
        ref.add_argument("--reference", nargs=2, type=Path, metavar=("SRC", "OUT"))
        ref.add_argument("--size", type=int, default=256)
        ref.add_argument("--processes", type=int, default=2)
        a = ref.parse_args()
        print(json.dumps(reference_main(a.reference[0], a.reference[1], a.size, a.processes)))
    else:
        main()
