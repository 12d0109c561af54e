"""Size, FLOPs, throughput, latency and memory of registered models (`btc benchmark`).

DESIGN.md, "Benchmark result". For each model (4-class head, random initialisation, synthetic
data), a `ModelResult`:

- `params`, `trainable_params`, `size_mb`, `size_mib`: `btc.models.summary` (float32 sizes);
- `flops`: FLOPs of one image (batch 1, eval mode, `torch.utils.flop_counter`, a multiply-add = 2
  FLOPs) at `image_size`, which is `Settings.image_size` when given, else the model's paper input
  size;
- `infer_img_s`: images/s of no-grad eval-mode forward passes at `batch_size`;
- `train_img_s`: images/s of the training engine's step (forward, cross-entropy, backward,
  optimiser step of the model's recipe) at `batch_size`;
- `latency_ms`: one batch-1 eval forward pass;
- `peak_mem_mb`: CUDA peak allocated memory of this model's measurement, or on CPU the peak RSS
  of the whole process so far (`btc.bench.memory`; `run_benchmark(isolate=True)` measures each
  model in a fresh process so that the figure is that model's own);
- `dtype` (autocast dtype, or float32), `memory_format`, `compiled`;
- `infer_tflops` / `train_tflops`: achieved TFLOP/s = flops × images/s (× 3 for training: the
  backward pass costs about twice the forward) — an estimate (frozen models' backward is cheaper)
  to compare with the device's peak.

Each time is the median of `iters` timed iterations after `warmup` untimed ones, CUDA-synchronised
(`btc.engine.timing`). AMP (bf16 where supported, else fp16) is used on CUDA only; on CPU it is
off and reported as false. `channels_last="auto"` is contiguous on CPU; on CUDA both formats are
measured, the faster is reported and recorded for the training engine
(`btc.engine.memory_format.record_choice`).

`run_benchmark` returns a `BenchmarkReport` whose `to_dict()` is the benchmark JSON: the shared
result header (`btc.bench.provenance`), `torch`, `cuda`, `settings` and `results`. Nothing here
prints; progress goes through `btc.progress.Progress`.
"""

from __future__ import annotations

import copy
import multiprocessing
import platform
from dataclasses import dataclass, field
from typing import Any

import torch

from btc.bench.memory import peak_mb, reset_peak
from btc.bench.provenance import result_header
from btc.engine import devices
from btc.engine.config import TrainConfig, resolve_config
from btc.engine.memory_format import FORMATS, cache_key, format_name, record_choice
from btc.engine.timing import infer_step, synthetic_batch, time_fn, train_step
from btc.engine.train import build_optimizer
from btc.errors import BtcError
from btc.models import create_model, get_spec, list_models
from btc.models.summary import count_params, flops_per_image
from btc.progress import SILENT, Progress

NUM_CLASSES = 4
CHANNELS_LAST = ("auto", "on", "off")


def model_names(models: str | list[str]) -> list[str]:
    """`all`, a comma-separated string or a list → registered model names (unknown ones fail)."""
    if isinstance(models, str):
        models = list_models() if models.strip() == "all" else models.split(",")
    names = [m.strip() for m in models if m.strip()]
    if not names:
        raise BtcError("--models: give at least one model name, or all")
    for name in names:
        get_spec(name)  # unknown names fail before any work
    return names


@dataclass(frozen=True)
class Settings:
    """How every model of a benchmark is measured (`device` may be given as `auto`, `cpu`, …)."""

    device: torch.device | str = "auto"
    batch_size: int = 32
    image_size: int | None = None  # None: each model's paper input size
    amp: bool = True
    channels_last: str = "auto"
    compile: bool = False
    iters: int = 10
    warmup: int = 3

    def __post_init__(self) -> None:
        if self.channels_last not in CHANNELS_LAST:
            raise BtcError(f"--channels-last must be one of {', '.join(CHANNELS_LAST)} "
                           f"(got {self.channels_last!r})")
        if self.batch_size < 1 or self.iters < 1 or self.warmup < 0:
            raise BtcError("--batch-size and --iters must be at least 1, --warmup at least 0")
        if not isinstance(self.device, torch.device):
            object.__setattr__(self, "device", devices.resolve_device(self.device))

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype (None: float32), as the training engine chooses it."""
        return devices.amp_dtype(TrainConfig(amp="auto" if self.amp else "off"), self.device)

    def memory_formats(self) -> list[torch.memory_format]:
        """The formats to measure: both under `auto` on CUDA, else the one asked for."""
        if self.channels_last == "on":
            return [torch.channels_last]
        if self.channels_last == "auto" and self.device.type == "cuda":
            return list(FORMATS.values())
        return [torch.contiguous_format]

    def to_dict(self) -> dict[str, Any]:
        dtype = self.amp_dtype
        return {
            "device_type": self.device.type,
            "batch_size": int(self.batch_size),
            "image_size": self.image_size,  # null: each model's paper input size
            "amp": dtype is not None,
            "amp_dtype": _dtype_name(dtype) if dtype is not None else None,
            "channels_last": self.channels_last,
            "compile": bool(self.compile),
            "iters": int(self.iters),
            "warmup": int(self.warmup),
            "threads": torch.get_num_threads() if self.device.type == "cpu" else None,
            "python": platform.python_version(),
        }


@dataclass(frozen=True)
class ModelResult:
    """One model's figures (one `results` entry of the benchmark JSON)."""

    model: str
    image_size: int
    batch_size: int
    params: int
    trainable_params: int
    flops: int
    infer_img_s: float
    train_img_s: float
    latency_ms: float
    peak_mem_mb: float
    dtype: str
    memory_format: str
    compiled: bool

    @property
    def size_mb(self) -> float:
        return self.params * 4 / 1e6

    @property
    def size_mib(self) -> float:
        return self.params * 4 / 2**20

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"

    @property
    def infer_tflops(self) -> float:
        return self.flops * self.infer_img_s / 1e12

    @property
    def train_tflops(self) -> float:
        return 3 * self.flops * self.train_img_s / 1e12

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "image_size": int(self.image_size),
            "batch_size": int(self.batch_size),
            "params": int(self.params),
            "trainable_params": int(self.trainable_params),
            "size_mb": round(self.size_mb, 3),
            "size_mib": round(self.size_mib, 3),
            "flops": int(self.flops),
            "infer_img_s": round(self.infer_img_s, 3),
            "train_img_s": round(self.train_img_s, 3),
            "latency_ms": round(self.latency_ms, 3),
            "peak_mem_mb": round(self.peak_mem_mb, 1),
            "dtype": self.dtype,
            "memory_format": self.memory_format,
            "channels_last": self.channels_last,
            "compiled": bool(self.compiled),
            "infer_tflops": round(self.infer_tflops, 6),
            "train_tflops": round(self.train_tflops, 6),
        }


@dataclass
class BenchmarkReport:
    """The benchmark JSON: header (device, versions, command, date), settings and results."""

    settings: Settings
    results: list[ModelResult] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.header:
            self.header = result_header("benchmark", self.settings.device)

    @property
    def device(self) -> str:
        return self.header["device"]

    def to_dict(self) -> dict[str, Any]:
        cuda = self.settings.device.type == "cuda"
        return {
            **self.header,
            "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None,
            "settings": self.settings.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }


def _dtype_name(dtype: torch.dtype | None) -> str:
    return str(dtype or torch.float32).removeprefix("torch.")


def _measure(name: str, model: torch.nn.Module, settings: Settings, image_size: int,
             memory_format: torch.memory_format) -> dict[str, float]:
    """Seconds per batch (inference, training), batch-1 latency and peak memory of `model`
    (trained in place) in one memory format."""
    device, dtype = settings.device, settings.amp_dtype
    model = model.to(device, memory_format=memory_format)
    forward = torch.compile(model) if settings.compile else model
    timed = {"iters": settings.iters, "warmup": settings.warmup, "device": device}
    reset_peak(device)
    try:
        model.eval()
        x1, _ = synthetic_batch(1, image_size, NUM_CLASSES, device, memory_format)
        latency = time_fn(infer_step(forward, x1, dtype), **timed)
        x, y = synthetic_batch(settings.batch_size, image_size, NUM_CLASSES, device, memory_format)
        infer = time_fn(infer_step(forward, x, dtype), **timed)
        model.train()
        optimizer = build_optimizer(model, resolve_config(name))
        train = time_fn(train_step(forward, optimizer, x, y, dtype), **timed)
    except BtcError:
        raise
    except Exception as exc:
        if not settings.compile:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BtcError(f"torch.compile failed for {name}: {first}") from None
    return {"infer_s": infer, "train_s": train, "latency_s": latency, "peak_mem_mb": peak_mb(device)}


def benchmark_model(name: str, settings: Settings) -> ModelResult:
    """Measure model `name` under `settings` (in this process)."""
    size = int(settings.image_size or get_spec(name).input_size)
    dtype = settings.amp_dtype
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES, input_size=size)
    total, trainable = count_params(model)
    flops = flops_per_image(model, size)

    formats = settings.memory_formats()
    measured = {}
    for fmt in formats:
        trial = copy.deepcopy(model) if len(formats) > 1 else model
        measured[format_name(fmt)] = _measure(name, trial, settings, size, fmt)
        del trial
    # the faster format: least time per image for inference + training together
    seconds = {f: m["infer_s"] + m["train_s"] for f, m in measured.items()}
    if len(measured) > 1:
        best = format_name(record_choice(cache_key(name, settings.device, size, settings.batch_size, dtype),
                                         seconds))
    else:
        best = next(iter(measured))
    m = measured[best]
    return ModelResult(
        model=name, image_size=size, batch_size=int(settings.batch_size), params=int(total),
        trainable_params=int(trainable), flops=int(flops),
        infer_img_s=settings.batch_size / m["infer_s"], train_img_s=settings.batch_size / m["train_s"],
        latency_ms=m["latency_s"] * 1000.0, peak_mem_mb=m["peak_mem_mb"], dtype=_dtype_name(dtype),
        memory_format=best, compiled=bool(settings.compile),
    )


def benchmark_model_isolated(name: str, settings: Settings) -> ModelResult:
    """`benchmark_model` in a fresh (spawned) process: on CPU its peak RSS is the model's own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(benchmark_model, (name, settings))


def run_benchmark(models: str | list[str] = "all", settings: Settings | None = None, *,
                  isolate: bool = False, progress: Progress = SILENT) -> BenchmarkReport:
    """Measure each of `models` (`all`, comma-separated names or a list) under `settings`;
    `isolate`: each model in its own process (see `benchmark_model_isolated`)."""
    names = model_names(models)
    settings = settings or Settings()
    measure = benchmark_model_isolated if isolate else benchmark_model
    report = BenchmarkReport(settings)
    with progress.bar("benchmark", len(names)) as advance:
        for name in names:
            advance(0, info=name)
            report.results.append(measure(name, settings))
            advance(1, info=name)
    return report
