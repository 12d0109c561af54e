"""Which device a run uses, at which precision, and under which backend flags (DESIGN.md: engine).

`auto` is CUDA when present, else the CPU. On CUDA, training runs under autocast in bf16 where
the GPU supports it, else in fp16 (with a gradient scaler in the training loop); on the CPU btc
trains in fp32. Evaluation is always fp32 (`btc.engine.predictor`).

`run_flags` sets the backend flags of one run for its length and restores the previous ones:
cuDNN autotuning (`cudnn.benchmark`) for speed, or with `deterministic: true` cuDNN's
deterministic algorithms and `torch.use_deterministic_algorithms` (ops that have no
deterministic implementation on the GPU warn instead of stopping the run; `CUBLAS_WORKSPACE_CONFIG`
is set as PyTorch asks). Building a trainer or a predictor changes no global flag.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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


CUBLAS_DETERMINISTIC = ":4096:8"  # what PyTorch's reproducibility notes ask for, CUDA ≥ 10.2


@contextmanager
def run_flags(deterministic: bool, device: torch.device | str = "cpu") -> Iterator[None]:
    """The backend flags of a run (`deterministic` or autotuned) for the length of the block."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    if deterministic and torch.device(device).type == "cuda" and saved[4] is None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_DETERMINISTIC
    cudnn.benchmark = not deterministic
    cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
        if saved[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
