"""Model registry: name → builder, with the paper, input size, recipe and Grad-CAM layer of each.

Builders are registered with `@register_model(...)` in the architecture modules; importing
`btc.models` imports them all. A builder is called as `builder(num_classes, pretrained)`, where
`pretrained` only shapes the network for the ImageNet weights of its `pretrained` source (which
`btc.models.weights` loads afterwards); builders
whose layers depend on the input side (only `dsconv_cbam`: its dense layer follows a flatten) also
take an optional keyword `input_size`, which `create_model` forwards when it is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from btc.errors import BtcError


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str
    builder: Callable[..., nn.Module]  # builder(num_classes: int, pretrained: bool) -> nn.Module
    paper: str  # "001".."004" or "" for plain baselines
    input_size: int  # the paper's input side in pixels
    recipe: str  # default training recipe: "paper001", "paper002", "paper003", "paper004"
    cam_layer: str  # dotted module path (model.get_submodule) of the last conv block, for Grad-CAM
    description: str
    # ImageNet weights the paper starts from: "torchvision:<Enum>.<MEMBER>" or
    # "timm:<model>.<tag>" (see btc/models/weights.py); None = trained from scratch
    pretrained: str | None = None


@dataclass
class WeightsReport:
    """What `load_weights` did: keys of the model absent from the file (`missing`), keys of the file
    absent from the model (`unexpected`) and keys present in both with a different shape, which
    were dropped and keep the model's initial values (`mismatched`, typically the classifier)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    loaded: int = 0
    path: str = ""

    def summary(self) -> str:
        """One line for the console."""
        parts = [f"loaded {self.loaded} tensors" + (f" from {self.path}" if self.path else "")]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape-mismatched (kept initial)", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:4]) + (", …" if len(keys) > 4 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        return "; ".join(parts)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, paper: str, input_size: int, recipe: str, cam_layer: str,
                   description: str = "", pretrained: str | None = None,
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering `builder(num_classes, pretrained) -> nn.Module` under `name`."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        doc = description or (inspect.getdoc(builder) or "").split("\n\n")[0].replace("\n", " ")
        _REGISTRY[name] = ModelSpec(name=name, builder=builder, paper=paper, input_size=input_size,
                                    recipe=recipe, cam_layer=cam_layer, description=doc,
                                    pretrained=pretrained)
        return builder

    return decorator


def list_models() -> list[str]:
    """Registered names, in registration order."""
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec of `name`; an unknown name is a `BtcError` listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BtcError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}") from None


def create_model(name: str, num_classes: int, *, pretrained: bool = False,
                 weights: str | Path | None = None, input_size: int | None = None,
                 offline: bool = False) -> nn.Module:
    """Build `name` with a `num_classes` head.

    `pretrained=True` loads the ImageNet weights of the model's source with
    `btc.models.weights.resolve_pretrained` (cached, else downloaded unless `offline`) and keeps
    its `WeightsRecord` on the model as `model.weights_record`.
    `weights` loads a local state-dict file on top (see `load_weights`); its report is kept on the
    model as `model.weights_report`. `input_size` is the training input side, forwarded to builders
    that need it (`dsconv_cbam`); the others accept any input of at least 64 px.
    """
    spec = get_spec(name)
    if num_classes < 1:
        raise BtcError(f"num_classes must be at least 1, got {num_classes}")
    kwargs = {}
    if input_size is not None:
        if "input_size" in inspect.signature(spec.builder).parameters:
            kwargs["input_size"] = int(input_size)
    model = spec.builder(num_classes, pretrained, **kwargs)
    if pretrained:
        from btc.models.weights import resolve_pretrained  # weights.py reads this registry

        model.weights_record = resolve_pretrained(name, model, offline=offline)
    if weights is not None:
        model.weights_report = load_weights(model, weights)
    return model


def torch_load_weights(path: Path) -> object:
    """`torch.load(path, weights_only=True)` with one-line errors: a file that is not a torch.save
    file (zip, or a pre-1.6 pickle) is said to be so, not reported by its first byte."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":
        raise BtcError(f"{path} is not a weights file (neither a torch.save file nor safetensors)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — a cut or foreign file is the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BtcError(f"cannot read weights from {path} (truncated, or not only tensors): {first[:120]}") from None


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if (not isinstance(obj, Mapping) or not obj
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise BtcError(f"{path} is not a state dict (expected a mapping of names to tensors, "
                       "or a checkpoint with a 'model' entry)")
    out = {}
    for key, value in obj.items():
        for prefix in ("module.", "_orig_mod."):  # DataParallel / torch.compile wrappers
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = False) -> WeightsReport:
    """Load a local state dict into `model` and report what did not match.

    The file is read with `torch.load(weights_only=True)`; it may be a raw state dict or a btc
    checkpoint (a dict with a `'model'` state dict). Tensors whose shape differs from the model's
    (a classifier trained for another number of classes) are dropped and reported as
    `mismatched`. With `strict=True` any missing, unexpected or mismatched key is a `BtcError`.
    """
    path = Path(path)
    if not path.is_file():
        raise BtcError(f"weights file not found: {path}")
    state = _unwrap_state_dict(torch_load_weights(path), path)
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in mismatched:
        del state[key]
    result = model.load_state_dict(state, strict=False)
    dropped = set(mismatched)
    report = WeightsReport(missing=[k for k in result.missing_keys if k not in dropped],
                           unexpected=list(result.unexpected_keys), mismatched=mismatched,
                           loaded=len(state) - len(result.unexpected_keys), path=str(path))
    if strict and (report.missing or report.unexpected or report.mismatched):
        raise BtcError(f"weights do not match the model exactly: {report.summary()}")
    return report
