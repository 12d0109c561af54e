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

`gradcam_png` and `attention_png` draw a map over its image for `btc predict --cam`: the image
stays visible under a translucent map (opacity grows with the value), with a colour bar, and the
class (or gate, with its value range) in the title.
"""

from __future__ import annotations

import io
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


# --------------------------------------------------------------------------- pictures


PANEL_MIN = 256      # px: smaller images are shown enlarged, so the title and colour bar stay readable
OVERLAY_ALPHA = 0.6  # opacity of the map where it is highest; where it is lowest the image shows through
CMAP = "inferno"
UNIFORM_SPAN = 0.02  # an attention map whose values span less than this is shown as uniform


def heat_layer(heat: np.ndarray, mask: np.ndarray | None = None, vmin: float = 0.0,
               vmax: float = 1.0) -> np.ndarray:
    """The translucent map drawn over an image, RGBA floats (H, W, 4): the colour of `CMAP` at
    the value's place between `vmin` and `vmax`, and an opacity growing from 0 (at `vmin`, and
    outside `mask`) to `OVERLAY_ALPHA` (at `vmax`)."""
    from matplotlib import colormaps

    level = np.clip((heat - vmin) / (vmax - vmin if vmax > vmin else 1e-6), 0.0, 1.0)
    rgba = colormaps[CMAP](level)
    rgba[..., 3] = OVERLAY_ALPHA * level * (1.0 if mask is None else mask)
    return rgba


def overlay_png(gray: np.ndarray, heat: np.ndarray, mask: np.ndarray | None = None, *, title: str,
                scale_label: str, vmin: float = 0.0, vmax: float = 1.0) -> bytes:
    """A PNG: the grayscale image (at its own resolution, enlarged to `PANEL_MIN` px when
    smaller) with `heat` (same size) drawn over it translucently, each pixel's opacity growing
    with its value (so low values leave the image visible), only inside `mask` (the pixels the
    map covers); a colour bar labelled `scale_label` maps colours to values from `vmin` to
    `vmax`, and `title` is written above the image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    h, w = gray.shape[:2]
    zoom = max(1.0, PANEL_MIN / max(h, w))
    dpi = 100
    panel_w, panel_h = w * zoom / dpi, h * zoom / dpi              # inches
    fig_w, fig_h = panel_w + 1.3, panel_h + 0.55                   # + colour bar and its labels, + title
    norm = Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-6)
    rgba = heat_layer(heat, mask, vmin, vmax)
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1 / fig_w, 0.1 / fig_h, panel_w / fig_w, panel_h / fig_h))
    ax.imshow(gray, cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
    ax.imshow(rgba, interpolation="bilinear")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    cax = fig.add_axes(((0.25 + panel_w) / fig_w, 0.1 / fig_h, 0.15 / fig_w, panel_h / fig_h))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=CMAP), cax=cax)
    bar.set_label(scale_label, fontsize=8)
    bar.formatter.set_useOffset(False)  # true values on the bar, never "1e-7 + 0.4999"
    cax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.05)  # a long title widens it
    return buffer.getvalue()


def gradcam_png(gray: np.ndarray, cam: np.ndarray, region: tuple[float, float, float, float],
                class_name: str, probability: float | None = None) -> bytes:
    """The Grad-CAM overlay of one image: the map (in [0, 1]) placed on the network's input
    region, the explained class (and its probability) in the title, the scale in a colour bar."""
    heat, mask = place_map(cam, gray.shape[:2], region)
    return overlay_png(gray, heat, mask, title=gradcam_title(cam, class_name, probability),
                       scale_label="Grad-CAM (0 = least, 1 = most relevant)")


def gradcam_title(cam: np.ndarray, class_name: str, probability: float | None = None) -> str:
    """The class explained (and its probability); a map of zeros says that nothing raised the score."""
    title = f"Grad-CAM of class '{class_name}'" + ("" if probability is None else f" (p = {probability:.2f})")
    if not np.any(cam > 0):
        title += "\nall zero: no region raises this class's score"
    return title


def attention_png(gray: np.ndarray, gate: np.ndarray, region: tuple[float, float, float, float],
                  gate_name: str) -> bytes:
    """The output of one spatial-attention gate (a sigmoid, in [0, 1]) over the image, the gate
    and its range of values in the title. A gate that varies spans the colour scale with its own
    range (the colour bar shows the true values); a nearly uniform one (an untrained gate sits at
    0.5 everywhere) is shown on the full 0-to-1 scale and called uniform, rather than stretching
    its rounding noise into a pattern."""
    heat, mask = place_map(gate, gray.shape[:2], region)
    title, low, high = attention_scale(gate, gate_name)
    return overlay_png(gray, heat, mask, title=title, scale_label="attention weight (sigmoid)", vmin=low, vmax=high)


def attention_scale(gate: np.ndarray, gate_name: str) -> tuple[str, float, float]:
    """(title, vmin, vmax) of a spatial-attention map: its own range, or 0 to 1 when uniform."""
    low, high = float(gate.min()), float(gate.max())
    if high - low < UNIFORM_SPAN:
        return f"spatial attention {gate_name}\nuniform: {float(gate.mean()):.3f} everywhere", 0.0, 1.0
    return f"spatial attention {gate_name}\nvalues {low:.3f} to {high:.3f}", low, high


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
