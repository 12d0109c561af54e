"""Which memory format (channels-last or contiguous) trains and infers a model faster on a GPU.

`preferred_memory_format` is what `--channels-last auto` means, for the training engine and for
`btc benchmark`: on CPU it is always `torch.contiguous_format` (oneDNN picks its own layouts, and
channels-last is rarely faster there, so no time is spent measuring); on CUDA both formats are
timed once (inference + one training step, `btc.engine.timing`, on a copy of the model so its
weights are untouched) and the faster is cached in `~/.cache/btc/memory_format.json`
(`$XDG_CACHE_HOME/btc/…` when set), keyed by model, GPU name, image size, batch size and AMP
dtype. `btc benchmark` records its own, longer measurement under the same key
(`record_choice`), so the engine reuses the benchmark's choice.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from torch import nn

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
              amp_dtype: torch.dtype | None) -> str:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    amp = str(amp_dtype).removeprefix("torch.") if amp_dtype is not None else "fp32"
    return f"{model_name}|{gpu}|{int(image_size)}|{int(batch_size)}|{amp}"


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


def preferred_memory_format(model_name: str, model: nn.Module, device: torch.device | str,
                            image_size: int, batch_size: int,
                            amp_dtype: torch.dtype | None) -> torch.memory_format:
    """The faster memory format for training `model` on `device` (contiguous on CPU)."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.contiguous_format
    key = cache_key(model_name, device, image_size, batch_size, amp_dtype)
    choice = cached_choice(key)
    if choice is not None:
        return choice
    seconds: dict[str, float] = {}
    for name, fmt in FORMATS.items():
        trial = copy.deepcopy(model).to(device, memory_format=fmt)
        with torch.no_grad():
            num_classes = int(trial.eval()(torch.zeros(1, 3, image_size, image_size, device=device)).shape[1])
        x, y = synthetic_batch(batch_size, image_size, num_classes, device, fmt)
        infer = time_fn(infer_step(trial, x, amp_dtype), iters=5, warmup=2, device=device)
        trial.train()
        train = time_fn(train_step(trial, default_optimizer(trial), x, y, amp_dtype), iters=5, warmup=2,
                        device=device)
        seconds[name] = infer + train
        del trial, x, y
    return record_choice(key, seconds)
