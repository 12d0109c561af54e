#!/usr/bin/env python
"""`make gpu-bench`: what a lent GPU measures, step by step (issue 17, point 6).

Each step runs in its own process, under `--step-timeout` (9 minutes) of wall time, and writes
one JSON result (device, versions, command, date and the step's figures); a step whose result
already exists is skipped (`FORCE=1` runs it again), so the steps can be spread over several
calls of a GPU lease (`make gpu-bench STEP=benchmark`, …):

    tests              pytest -m cuda: the tests that need a GPU (tests/test_gpu_paths.py)
    benchmark          btc benchmark --device cuda, the four paper models at their paper sizes
    train_throughput   benchmarks/train_throughput.py on kaggle-224 (btc vs ceiling vs naive loop)
    cv_walltime        benchmarks/cv_walltime.py on kaggle-224 (paper 001's 10-fold protocol)
    paper002-MODEL     btc train with paper 002's protocol on kaggle-224 (35 epochs, 224 px,
                       Kaggle Training → Testing; --no-pretrained for a model with ImageNet
                       weights): MODEL = dsconv_cbam, mobilenet_v2, mlp (`paper002`: all three)

kaggle-224 is `.data/kaggle-224` (carried to the GPU machine, ../shared/GPU.md) or
`../shared/data/kaggle-224`, prepared once per machine with `btc prepare kaggle --size 256` in
the work folder. The GPU machine has no package index: btc runs from the working tree
(`PYTHONPATH=.`), and the wheels carried in `.whl/` (imutils for `btc prepare kaggle`; pytest,
pluggy and iniconfig for the `tests` step where the image lacks pytest) are installed without
an index into the work folder (`pip install --no-index --no-deps --target WORK/site`).

`GPU=0` (or `--cpu`) runs the same steps at tiny sizes on the CPU — a phantom dataset, 32 px,
one step or one epoch — and writes under a temporary folder, never benchmarks/results: CI runs
it to prove this script works (tests/test_gpu_paths.py).

    make gpu-bench                        # every step not done yet, results in benchmarks/results/
    make gpu-bench STEP=paper002-mlp      # one step
    GPU=0 make gpu-bench                  # the CPU smoke run
    python3 benchmarks/gpu_bench.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAPER_MODELS = ("resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer")  # papers 001–004
PAPER002_MODELS = ("dsconv_cbam", "mobilenet_v2", "mlp")  # paper 002, §4.2
STEP_TIMEOUT = 540.0  # each step under 9 minutes: a GPU lease runs 10-minute calls
KAGGLE224 = (REPO / ".data" / "kaggle-224", REPO.parent / "shared" / "data" / "kaggle-224")


class StepFailed(Exception):
    """A step's command failed or ran out of time (the other steps still run)."""


@dataclass(frozen=True)
class Mode:
    """Where and at which size the steps run."""

    gpu: bool
    results: Path
    work: Path
    kaggle224: Path | None
    timeout: float

    @property
    def device(self) -> str:
        return "cuda" if self.gpu else "cpu"

    def result(self, stem: str) -> Path:
        return self.results / f"{stem}-{self.device}.json"


class Budget:
    """The wall time left to one step, shared by its commands (and their PYTHONPATH)."""

    def __init__(self, seconds: float, python_path: str) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.python_path = python_path

    def left(self) -> float:
        return self.deadline - time.monotonic()


def carried_site(work: Path) -> Path | None:
    """The wheels of `.whl/` installed (once, without a package index) into `work/site`."""
    wheels = sorted((REPO / ".whl").glob("*.whl"))
    if not wheels:
        return None
    site = work / "site"
    stamp = site / ".installed"
    names = "\n".join(w.name for w in wheels)
    if not (stamp.is_file() and stamp.read_text() == names):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--upgrade",
                        "--target", str(site), *map(str, wheels)], check=True)
        stamp.write_text(names)
    if str(site) not in sys.path:
        sys.path.append(str(site))
    return site


def python_path(site: Path | None) -> str:
    """The working tree, then what PYTHONPATH already holds, then the carried wheels."""
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([str(REPO), *existing, *([str(site)] if site else [])]))


def run(cmd: list[str], budget: Budget) -> None:
    """Run `cmd` in the repository within the step's budget: SIGTERM at the deadline (btc
    writes checkpoints atomically, so an interrupted step is only re-run), then SIGKILL."""
    left = budget.left()
    if left <= 0:
        raise StepFailed(f"no time left in the step's {budget.seconds:.0f} s for: {shlex.join(cmd)}")
    print(f"$ {shlex.join(cmd)}", flush=True)
    env = {**os.environ, "PYTHONPATH": budget.python_path, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    try:
        code = proc.wait(timeout=left)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise StepFailed(f"out of time ({budget.seconds:.0f} s a step): {shlex.join(cmd)}") from None
    if code != 0:
        raise StepFailed(f"exit code {code}: {shlex.join(cmd)}")


def btc(*args: object) -> list[str]:
    return [sys.executable, "-m", "btc", *map(str, args)]


def script(name: str, *args: object) -> list[str]:
    return [sys.executable, str(REPO / "benchmarks" / name), *map(str, args)]


def header(step: str, mode: Mode, cmd: list[str]) -> dict[str, Any]:
    """The shared result header (btc.bench.provenance) with the command this step ran."""
    import torch

    from btc.bench.provenance import result_header

    return {**result_header(step, torch.device(mode.device)), "command": shlex.join(cmd),
            "gpu_bench": {"step": step, "size": "full" if mode.gpu else "tiny (GPU=0 smoke run)"}}


def write_json(path: Path, value: dict[str, Any]) -> None:
    from btc.io import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, value)


# --------------------------------------------------------------------------- data


def prepared(mode: Mode, budget: Budget) -> tuple[Path, Path]:
    """(prepared dataset, class-per-folder raw images for the naive loop), made once."""
    if mode.gpu:
        if mode.kaggle224 is None:
            raise StepFailed("kaggle-224 not found: carry .data/kaggle-224 (../shared/GPU.md) or pass --kaggle224")
        data, raw = mode.work / "kaggle224-256", mode.kaggle224 / "Training"
        if not (data / "manifest.csv").is_file():
            run(btc("prepare", "kaggle", mode.kaggle224, data, "--size", 256, "--quiet"), budget)
    else:
        data = mode.work / "phantom"
        raw = data / "images"
        if not (data / "manifest.csv").is_file():
            run(btc("prepare", "phantom", data, "--per-class", 24, "--size", 48, "--quiet"), budget)
    return data, raw


# --------------------------------------------------------------------------- steps


def step_tests(mode: Mode, out: Path, budget: Budget) -> None:
    """The `cuda`-marked tests (all skipped on the CPU), counted from pytest's JUnit XML."""
    import importlib.util

    if importlib.util.find_spec("pytest") is None:
        raise StepFailed("pytest is not installed here: carry its wheels (pip wheel --no-deps pytest pluggy "
                         "iniconfig -w .whl) or install it")
    xml = mode.work / "cuda-tests.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", f"--junitxml={xml}",
           "tests"]
    failure = None
    try:
        run(cmd, budget)
    except StepFailed as e:  # failed tests are a result to record; the step is then re-run
        failure = str(e)
    if not xml.is_file():
        raise StepFailed(failure or "pytest wrote no report")
    tests = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time") or 0)})
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failure", "error", "skipped")}
    ok = failure is None and counts["failure"] == counts["error"] == 0 and bool(tests)
    write_json(out, {**header("cuda_tests", mode, cmd), "ok": ok, "failure": failure, "counts": counts,
                     "tests": tests})
    if not ok:
        raise StepFailed(failure or f"cuda tests: {counts}")


def step_benchmark(mode: Mode, out: Path, budget: Budget) -> None:
    cmd = btc("benchmark", "--models", ",".join(PAPER_MODELS), "--device", mode.device, "--out", out, "--quiet")
    if not mode.gpu:
        cmd += ["--image-size", "32", "--batch-size", "2", "--iters", "1", "--warmup", "0"]
    run(cmd, budget)


def step_train_throughput(mode: Mode, out: Path, budget: Budget) -> None:
    data, raw = prepared(mode, budget)
    cmd = script("train_throughput.py", "--data", data, "--raw", raw, "--device", mode.device, "--out", out)
    if not mode.gpu:
        cmd += ["--image-size", "32", "--batch-size", "4", "--steps", "1", "--warmup", "1", "--workers", "0"]
    run(cmd, budget)


def step_cv_walltime(mode: Mode, out: Path, budget: Budget) -> None:
    data, _ = prepared(mode, budget)
    cmd = script("cv_walltime.py", "--data", data, "--device", mode.device, "--out", out)
    cmd += ["--parallel-folds", "1,2,4"] if mode.gpu else [
        "--image-size", "32", "--steps", "1", "--warmup", "1", "--parallel-folds", "1", "--folds", "3",
        "--epochs", "2"]
    run(cmd, budget)


def step_paper002(model: str) -> Callable[[Mode, Path, Budget], None]:
    """Paper 002's protocol for `model`: the recipe as it is (35 epochs, 224 px, batch 64,
    Adam), Kaggle Training → Testing; ImageNet-pretrained models start from random weights
    (recorded as a deviation in the run's provenance)."""

    def step(mode: Mode, out: Path, budget: Budget) -> None:
        from btc.models import get_spec
        from btc.runfolder import RunFolder

        data, _ = prepared(mode, budget)
        run_dir = mode.work / "runs" / f"paper002-{model}"
        cmd = btc("train", "--data", data, "--model", model, "--recipe", "paper002", "--device", mode.device,
                  "--out", run_dir, "--resume", "--quiet")
        if get_spec(model).pretrained:
            cmd.append("--no-pretrained")
        if not mode.gpu:
            cmd += ["--epochs", "1", "--image-size", "32", "--batch-size", "8"]
        began = time.perf_counter()
        run(cmd, budget)
        seconds = time.perf_counter() - began
        folder = RunFolder(run_dir)
        config = folder.read_config()
        history = folder.read_history()
        write_json(out, {
            **header(f"paper002-{model}", mode, cmd), "ok": True, "model": model, "recipe": "paper002",
            "data": str(data), "run": str(run_dir), "seconds": seconds,
            "config": {k: config.get(k) for k in ("epochs", "image_size", "batch_size", "optimizer", "lr",
                                                  "amp", "channels_last", "compile", "pretrained")},
            "provenance": config.get("provenance"),
            "history": json.loads(history.to_json(orient="records")),
            "metrics": folder.read_metrics(),
        })

    return step


STEPS: dict[str, tuple[str, Callable[[Mode, Path, Budget], None]]] = {
    "tests": ("cuda_tests", step_tests),
    "benchmark": ("benchmark", step_benchmark),
    "train_throughput": ("train_throughput", step_train_throughput),
    "cv_walltime": ("cv_walltime", step_cv_walltime),
    **{f"paper002-{m}": (f"paper002-kaggle224-{m}", step_paper002(m)) for m in PAPER002_MODELS},
}
GROUPS = {"all": list(STEPS), "paper002": [f"paper002-{m}" for m in PAPER002_MODELS]}


def selected(steps: str) -> list[str]:
    names: list[str] = []
    for name in (s.strip() for s in steps.split(",") if s.strip()):
        if name not in STEPS and name not in GROUPS:
            raise SystemExit(f"unknown step {name!r}; steps: {', '.join([*STEPS, *GROUPS])}")
        names += GROUPS.get(name, [name])
    return list(dict.fromkeys(names))


def done(path: Path) -> bool:
    """A result exists (and, for the results this script writes itself, says ok)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and value.get("ok", True) is True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", default="all", help=f"Comma-separated steps or groups: {', '.join([*STEPS, *GROUPS])}.")
    ap.add_argument("--cpu", action="store_true", default=os.environ.get("GPU", "1").strip() == "0",
                    help="Tiny sizes on the CPU (also GPU=0).")
    ap.add_argument("--results", type=Path, default=None,
                    help="Result folder (default: benchmarks/results; GPU=0: a temporary folder).")
    ap.add_argument("--work", type=Path, default=None, help="Prepared data and run folders (default: temporary).")
    ap.add_argument("--kaggle224", type=Path, default=None, help="The kaggle-224 folder (Training/, Testing/).")
    ap.add_argument("--force", action="store_true", default=os.environ.get("FORCE", "").strip() not in ("", "0"),
                    help="Run steps whose result exists (also FORCE=1).")
    ap.add_argument("--step-timeout", type=float, default=STEP_TIMEOUT, help="Seconds a step may take.")
    ap.add_argument("--list", action="store_true", help="List the steps and their result files.")
    args = ap.parse_args(argv)

    gpu = not args.cpu
    scratch = Path(tempfile.gettempdir()) / ("btc-gpu-bench" if gpu else "btc-gpu-bench-cpu")
    results = args.results or (REPO / "benchmarks" / "results" if gpu else scratch / "results")
    kaggle = args.kaggle224 or next((p for p in KAGGLE224 if (p / "Training").is_dir()), None)
    mode = Mode(gpu, results.resolve(), (args.work or scratch / "work").resolve(), kaggle, args.step_timeout)
    names = selected(args.step)
    if args.list:
        for name in names:
            print(f"{name:28s} {mode.result(STEPS[name][0])}")
        return 0
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device here: `GPU=0 make gpu-bench` runs the steps at tiny sizes on the CPU")
    site = carried_site(mode.work)
    summary = []
    for name in names:
        stem, step = STEPS[name]
        out = mode.result(stem)
        if done(out) and not args.force:
            summary.append((name, "skipped (result exists)", 0.0, out))
            continue
        print(f"== gpu-bench step {name} ({mode.device}) → {out}", flush=True)
        began = time.perf_counter()
        try:
            step(mode, out, Budget(mode.timeout, python_path(site)))
            status = "done" if out.is_file() else "FAILED: no result written"
        except StepFailed as e:
            status = f"FAILED: {e}"
        summary.append((name, status, time.perf_counter() - began, out))
    print("\ngpu-bench summary:")
    for name, status, seconds, out in summary:
        print(f"  {name:28s} {seconds:7.1f} s  {status}  ({out})")
    return 1 if any(s.startswith("FAILED") for _, s, _, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
