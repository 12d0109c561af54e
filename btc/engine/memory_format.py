"""Which memory format (channels-last or contiguous) trains and infers a model faster on a GPU.

The config's `channels_last` is `on`, `off` or `auto` (`configured_memory_format`): `on` and
`off` are obeyed on any device; `auto` is contiguous on the CPU (oneDNN picks its own layouts,
and channels-last is rarely faster there, so no time is spent measuring) and on CUDA the faster
format, found by `preferred_memory_format`: both formats are timed once (inference + one
training step, `btc.engine.timing`, on a copy of the model so its weights are untouched) under
the conditions of training — the cuDNN flags of the run (`btc.engine.devices.run_flags`) and
`torch.compile` when the run compiles — and the faster is cached in
`~/.cache/btc/memory_format.json` (`$XDG_CACHE_HOME/btc/…` when set), keyed by model, GPU name,
image size, batch size, AMP dtype (and `compiled` / `deterministic` when set). `btc benchmark`
records its own, longer measurement under the same key (`record_choice`), so the engine reuses
the benchmark's choice.

Inference (`btc.engine.predictor.Predictor`, `btc predict`) never times: it uses the cached
choice of the run's key when there is one (`cached_memory_format`), else contiguous.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from torch import nn

from btc.engine.devices import run_flags
from btc.engine.timing import default_optimizer, infer_step, synthetic_batch, time_fn, train_step
from btc.io import atomic_write_json

FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def format_name(memory_format: torch.memory_format) -> str:
    """`channels_last` or `contiguous` (the names of the cache and of the benchmark JSON)."""
    return "channels_last" if memory_format == torch.channels_last else "contiguous"


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "btc" / "memory_format.json"


def cache_key(model_name: str, device: torch.device, image_size: int, batch_size: int,
              amp_dtype: torch.dtype | None, *, compiled: bool = False, deterministic: bool = False) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    amp = str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else "fp32"
    conditions = "".join(("|compiled" if compiled else "", "|deterministic" if deterministic else ""))
    return f"{model_name}|{gpu}|{int(image_size)}|{int(batch_size)}|{amp}{conditions}"


def configured_memory_format(setting: str, device: torch.device) -> torch.memory_format | None:
    """`on` / `off` on any device, `auto` contiguous on the CPU; None: `auto` on CUDA, to be
    measured (`preferred_memory_format`) or looked up (`cached_memory_format`)."""
    if setting == "on":
        return torch.channels_last
    if setting == "off" or torch.device(device).type != "cuda":
        return torch.contiguous_format
    return None


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_choice(key: str) -> torch.memory_format | None:
    entry = _read_cache().get(key)
    name = entry.get("format") if isinstance(entry, dict) else None
    return FORMATS.get(name)


def record_choice(key: str, seconds: dict[str, float]) -> torch.memory_format:
    """The format of least `seconds` (by `FORMATS` name), stored under `key`; a cache that cannot
    be written is not an error (it is only a cache)."""
    best = min(seconds, key=seconds.__getitem__)
    data = _read_cache()
    data[key] = {"format": best, "seconds": seconds}
    try:
        atomic_write_json(cache_path(), data)
    except OSError:
        pass
    return FORMATS[best]


def cached_memory_format(model_name: str, device: torch.device | str, image_size: int, batch_size: int,
                         amp_dtype: torch.dtype | None, *, compiled: bool = False,
                         deterministic: bool = False) -> torch.memory_format:
    """The cached choice for these conditions, else contiguous; never measures (inference)."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.contiguous_format
    key = cache_key(model_name, device, image_size, batch_size, amp_dtype, compiled=compiled,
                    deterministic=deterministic)
    return cached_choice(key) or torch.contiguous_format


def preferred_memory_format(model_name: str, model: nn.Module, device: torch.device | str,
                            image_size: int, batch_size: int, amp_dtype: torch.dtype | None, *,
                            compile: bool = False, deterministic: bool = False) -> torch.memory_format:
    """The faster memory format for training `model` on `device` (contiguous on CPU), timed
    under the run's cuDNN flags and, with `compile`, compiled as the run will be."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.contiguous_format
    key = cache_key(model_name, device, image_size, batch_size, amp_dtype, compiled=compile,
                    deterministic=deterministic)
    choice = cached_choice(key)
    if choice is not None:
        return choice
    seconds: dict[str, float] = {}
    with run_flags(deterministic, device):
        for name, fmt in FORMATS.items():
            trial = copy.deepcopy(model).to(device, memory_format=fmt)
            forward = torch.compile(trial) if compile else trial
            with torch.no_grad():
                probe = torch.zeros(1, 3, image_size, image_size, device=device)
                num_classes = int(trial.eval()(probe).shape[1])
            x, y = synthetic_batch(batch_size, image_size, num_classes, device, fmt)
            infer = time_fn(infer_step(forward, x, amp_dtype), iters=5, warmup=2, device=device)
            trial.train()
            train = time_fn(train_step(forward, default_optimizer(trial), x, y, amp_dtype), iters=5, warmup=2,
                            device=device)
            seconds[name] = infer + train
            del trial, forward, x, y
    return record_choice(key, seconds)
