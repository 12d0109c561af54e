"""Parameter, size and compute figures of registered models (the rows of `btc models`).

- `params`: all parameters; `trainable_params`: those with `requires_grad` (the frozen transfer
  models train only their head).
- `size_mb` = params × 4 bytes / 10^6 and `size_mib` = params × 4 bytes / 2^20 (float32);
  `state_mib`: the whole state dict (BN running statistics and counters included) / 2^20.
- `macs` and `flops`: per image, batch 1, eval mode, at the paper's input size, counted by
  `torch.utils.flop_counter.FlopCounterMode`. It counts only convolutions, matrix products and
  attention (not pooling, normalisation or activations), each multiply-add as 2 FLOPs, so
  `flops` = 2 × `macs` exactly. Both are given because papers and libraries differ: torchvision's
  documentation lists ResNet18 at "1.81 GFLOPS", which are multiply-adds (GMACs; 3.63 GFLOPs
  here), while FlopCounterMode, fvcore-style papers and btc's benchmark JSON count FLOPs.

Figures are for a 4-class head (`NUM_CLASSES`). `summarize` builds the model on the `meta` device:
no memory is allocated and no arithmetic is done, so the whole registry is summarised in seconds.
`count_params` and `flops_per_image` are reused by `btc.bench`. Nothing here prints: the
`btc models` command (`btc/commands/models.py`) shows the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from btc.models.registry import create_model, get_spec, list_models

NUM_CLASSES = 4
FLOPS_PER_MAC = 2  # FlopCounterMode's convention for every operation it counts


@dataclass(frozen=True)
class ModelSummary:
    """One registered model with its size and compute at the paper's input size."""

    name: str
    paper: str  # "001".."004", or "" for a plain baseline
    description: str
    recipe: str
    input_size: int  # side in pixels at which `macs` / `flops` are counted
    num_classes: int
    params: int
    trainable_params: int
    size_mb: float  # float32 parameters, 10^6 bytes
    size_mib: float  # float32 parameters, 2^20 bytes
    state_mib: float  # whole state dict, 2^20 bytes
    macs: int  # multiply-adds per image
    flops: int  # FLOPs per image = FLOPS_PER_MAC × macs
    cam_layer: str


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared parameters are counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of all tensors of the state dict (parameters and buffers)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def flops_per_image(model: nn.Module, input_size: int, in_chans: int = 3) -> int:
    """FLOPs (2 per multiply-add) of one forward pass on a `in_chans`×`input_size`×`input_size`
    image (batch 1, eval mode, no grad), on the model's device and dtype; the model's train/eval
    mode is restored."""
    ref = next(model.parameters(), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    x = torch.zeros(1, in_chans, input_size, input_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def summarize(name: str, num_classes: int = NUM_CLASSES) -> ModelSummary:
    """The registry entry of `name` with its parameter, size and compute figures."""
    spec = get_spec(name)
    with torch.device("meta"):
        model = create_model(name, num_classes, input_size=spec.input_size)
    total, trainable = count_params(model)
    flops = flops_per_image(model, spec.input_size)
    return ModelSummary(
        name=spec.name,
        paper=spec.paper,
        description=spec.description,
        recipe=spec.recipe,
        input_size=spec.input_size,
        num_classes=num_classes,
        params=total,
        trainable_params=trainable,
        size_mb=round(total * 4 / 1e6, 3),
        size_mib=round(total * 4 / 2**20, 3),
        state_mib=round(state_dict_bytes(model) / 2**20, 3),
        macs=flops // FLOPS_PER_MAC,
        flops=flops,
        cam_layer=spec.cam_layer,
    )


def summarize_models(names: list[str] | None = None,
                     num_classes: int = NUM_CLASSES) -> list[ModelSummary]:
    """`summarize` for `names` (default: the whole registry, in registration order); an unknown
    name is a `BtcError` raised before any model is built."""
    selected = list(names) if names else list_models()
    for name in selected:
        get_spec(name)
    return [summarize(name, num_classes) for name in selected]
