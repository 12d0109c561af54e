"""Parameter, size and FLOP figures of registered models, and the `btc models` command.

- `params`: all parameters; `trainable_params`: those with `requires_grad` (the frozen transfer
  models train only their head).
- `size_mb` = params × 4 bytes / 10^6 and `size_mib` = params × 4 bytes / 2^20 (float32);
  `state_mib`: the whole state dict (BN running statistics and counters included) / 2^20.
- `flops`: per image, batch 1, eval mode, at the paper's input size, counted by
  `torch.utils.flop_counter.FlopCounterMode` — which counts a multiply-add as 2 FLOPs (so
  torchvision's ResNet50 is ≈ 8.2 GFLOPs at 224 px, i.e. 4.1 GMACs) and counts only convolutions,
  matrix products and attention (not pooling, normalisation or activations).

Figures are for a 4-class head (`NUM_CLASSES`). `summarize` builds the model on the `meta` device:
no memory is allocated and no arithmetic is done, so the whole registry is summarised in seconds.
These helpers are reused by the benchmark command.
"""

from __future__ import annotations

import json

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from btc.models.registry import create_model, get_spec, list_models

NUM_CLASSES = 4


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
    """FLOPs of one forward pass on a `in_chans`×`input_size`×`input_size` image (batch 1, eval
    mode, no grad), on the model's device and dtype; the model's train/eval mode is restored."""
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


def summarize(name: str, num_classes: int = NUM_CLASSES) -> dict:
    """The registry entry of `name` with its parameter, size and FLOP figures."""
    spec = get_spec(name)
    with torch.device("meta"):
        model = create_model(name, num_classes, input_size=spec.input_size)
    total, trainable = count_params(model)
    return {
        "name": spec.name,
        "paper": spec.paper,
        "description": spec.description,
        "recipe": spec.recipe,
        "input_size": spec.input_size,
        "num_classes": num_classes,
        "params": total,
        "trainable_params": trainable,
        "size_mb": round(total * 4 / 1e6, 3),
        "size_mib": round(total * 4 / 2**20, 3),
        "state_mib": round(state_dict_bytes(model) / 2**20, 3),
        "flops": flops_per_image(model, spec.input_size),
        "cam_layer": spec.cam_layer,
    }


def models_command(names: list[str] | None, as_json: bool) -> None:
    """`btc models`: the registry as a rich table (sizes in MiB; `state` = whole state dict), or
    a JSON list on stdout with every field of `summarize`."""
    selected = [n.strip() for n in names if n.strip()] if names else list_models()
    for name in selected:
        get_spec(name)  # unknown names fail before any work
    rows = [summarize(name) for name in selected]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  caption=f"params in millions; MiB: float32 parameters; state: whole state dict "
                          f"(MiB); {NUM_CLASSES}-class heads; GFLOPs per image at the paper's "
                          "input size")
    table.add_column("model", no_wrap=True)
    for column in ("paper", "px", "params", "trainable", "MiB", "state", "GFLOPs"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(r["name"], r["paper"] or "-", str(r["input_size"]),
                      f"{r['params'] / 1e6:.2f}", f"{r['trainable_params'] / 1e6:.3f}",
                      f"{r['size_mib']:.2f}", f"{r['state_mib']:.2f}",
                      f"{r['flops'] / 1e9:.2f}")
    Console().print(table)
