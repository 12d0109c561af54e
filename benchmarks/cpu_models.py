#!/usr/bin/env python
"""CPU speed of the papers' models next to their FLOPs, this CPU's matmul rate and ONNX Runtime.

Issue 17, point 4. For each model (`--models`; default the four papers' models and paper 002's
MLP) at each input side (`--sizes`, default 64 and 128 px):

- `flops_per_image`: forward FLOPs of one image (`btc.models.summary.flops_per_image`, a
  multiply-add = 2 FLOPs) and `train_flops_per_step`: FLOPs of one whole training step at
  `--batch-size`, counted on a real step (`torch.utils.flop_counter`, backward included: a frozen
  backbone's backward is not counted because it is not run);
- `train_ms_per_step`: one training step as the engine runs it (`btc.engine.timing.train_step`:
  forward, cross-entropy, backward, the recipe's optimiser), random inputs, per memory format
  (`--formats`), and the CPU seconds the process used per step (`train_cpu_ms_per_step`: above
  the wall time × threads when threads spin, below it when the machine's other jobs took the
  cores); `train_gflop_s` = train FLOPs / step time and `of_matmul` = that ÷ `matmul_gflop_s`;
- `infer_img_s`: eval-mode no-grad forward passes at `--infer-batch`, per memory format, and
  `ort_img_s`: ONNX Runtime on the same model exported as `btc export` does
  (`btc.engine.export`, opset 17, dynamic batch), with the same number of threads;
- `matmul_gflop_s`: a square fp32 matmul (`--matmul-n`) on this CPU, measured before every round.

Every figure is the median over `--rounds` rounds; a round measures every model, size, thread
count and format once, in turn, so that a slow spell of a shared machine hits all of them
rather than one. Each round records the 1-minute load average before and after (`load`).
Writes JSON (the shared result header: device, versions, command, date) to
`benchmarks/results/cpu_models-cpu.json` or `--out FILE`.

    python benchmarks/cpu_models.py --rounds 3
    python benchmarks/cpu_models.py --models dsconv_cbam --sizes 64 --threads 1,2 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.provenance import result_header  # noqa: E402
from btc.engine.config import resolve_config  # noqa: E402
from btc.engine.export import WithSoftmax, _export  # noqa: E402
from btc.engine.memory_format import FORMATS  # noqa: E402
from btc.engine.timing import infer_step, synthetic_batch, time_fn, train_step  # noqa: E402
from btc.engine.train import build_optimizer  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402
from btc.models import create_model  # noqa: E402
from btc.models.summary import count_params, flops_per_image  # noqa: E402

MODELS = ("resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer", "mlp")
NUM_CLASSES = 4


def matmul_gflop_s(n: int, iters: int = 5) -> float:
    """GFLOP/s of an n×n by n×n fp32 matmul (2n³ FLOPs), median of `iters` after a warm-up."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / time_fn(lambda: a @ b, iters=iters, warmup=1) / 1e9


def build(name: str, size: int, memory_format: torch.memory_format, seed: int = 0):
    """The model (random weights, as `btc train` builds it), its recipe's optimiser, a batch."""
    config = resolve_config(name, overrides={"device": "cpu", "pretrained": False, "image_size": size})
    torch.manual_seed(seed)
    model = create_model(name, NUM_CLASSES, input_size=size).to(memory_format=memory_format)
    return model, build_optimizer(model, config)


def step_flops(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> int:
    """FLOPs of one training step, forward and backward, counted while it runs."""
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    optimizer.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def time_train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, steps: int, warmup: int) -> tuple[float, float]:
    """(median wall seconds, mean process CPU seconds) of one training step."""
    model.train()
    step = train_step(model, optimizer, x, y, None)
    for _ in range(warmup):
        step()
    cpu = time.process_time()
    seconds = time_fn(step, iters=steps, warmup=0)
    return seconds, (time.process_time() - cpu) / steps


def time_infer(model: torch.nn.Module, x: torch.Tensor, iters: int, warmup: int) -> float:
    """Images/s of eval-mode no-grad forward passes of `x`."""
    model.eval()
    return len(x) / time_fn(infer_step(model, x, None), iters=iters, warmup=warmup)


def ort_rate(model: torch.nn.Module, x: torch.Tensor, threads: int, iters: int, warmup: int,
             folder: Path) -> float:
    """Images/s of ONNX Runtime (CPU provider, `threads` intra-op threads) on the exported model."""
    import onnxruntime as ort

    path = folder / "model.onnx"
    module = WithSoftmax(model.to(memory_format=torch.contiguous_format)).eval()
    _export(module, torch.zeros(2, *x.shape[1:]), path, 17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.contiguous().numpy()}
    return len(x) / time_fn(lambda: session.run(None, feed), iters=iters, warmup=warmup)


def measure(name: str, size: int, threads: int, formats: list[str], args: argparse.Namespace,
            folder: Path) -> dict[str, Any]:
    """One round's figures of one model at one size and thread count."""
    torch.set_num_threads(threads)
    row: dict[str, Any] = {"train_ms_per_step": {}, "train_cpu_ms_per_step": {}, "infer_img_s": {}}
    for fmt_name in formats:
        fmt = FORMATS[fmt_name]
        model, optimizer = build(name, size, fmt)
        x, y = synthetic_batch(args.batch_size, size, NUM_CLASSES, torch.device("cpu"), fmt)
        if "train_flops_per_step" not in row:
            row["train_flops_per_step"] = step_flops(model, optimizer, x, y)
        seconds, cpu = time_train(model, optimizer, x, y, args.steps, args.warmup)
        row["train_ms_per_step"][fmt_name] = seconds * 1e3
        row["train_cpu_ms_per_step"][fmt_name] = cpu * 1e3
        xi = x[: args.infer_batch] if args.infer_batch <= len(x) else synthetic_batch(
            args.infer_batch, size, NUM_CLASSES, torch.device("cpu"), fmt)[0]
        row["infer_img_s"][fmt_name] = time_infer(model, xi, args.steps, args.warmup)
        if args.onnx and "ort_img_s" not in row:
            row["ort_img_s"] = ort_rate(model, xi, threads, args.steps, args.warmup, folder)
    return row


def median_rows(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over rounds of every number (nested one level: per memory format)."""
    first = rounds[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = {k: statistics.median(r[key][k] for r in rounds) for k in value}
        else:
            out[key] = statistics.median(r[key] for r in rounds)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sizes", default="64,128", help="Input sides in pixels.")
    ap.add_argument("--batch-size", type=int, default=32, help="Training batch.")
    ap.add_argument("--infer-batch", type=int, default=32, help="Inference batch.")
    ap.add_argument("--threads", default=str(torch.get_num_threads()),
                    help="Comma-separated intra-op thread counts (default: PyTorch's, this CPU's cores).")
    ap.add_argument("--formats", default="contiguous,channels_last")
    ap.add_argument("--steps", type=int, default=5, help="Timed steps (median) per measurement.")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--no-onnx", dest="onnx", action="store_false", help="Skip ONNX Runtime.")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu_models-cpu.json")
    args = ap.parse_args(argv)

    names = [m for m in args.models.split(",") if m]
    sizes = [int(s) for s in args.sizes.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    formats = [f for f in args.formats.split(",") if f]
    cases = [(n, s, t) for n in names for s in sizes for t in thread_counts]
    measured: dict[tuple, list[dict[str, Any]]] = {case: [] for case in cases}
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            load_before = os.getloadavg()[0]
            matmul = {}
            for threads in thread_counts:
                torch.set_num_threads(threads)
                matmul[str(threads)] = matmul_gflop_s(args.matmul_n)
            for case in cases:
                row = measure(*case, formats, args, Path(tmp))
                row["matmul_gflop_s"] = matmul[str(case[2])]
                measured[case].append(row)
                print(f"round {r + 1} {case[0]:18s} {case[1]:4d}px {case[2]} thr  train ms/step "
                      + " ".join(f"{k} {v:8.1f}" for k, v in row["train_ms_per_step"].items())
                      + "  infer img/s " + " ".join(f"{k} {v:8.1f}" for k, v in row["infer_img_s"].items())
                      + (f"  ort {row['ort_img_s']:8.1f}" if "ort_img_s" in row else ""), flush=True)
            rounds.append({"matmul_gflop_s": matmul, "load": [load_before, os.getloadavg()[0]]})

    rows = []
    for (name, size, threads), per_round in measured.items():
        row = median_rows(per_round)
        model = create_model(name, NUM_CLASSES, input_size=size)
        best = min(row["train_ms_per_step"].values())
        train_gflop_s = row["train_flops_per_step"] / (best / 1e3) / 1e9
        rows.append({
            "model": name, "image_size": size, "threads": threads, "batch_size": args.batch_size,
            "infer_batch": args.infer_batch, "params": count_params(model)[0],
            "flops_per_image": flops_per_image(model, size),
            **row,
            "train_gflop_s": train_gflop_s, "of_matmul": train_gflop_s / row["matmul_gflop_s"],
            "ort_over_eager": (row["ort_img_s"] / max(row["infer_img_s"].values())) if "ort_img_s" in row else None,
        })
    result = {
        **result_header("cpu_models", torch.device("cpu")),
        "threads": thread_counts, "formats": formats, "steps": args.steps, "warmup": args.warmup,
        "rounds": rounds, "statistic": "median over rounds",
        "note": "random weights and inputs; machine shared with other jobs (see rounds[].load)",
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
