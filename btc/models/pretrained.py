"""ImageNet weights from the local caches only: btc never downloads.

- torchvision weight enums are looked up in `torch.hub.get_dir()/checkpoints/` (where torchvision
  stores them on a machine with internet access);
- timm's ResNeSt-50d weights (`timm/resnest50d.in1k`) in the Hugging Face hub cache, when
  `huggingface_hub` is installed.

When the file is not there, a one-line `BtcError` tells the user to pass `--weights FILE`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from btc.errors import BtcError


def _not_cached(what: str, where: str | Path) -> BtcError:
    return BtcError(f"ImageNet weights for {what} are not in the local cache ({where}) and cannot "
                    "be downloaded here; use --weights FILE with a local state dict")


def torchvision_weights(weights: type[WeightsEnum] | WeightsEnum) -> WeightsEnum:
    """The first weights of `weights` (an enum class: its DEFAULT first, then the others; or one
    member) whose file is in the torch hub cache; a `BtcError` when none is."""
    if isinstance(weights, WeightsEnum):
        candidates = [weights]
    else:
        candidates = [weights.DEFAULT] + [w for w in weights if w is not weights.DEFAULT]
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for candidate in candidates:
        if (checkpoints / Path(urlparse(candidate.url).path).name).is_file():
            return candidate
    raise _not_cached(str(candidates[0]), checkpoints)


def timm_state_dict(hf_hub_id: str) -> dict[str, torch.Tensor]:
    """The state dict of a timm Hugging Face checkpoint, read from the local hub cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        raise BtcError("pretrained ResNeSt weights need timm / huggingface_hub (pip install "
                       "'btc[timm]') and a cached checkpoint; or use --weights FILE") from None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hf_hub_id, filename)
        if isinstance(found, str):
            if filename.endswith(".safetensors"):
                from safetensors.torch import load_file

                return load_file(found, device="cpu")
            return torch.load(found, map_location="cpu", weights_only=True)
    raise _not_cached(hf_hub_id, "Hugging Face hub cache")


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load the tensors of `state` whose name and shape match `model`; return the model keys left
    at their initial values (new layers, the classifier)."""
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return [k for k in own if k not in keep]
