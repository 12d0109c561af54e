"""Which device a run uses, and at which precision (DESIGN.md: engine).

`auto` is CUDA when present, else the CPU. On CUDA, autocast runs in bf16 where the GPU supports
it, else in fp16 (with a gradient scaler in the training loop); on the CPU btc trains in fp32.
"""

from __future__ import annotations

import torch

from btc.engine import distributed
from btc.engine.config import TrainConfig
from btc.errors import BtcError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` is CUDA when present, else the CPU; under torchrun `cuda` is GPU `LOCAL_RANK`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise BtcError(f"--device {name!r} is not a device: use {DEVICE_CHOICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise BtcError(f"--device {name!r}: btc runs on {DEVICE_CHOICES}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BtcError(f"--device {name}: no CUDA device is available here (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BtcError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if distributed.current().active:
            if device.index is not None:
                raise BtcError(f"--device {name} under torchrun would put every process on one GPU: "
                               "pass --device cuda (each process takes GPU LOCAL_RANK)")
            device = torch.device("cuda", distributed.current().local_rank)
    return device


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16; None (fp32) on CPU or with amp off."""
    if device.type != "cuda" or config.amp == "off":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
