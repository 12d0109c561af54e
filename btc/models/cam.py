"""Grad-CAM (Selvaraju et al. 2017) and spatial-attention maps, for any registered model.

Own short implementation (the `grad-cam` package depends on `opencv-python`, which conflicts
with the headless OpenCV btc uses):

1. a forward hook keeps the output A (N, K, h, w) of the registry's `cam_layer`
   (`get_spec(name).cam_layer`, a dotted path for `model.get_submodule`);
2. the score y_c of the class c to explain (the predicted one by default) is differentiated
   w.r.t. A;
3. channel weights α_k = mean over (h, w) of ∂y_c/∂A_k;
4. CAM = ReLU(Σ_k α_k A_k), min-max normalised to [0, 1] per image (all zeros when constant).

The model is evaluated in eval mode, so the images of a batch do not interact and the gradient
of the summed scores gives every image its own gradients. `attention_maps` additionally records
the output of every CBAM spatial-attention gate (`SpatialAttention`, the sigmoid map (N, 1, h, w))
inside a module: for `resnesat` the gates of the last stage (`layer4`).
"""

from __future__ import annotations

from contextlib import contextmanager

import cv2
import numpy as np
import torch
from torch import nn

from btc.models.layers import SpatialAttention


@contextmanager
def _capture(module: nn.Module, store: list[torch.Tensor]):
    """Append the output of `module` to `store` on each forward (the hook passes on a clone, so
    later in-place operations of the network, e.g. ReLU(inplace=True), cannot modify it)."""

    def hook(_m, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"Grad-CAM layer returns {type(output).__name__}, not a tensor")
        store.append(output)
        return output.clone()

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def grad_cam(model: nn.Module, layer: str | nn.Module, x: torch.Tensor,
             target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps at the layer's resolution and the logits.

    `x` is a preprocessed batch (N, 3, S, S); `target` the class index per image (default: the
    predicted class). Returns (cams (N, h, w) in [0, 1], logits (N, C)), both detached.
    """
    module = model.get_submodule(layer) if isinstance(layer, str) else layer
    acts: list[torch.Tensor] = []
    with torch.enable_grad(), _capture(module, acts):
        logits = model(x.detach().requires_grad_(True))
        if not acts:
            raise RuntimeError("the Grad-CAM layer was not called in the forward pass")
        a = acts[-1]
        if a.ndim != 4:
            raise ValueError(f"Grad-CAM layer output has shape {tuple(a.shape)}, expected (N, K, h, w)")
        index = logits.argmax(1) if target is None else target.to(logits.device)
        score = logits.gather(1, index.view(-1, 1)).sum()
        (grads,) = torch.autograd.grad(score, a)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * a).sum(1)).detach()
    return normalize_maps(cam), logits.detach()


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (h, w) map of (N, h, w) to [0, 1]; a constant map becomes zeros."""
    flat = maps.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1)
    span = (flat.max(1).values.view(-1, 1, 1) - lo)
    return torch.where(span > 0, (maps - lo) / span.clamp_min(1e-12), torch.zeros_like(maps))


def attention_gates(module: nn.Module) -> dict[str, nn.Module]:
    """The CBAM spatial-attention gates inside `module`, by their dotted name."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SpatialAttention)}


@contextmanager
def attention_maps(model: nn.Module, layer: str):
    """Record the sigmoid maps (N, h, w) of the spatial-attention gates under `layer`.

    Yields a dict `{gate name (dotted, from the model root): map}` filled by the next forward.
    """
    root = model.get_submodule(layer)
    found: dict[str, torch.Tensor] = {}
    handles = []
    for name, gate in attention_gates(root).items():
        full = f"{layer}.{name}" if name else layer

        def hook(_m, _i, output, full=full):
            found[full] = output.detach()[:, 0]

        handles.append(gate.register_forward_hook(hook))
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


def overlay(gray: np.ndarray, heat: np.ndarray, mask: np.ndarray | None = None,
            alpha: float = 0.45) -> np.ndarray:
    """BGR uint8 image: the JET colour map of `heat` ([0, 1], same size as `gray`) blended over
    the grayscale image; pixels outside `mask` (where the map says nothing) stay gray."""
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.float32)
    colour = cv2.applyColorMap(np.clip(heat * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    blended = (1.0 - alpha) * base + alpha * colour.astype(np.float32)
    if mask is not None:
        blended = np.where(mask[..., None], blended, base)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def place_map(cam: np.ndarray, shape: tuple[int, int],
              region: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a map to `region` (x0, y0, x1, y1 in pixels of an image of `shape` (H, W)) and
    paste it there; returns (map of `shape`, boolean mask of the covered pixels)."""
    h, w = shape
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    full = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), bool)
    if x1 > x0 and y1 > y0:
        full[y0:y1, x0:x1] = cv2.resize(cam.astype(np.float32), (x1 - x0, y1 - y0),
                                        interpolation=cv2.INTER_LINEAR)
        mask[y0:y1, x0:x1] = True
    return np.clip(full, 0.0, 1.0), mask
