"""`btc benchmark`: size, FLOPs, throughput, latency and memory of registered models.

For each model (4-class head, random initialisation, synthetic data):

- `params`, `trainable_params`, `size_mb`, `size_mib`: `btc.models.summary` (float32 sizes);
- `flops`: FLOPs of one image (batch 1, eval mode, `torch.utils.flop_counter`, a multiply-add = 2
  FLOPs) at `image_size`, which is `--image-size` when given, else the model's paper input size;
- `infer_img_s`: images/s of no-grad eval-mode forward passes at `--batch-size`;
- `train_img_s`: images/s of the training engine's step (forward, cross-entropy, backward,
  optimiser step of the model's recipe) at `--batch-size`;
- `latency_ms`: one batch-1 eval forward pass;
- `peak_mem_mb`: CUDA peak allocated memory of this model's measurement, or on CPU the peak RSS
  of the whole process so far (see `btc.bench.memory`);
- `infer_tflops` / `train_tflops`: achieved TFLOP/s = flops × images/s (× 3 for training: the
  backward pass costs about twice the forward) — an estimate (frozen models' backward is cheaper)
  to compare with the device's peak.

Each time is the median of `iters` timed iterations after `warmup` untimed ones, CUDA-synchronised
(`btc.bench.timing.time_fn`). AMP (bf16 where supported, else fp16) is used on CUDA only; on CPU
it is off and reported as false. `--channels-last auto` is off on CPU; on CUDA both formats are
measured and the faster is reported and cached for the training engine
(`btc.bench.memory_format`).
"""

from __future__ import annotations

import copy
import platform
from pathlib import Path

import torch

from btc.bench.memory import peak_mb, reset_peak
from btc.bench.memory_format import cache_key, device_name, store_choice
from btc.bench.steps import infer_step, synthetic_batch, train_step
from btc.bench.timing import time_fn
from btc.errors import BtcError

NUM_CLASSES = 4
CHANNELS_LAST = ("auto", "on", "off")


def _amp_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    from btc.engine.config import TrainConfig
    from btc.engine.train import amp_dtype

    return amp_dtype(TrainConfig(amp="auto" if amp else "off"), device)


def _measure(name: str, model: torch.nn.Module, *, device: torch.device, batch_size: int, image_size: int,
             amp_dtype: torch.dtype | None, memory_format: torch.memory_format, compile: bool,
             iters: int, warmup: int) -> dict:
    """Throughput, latency and peak memory of `model` (trained in place) in one memory format."""
    from btc.engine.config import resolve_config
    from btc.engine.train import build_optimizer

    model = model.to(device, memory_format=memory_format)
    forward = torch.compile(model) if compile else model
    reset_peak(device)
    try:
        model.eval()
        x1, _ = synthetic_batch(1, image_size, NUM_CLASSES, device, memory_format)
        latency = time_fn(infer_step(forward, x1, amp_dtype), iters, warmup, device)
        x, y = synthetic_batch(batch_size, image_size, NUM_CLASSES, device, memory_format)
        infer = time_fn(infer_step(forward, x, amp_dtype), iters, warmup, device)
        model.train()
        optimizer = build_optimizer(model, resolve_config(name))
        train = time_fn(train_step(forward, optimizer, x, y, amp_dtype), iters, warmup, device)
    except BtcError:
        raise
    except Exception as exc:
        if not compile:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BtcError(f"torch.compile failed for {name}: {first}") from None
    return {
        "infer_img_s": batch_size / infer,
        "train_img_s": batch_size / train,
        "latency_ms": latency * 1000.0,
        "peak_mem_mb": peak_mb(device),
    }


def benchmark_model(name: str, *, device: torch.device | str, batch_size: int, image_size: int | None,
                    amp: bool, channels_last: str, compile: bool, iters: int, warmup: int) -> dict:
    """One `results` entry of the benchmark JSON for model `name`."""
    from btc.models.registry import create_model, get_spec
    from btc.models.summary import count_params, flops_per_image

    device = torch.device(device)
    spec = get_spec(name)
    size = int(image_size or spec.input_size)
    dtype = _amp_dtype(amp, device)
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES, input_size=size)
    total, trainable = count_params(model)
    flops = flops_per_image(model, size)

    if channels_last == "on":
        formats = [torch.channels_last]
    elif channels_last == "auto" and device.type == "cuda":
        formats = [torch.contiguous_format, torch.channels_last]
    else:
        formats = [torch.contiguous_format]
    measured = []
    for fmt in formats:
        trial = copy.deepcopy(model) if len(formats) > 1 else model
        m = _measure(name, trial, device=device, batch_size=batch_size, image_size=size, amp_dtype=dtype,
                     memory_format=fmt, compile=compile, iters=iters, warmup=warmup)
        measured.append((fmt, m))
        del trial
    # the faster format: least time per image for inference + training together
    fmt, best = min(measured, key=lambda fm: 1 / fm[1]["infer_img_s"] + 1 / fm[1]["train_img_s"])
    if len(measured) > 1:
        store_choice(cache_key(name, device, size, batch_size, dtype), fmt,
                     {("channels_last" if f == torch.channels_last else "contiguous"):
                      1 / m["infer_img_s"] + 1 / m["train_img_s"] for f, m in measured})
    return {
        "model": name,
        "image_size": size,
        "batch_size": int(batch_size),
        "params": int(total),
        "trainable_params": int(trainable),
        "size_mb": round(total * 4 / 1e6, 3),
        "size_mib": round(total * 4 / 2**20, 3),
        "flops": int(flops),
        "infer_img_s": round(best["infer_img_s"], 3),
        "train_img_s": round(best["train_img_s"], 3),
        "latency_ms": round(best["latency_ms"], 3),
        "peak_mem_mb": round(best["peak_mem_mb"], 1),
        "channels_last": fmt == torch.channels_last,
        "compiled": bool(compile),
        "infer_tflops": round(flops * best["infer_img_s"] / 1e12, 6),
        "train_tflops": round(3 * flops * best["train_img_s"] / 1e12, 6),
    }


def run_benchmark(models: list[str] | str = "all", *, device: str = "auto", batch_size: int = 32,
                  image_size: int | None = None, amp: bool = True, channels_last: str = "auto",
                  compile: bool = False, iters: int = 10, warmup: int = 3,
                  on_result=None) -> dict:
    """The benchmark JSON object: `device`, `torch`, `cuda`, `settings`, `results`."""
    import btc.models  # noqa: F401  (registers the architectures)
    from btc.engine.train import resolve_device
    from btc.models.registry import get_spec, list_models

    if isinstance(models, str):
        models = list_models() if models.strip() == "all" else [m for m in models.split(",")]
    names = [m.strip() for m in models if m.strip()]
    if not names:
        raise BtcError("--models: give at least one model name, or all")
    for n in names:
        get_spec(n)  # unknown names fail before any work
    if channels_last not in CHANNELS_LAST:
        raise BtcError(f"--channels-last must be one of {', '.join(CHANNELS_LAST)} (got {channels_last!r})")
    if batch_size < 1 or iters < 1 or warmup < 0:
        raise BtcError("--batch-size and --iters must be at least 1, --warmup at least 0")
    dev = resolve_device(device)
    dtype = _amp_dtype(amp, dev)
    results = []
    for n in names:
        r = benchmark_model(n, device=dev, batch_size=batch_size, image_size=image_size, amp=amp,
                            channels_last=channels_last, compile=compile, iters=iters, warmup=warmup)
        results.append(r)
        if on_result is not None:
            on_result(r)
    return {
        "device": device_name(dev),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "settings": {
            "device_type": dev.type,
            "batch_size": int(batch_size),
            "image_size": image_size,  # null: each model's paper input size
            "amp": dtype is not None,
            "amp_dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
            "channels_last": channels_last,
            "compile": bool(compile),
            "iters": int(iters),
            "warmup": int(warmup),
            "threads": torch.get_num_threads() if dev.type == "cpu" else None,
            "python": platform.python_version(),
        },
        "results": results,
    }


def results_table(report: dict):
    """A rich table of the benchmark JSON object."""
    from rich import box
    from rich.table import Table

    s = report["settings"]
    amp = s["amp_dtype"] or "fp32"
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  title=f"{report['device']} · torch {report['torch']} · batch {s['batch_size']} · {amp}",
                  caption="GFLOPs per image at px; img/s (inf: inference, trn: training): median of "
                          f"{s['iters']} iterations after {s['warmup']} warm-up; TF/s: achieved TFLOP/s = "
                          "FLOPs × img/s (× 3 for training); lat: batch 1; mem: "
                          + ("peak CUDA allocated" if s["device_type"] == "cuda" else "process peak RSS")
                          + " (MB); cl: channels-last")
    table.add_column("model", no_wrap=True)
    for column in ("px", "Mparams", "MiB", "GFLOPs", "inf img/s", "trn img/s", "lat ms",
                   "inf TF/s", "trn TF/s", "mem MB", "cl"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report["results"]:
        table.add_row(r["model"], str(r["image_size"]), f"{r['params'] / 1e6:.2f}", f"{r['size_mib']:.1f}",
                      f"{r['flops'] / 1e9:.2f}", f"{r['infer_img_s']:.1f}", f"{r['train_img_s']:.1f}",
                      f"{r['latency_ms']:.1f}", f"{r['infer_tflops']:.3f}", f"{r['train_tflops']:.3f}",
                      f"{r['peak_mem_mb']:.0f}", "yes" if r["channels_last"] else "no")
    return table


def benchmark_command(models: str = "all", *, device: str = "auto", batch_size: int = 32,
                      image_size: int | None = None, amp: bool = True, channels_last: str = "auto",
                      compile: bool = False, iters: int = 10, warmup: int = 3,
                      json_file: Path | None = None) -> dict:
    """`btc benchmark`: measure, print the table, write `json_file` atomically when given."""
    from rich.console import Console

    from btc.io import atomic_write_json

    err = Console(stderr=True)
    with err.status("benchmarking…") as status:
        report = run_benchmark(models, device=device, batch_size=batch_size, image_size=image_size, amp=amp,
                               channels_last=channels_last, compile=compile, iters=iters, warmup=warmup,
                               on_result=lambda r: status.update(f"benchmarked {r['model']}…"))
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(width=max(console.width, 150))
    console.print(results_table(report))
    if json_file is not None:
        atomic_write_json(json_file, report)
        err.print(f"wrote {json_file}")
    return report
