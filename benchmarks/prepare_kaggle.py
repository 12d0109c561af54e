#!/usr/bin/env python
"""`btc prepare kaggle` against the plain two-process script of the Kaggle dataset page (issue 17.1).

    python benchmarks/prepare_kaggle.py [--src DIR[@N] ...] [--size 256] [--workers 2] [--rounds 3]
                                        [--limit N] [--stages] [--profile] [--btc COMMAND] [--out FILE]

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

Both write the same PNG files: the reference through OpenCV's encoder with no parameter (its
default compression: zlib level 1, `Z_RLE`, Sub filter), btc the same bytes through zlib-ng
(`btc.data.png`, tested equal to OpenCV's file byte for byte); the total bytes each wrote are
recorded. The machine is shared, so the
two are run alternately, each round in the other order (reference then btc, btc then reference,
…), each command started after a `sync` (the files the previous one wrote reach the disk:
otherwise the second command of a pair pays for the first's writeback when it creates its
files) and every output kept until the last command (`_settle`), and the result is the median over
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

Datasets (`--src`, repeatable): by default kaggle-224, the 188-image original-size sample, and
that sample with each image linked 37 times (`DIR@37`, 6,956 inputs): the issue's figures are on
the 7,023 originals, which ../shared does not hold; on the sample alone start-up and finishing
weigh far more than on the full set, and kaggle-224's small images make the PNG encoding (the
same work on both sides) weigh more than on originals.

`--stages` also times each step of both pipelines per image in this process (`stage_costs`: no
pool, no start-up, no finishing): read and decode, crop, resize, PNG encode and write on both
sides, and btc's bookkeeping (pixel SHA-256 and perceptual hash of the written and original
image, the thumbnail for the near-duplicate check) on its side; btc's steps are a timed copy
of its worker, checked to give the worker's row.

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
from collections.abc import Callable
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
    """Before each timed command: the previous command's written files reach the disk (`sync`), so
    that neither command pays for the other's writeback (270 MB of PNG per run on kaggle-224:
    whichever ran second was charged up to half a millisecond per file it created). The outputs
    are deleted only after the last command (`measure`): on a file system mounted with `discard`
    (this machine's), deleting 7,000 files makes the next ones slow to create (0.02 → 0.4 ms per
    file) while the freed blocks are discarded."""
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


def _linked_repeats(src: Path, repeat: int, into: Path) -> Path:
    """Every image of `src` linked `repeat` times under `into` (`<stem>_rNN<suffix>`): inputs at the
    original sizes in the number of the full set, so that per-image costs weigh as they do there
    and start-up and finishing costs do not dominate as on the 188-image sample. The copies are
    exact: btc's audit groups them by pixel hash (no pixel check of near duplicates among them)."""
    for split in SPLITS:
        if not (src / split).is_dir():
            continue
        for label in sorted(os.listdir(src / split)):
            (into / split / label).mkdir(parents=True, exist_ok=True)
            for f in sorted((src / split / label).iterdir()):
                for k in range(repeat):
                    os.symlink(f.resolve(), into / split / label / f"{f.stem}_r{k:02d}{f.suffix}")
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


# --------------------------------------------------------------------------- where the time goes


def _stopwatch(clock: dict[str, int]) -> Callable[[str], None]:
    """`tick(step)`: adds the nanoseconds since the previous tick (or since now) to `clock[step]`."""
    last = time.perf_counter_ns()

    def tick(step: str) -> None:
        nonlocal last
        now = time.perf_counter_ns()
        clock[step] = clock.get(step, 0) + now - last
        last = now

    return tick


def _reference_steps(path: str, out: str, size: int, clock: dict[str, int]) -> None:
    """`reference_crop`, each step timed into `clock` (nanoseconds)."""
    tick = _stopwatch(clock)
    gray = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY)
    tick("read and decode")
    thresh = cv2.threshold(cv2.GaussianBlur(gray, (5, 5), 0), 45, 255, cv2.THRESH_BINARY)[1]
    thresh = cv2.dilate(cv2.erode(thresh, None, iterations=2), None, iterations=2)
    c = max(imutils.grab_contours(cv2.findContours(thresh.copy(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)),
            key=cv2.contourArea)
    left, right = tuple(c[c[:, :, 0].argmin()][0]), tuple(c[c[:, :, 0].argmax()][0])
    top, bottom = tuple(c[c[:, :, 1].argmin()][0]), tuple(c[c[:, :, 1].argmax()][0])
    cropped = gray[top[1]:bottom[1], left[0]:right[0]]
    tick("crop")
    resized = cv2.resize(cropped, (size, size))
    tick("resize")
    cv2.imwrite(out, resized)
    tick("PNG encode and write")


def _btc_steps(task: dict, clock: dict[str, int]) -> dict:
    """`btc.data.sources.kaggle._prepare_one` (extreme crop, PNG), each step timed into `clock`;
    returns its row (checked against `_prepare_one`'s by `stage_costs`)."""
    from btc.data.crop import crop_box
    from btc.data.images import phash64, pixel_sha256, resize_square
    from btc.data.prepare.inputs import read_input_image
    from btc.data.prepare.writing import encode_image, staged, write_staged
    from btc.data.similarity import thumbnail

    tick = _stopwatch(clock)
    gray = read_input_image(task)
    tick("read and decode")
    result = crop_box(gray, task["pad"])
    tick("crop")
    x0, y0, x1, y1 = result.box
    out = resize_square(gray[y0:y1, x0:x1], task["size"])
    tick("resize")
    data = encode_image(out, "png")
    tick("PNG encode")
    write_staged(staged(task, task["path"]), data)
    tick("PNG write")
    row = {"sha256": pixel_sha256(out), "orig_sha256": pixel_sha256(gray)}
    tick("SHA-256 of the written and original pixels")
    row.update(phash=phash64(out), orig_phash=phash64(gray))
    tick("perceptual hash of the written and original image")
    thumbnail(out)
    tick("thumbnail for the near-duplicate check")
    row["crop"] = ",".join(map(str, result.box))
    return row


def stage_costs(src: Path, size: int, scratch: Path, images: int = 1500, passes: int = 3) -> dict:
    """Milliseconds per image of each step of both pipelines, in this one process (no pool, no
    start-up or finishing), on the same `images` inputs (spread over the dataset), `passes`
    alternating passes each into fresh folders after a `sync`; btc's steps are those of
    `_prepare_one`, whose rows they must reproduce (checked on the first images)."""
    import shutil

    from btc.data.limits import ImageLimits
    from btc.data.sources.kaggle import _prepare_one

    files = sorted(str(f) for s in SPLITS if (src / s).is_dir() for f in (src / s).rglob("*") if f.is_file())
    files = files[::max(1, len(files) // images)][:images]
    limits = ImageLimits.from_env().as_dict()
    cv2.setNumThreads(1)  # as in a worker of either pool

    def task(k: int, path: str, stage: Path) -> dict:
        return {"src": path, "key": path, "fp": "", "stage": str(stage), "limits": limits, "split": "Training",
                "label": "glioma", "path": f"images/{k % 8}/{k}.png", "crop": "extreme", "pad": 0, "size": size,
                "format": "png"}

    check = scratch / "check"
    for k, path in enumerate(files[:20]):
        expected = _prepare_one(task(k, path, check))["row"]
        got = _btc_steps(task(k, path, check / "steps"), {})
        if any(got[key] != expected[key] for key in got):
            raise RuntimeError(f"the timed btc steps no longer reproduce _prepare_one on {path}: update _btc_steps")
    clocks: dict[str, dict[str, int]] = {"reference": {}, "btc": {}}
    for p in range(passes):
        for name in ("reference", "btc") if p % 2 == 0 else ("btc", "reference"):
            out = scratch / f"steps-{name}-{p}"
            for k in range(8):
                (out / "images" / str(k)).mkdir(parents=True)
            _settle()
            for k, path in enumerate(files):
                if name == "reference":
                    _reference_steps(path, str(out / "images" / str(k % 8) / f"{k}.png"), size, clocks[name])
                else:
                    _btc_steps(task(k, path, out), clocks[name])
    for p in range(passes):
        for name in clocks:
            shutil.rmtree(scratch / f"steps-{name}-{p}", ignore_errors=True)
    per_image = {name: {step: round(ns / passes / len(files) / 1e6, 4) for step, ns in clock.items()}
                 for name, clock in clocks.items()}
    totals = {name: round(sum(steps.values()), 4) for name, steps in per_image.items()}
    return {"images": len(files), "passes": passes, "ms_per_image": per_image, "total_ms_per_image": totals,
            "btc_over_reference": round(totals["btc"] / totals["reference"], 3)}


def measure(src: Path, *, size: int, workers: int, rounds: int, scratch: Path, limit: int | None,
            profile: bool, btc: list[str] | None = None, log=print, repeat: int = 1, stages: bool = False) -> dict:
    """Alternate reference and btc `rounds` times on `src`; the record of one dataset."""
    import shutil

    if limit:
        src = _linked_subset(src, limit, scratch / "src")
    if repeat > 1:
        src = _linked_repeats(src, repeat, scratch / "repeated")
    images = sum(1 for s in SPLITS if (src / s).is_dir() for f in (src / s).rglob("*") if f.is_file() or f.is_symlink())
    ref_cmd = [sys.executable, str(Path(__file__).resolve()), "--reference", str(src), "{out}", "--size", str(size),
               "--processes", str(workers)]
    btc_cmd = [*(btc or _btc_command()), "prepare", "kaggle", str(src), "{out}", "--size", str(size),
               "--workers", str(workers), "--quiet"]
    runs = []
    outputs: list[Path] = []  # deleted after the last command (`_settle`)
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
            outputs.append(out)
        row["speed_ratio"] = round(row["reference"]["seconds"] / row["btc"]["seconds"], 3)
        row["work_speed_ratio"] = round(row["reference"]["work_seconds"] / row["btc"]["work_seconds"], 3)
        row["cpu_ratio"] = round(row["reference"]["cpu_seconds"] / row["btc"]["cpu_seconds"], 3)
        log(f"  round {r + 1}: reference {row['reference']['seconds']:.2f} s (work {row['reference']['work_seconds']:.2f} "
            f"s, {row['reference']['cpu_seconds']:.1f} CPU s), btc {row['btc']['seconds']:.2f} s (work "
            f"{row['btc']['work_seconds']:.2f} s, {row['btc']['cpu_seconds']:.1f} CPU s): speed btc/reference "
            f"{row['speed_ratio']:.2f}, work {row['work_speed_ratio']:.2f}, CPU {row['cpu_ratio']:.2f} "
            f"(load {row['reference']['load_1min_before']:.1f})")
        runs.append(row)
    for out in outputs:
        shutil.rmtree(out, ignore_errors=True)

    def median(values: list[float]) -> float:
        values = sorted(values)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    record = {
        "src": str(src if not limit else src.resolve()), "images": images, "limit": limit, "repeat": repeat, "size": size,
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
    if stages:
        record["steps_in_one_process"] = stage_costs(src, size, scratch)
        log(f"  per image in one process: reference {record['steps_in_one_process']['total_ms_per_image']['reference']:.3f} "
            f"ms, btc {record['steps_in_one_process']['total_ms_per_image']['btc']:.3f} ms")
    return record


def _source(text: str) -> tuple[Path, int]:
    """`DIR` or `DIR@N` (each image of DIR linked N times, `_linked_repeats`)."""
    path, _, count = text.rpartition("@")
    if path and count.isdigit() and int(count) >= 1:
        return Path(path), int(count)
    return Path(text), 1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = ROOT.parent / "shared" / "data"
    parser.add_argument("--src", action="append", default=None,
                        help="a Kaggle-layout folder, DIR@N to link each of its images N times (repeatable; "
                             "default: ../shared/data/kaggle-224, kaggle-original-sample and kaggle-original-sample@37)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="processes of both (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="reference/btc pairs per dataset (default 3)")
    parser.add_argument("--limit", type=int, default=None, help="only N images of each dataset")
    parser.add_argument("--stages", action="store_true",
                        help="also time each step of both pipelines per image, in this process")
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

    sources = [_source(text) for text in args.src] if args.src else [
        (data / "kaggle-224", 1), (data / "kaggle-original-sample", 1), (data / "kaggle-original-sample", 37)]
    for src, _repeat in sources:
        if not (src / "Training").is_dir():
            sys.exit(f"{src}: not the Kaggle layout (Training/, Testing/); see ../shared/data/README.md")
    result = {
        **result_header("prepare_kaggle", torch.device("cpu")),
        "cpu": {"name": cpu_name(), "count": os.cpu_count(),
                "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
        "libraries": {"opencv": cv2.__version__, "numpy": np.__version__, "imutils": imutils.__version__},
        "png": ("the same files: the reference through OpenCV's PNG encoder with no parameter (zlib level 1, "
                "Z_RLE, Sub filter), btc through btc.data.png (the same bytes, deflated by zlib-ng)"),
        "ratio": "speed btc / reference = reference seconds / btc seconds, median over alternating rounds",
        "datasets": [],
    }
    for src, repeat in sources:
        print(f"{src}{f' (each image linked {repeat} times)' if repeat > 1 else ''} (--size {args.size}, {args.workers} processes, {args.rounds} rounds; "
              f"{os.cpu_count()} CPUs: {cpu_name()})", flush=True)
        scratch = Path(tempfile.mkdtemp(prefix="btc-prepare-bench-", dir=args.tmp))
        try:
            record = measure(src, size=args.size, workers=args.workers, rounds=args.rounds, scratch=scratch,
                             limit=args.limit, profile=args.profile, btc=shlex.split(args.btc) if args.btc else None,
                             repeat=repeat, stages=args.stages,
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
