"""One ResNet skeleton: stem → max-pool → four stages of residual blocks → global pool → FC.

Paper 001's ResNeSt-50 / ResNeSAt (`resnesat.py`) and paper 003's ResNet34 and its improved
variants (`resnet34_improved.py`) are He et al.'s ResNet (2016, Table 1) with parts swapped. As in
torchvision's and timm's `ResNet`, this module owns what they share and each paper module supplies
only what differs:

- the **stem**, applied before the 3×3/2 max-pool: `plain_stem` (torchvision's 7×7/2 conv → BN →
  ReLU), `deep_stem` (ResNet-D's three 3×3 convs, timm `stem_type='deep'`, paper 001 Table II
  "InitConv"), or any named modules (paper 003's multi-scale input module, Fig. 5);
- the **block type** (`BlockType`: a class with an `expansion` attribute, built as
  `block(inplanes, planes, stride, downsample, **block_kwargs)`): paper 003's basic block with an
  optional SE gate, paper 001's split-attention bottleneck with an optional SA gate;
- the **shortcut** of a block that changes shape (`conv_shortcut`: 1×1/s conv → BN, torchvision;
  `avg_down_shortcut`: 2×2/s average-pool → 1×1 conv → BN, ResNet-D's "avg-down", timm
  `avg_down=True`, paper 001 Table II);
- optionally a **downsampling block** that replaces the first, strided block of stages 2–4
  (paper 003's Inception-v2 module A, Fig. 4).

`make_layer` builds one stage as torchvision's `ResNet._make_layer` and timm's `make_blocks` do;
`ResNet` loops over the four stages (widths 64, 128, 256, 512 times the block's expansion; stride
1, then 2), ends with global average pooling and the `fc` classifier, and initialises as both
libraries do: Kaiming-normal (fan-out, ReLU) convs, BatchNorm to the identity and, with
`zero_init_last`, the last BN of every residual branch to zero (Goyal et al. 2017; timm's default,
so each block starts as the identity). Module names are torchvision's and timm's (`conv1`, `bn1`,
`layerN.M.…`, `fc`), so their ImageNet state dicts load by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

STAGE_WIDTHS = (64, 128, 256, 512)

Shortcut = Callable[[int, int, int], nn.Module]  # (in_chs, out_chs, stride) -> module
DownBlock = Callable[[int, int], nn.Module]  # (in_chs, out_chs) -> module halving the side


class BlockType(Protocol):
    """A residual block class: `expansion` × `planes` channels out."""

    expansion: int

    def __call__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None,
                 **kwargs: Any) -> nn.Module: ...


@dataclass(frozen=True)
class Stem:
    """The modules before the max-pool, applied in order and registered on the network under
    their names (which fix the state-dict keys), and the channels they output."""

    modules: Mapping[str, nn.Module]
    out_chs: int


def plain_stem(in_chans: int = 3, width: int = 64) -> Stem:
    """torchvision's stem: 7×7/2 conv → BN → ReLU (`conv1`, `bn1`, `relu`)."""
    return Stem({"conv1": nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False),
                 "bn1": nn.BatchNorm2d(width),
                 "relu": nn.ReLU(inplace=True)}, width)


def deep_stem(in_chans: int = 3, width: int = 32) -> Stem:
    """ResNet-D deep stem (timm `stem_type='deep'`): 3×3/2 conv → BN → ReLU → 3×3 conv → BN →
    ReLU → 3×3 conv to 2·`width` (`conv1.{0,1,3,4,6}`), then `bn1` → `act1`."""
    conv1 = nn.Sequential(
        nn.Conv2d(in_chans, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, width * 2, 3, padding=1, bias=False),
    )
    return Stem({"conv1": conv1, "bn1": nn.BatchNorm2d(width * 2), "act1": nn.ReLU(inplace=True)},
                width * 2)


def conv_shortcut(in_chs: int, out_chs: int, stride: int) -> nn.Sequential:
    """torchvision's projection shortcut: 1×1 conv with the block's stride → BN (`0`, `1`)."""
    return nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs))


def avg_down_shortcut(in_chs: int, out_chs: int, stride: int) -> nn.Sequential:
    """ResNet-D "avg-down" shortcut: 2×2 average-pool with the stride (identity at stride 1) →
    1×1 conv → BN (`1`, `2`, as timm's `downsample_avg`)."""
    pool = (nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1
            else nn.Identity())
    return nn.Sequential(pool, nn.Conv2d(in_chs, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs))


def make_layer(block: BlockType, inplanes: int, planes: int, depth: int, stride: int = 1, *,
               shortcut: Shortcut = conv_shortcut, down_block: DownBlock | None = None,
               **block_kwargs: Any) -> nn.Sequential:
    """One stage of `depth` blocks with `planes`·`block.expansion` output channels.

    The first block takes the stride and, when the shape changes, a `shortcut`; the others keep
    the shape. With `down_block` and a stride above 1, the first block is `down_block(inplanes,
    out_chs)` instead (it must halve the side itself), so the stage still holds `depth` modules.
    """
    out_chs = planes * block.expansion
    if down_block is not None and stride > 1:
        first = down_block(inplanes, out_chs)
    else:
        downsample = shortcut(inplanes, out_chs, stride) if stride != 1 or inplanes != out_chs else None
        first = block(inplanes, planes, stride, downsample, **block_kwargs)
    rest = [block(out_chs, planes, 1, None, **block_kwargs) for _ in range(depth - 1)]
    return nn.Sequential(first, *rest)


class ResNet(nn.Module):
    """`stem` → 3×3/2 max-pool → `layer1`…`layer4` (`layers` blocks each) → global average
    pool → `fc`. See the module docstring for the parts; `block_kwargs` go to every block."""

    def __init__(self, block: BlockType, layers: tuple[int, ...], stem: Stem, *,
                 num_classes: int = 1000, shortcut: Shortcut = conv_shortcut,
                 down_block: DownBlock | None = None, zero_init_last: bool = False,
                 **block_kwargs: Any) -> None:
        super().__init__()
        for name, module in stem.modules.items():
            self.add_module(name, module)
        self.stem_names = tuple(stem.modules)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem.out_chs
        for i, (planes, depth) in enumerate(zip(STAGE_WIDTHS, layers, strict=True)):
            layer = make_layer(block, inplanes, planes, depth, stride=1 if i == 0 else 2,
                               shortcut=shortcut, down_block=down_block, **block_kwargs)
            self.add_module(f"layer{i + 1}", layer)
            inplanes = planes * block.expansion
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        self.num_features = inplanes
        self.init_weights(zero_init_last)

    def init_weights(self, zero_init_last: bool = False) -> None:
        """Kaiming-normal (fan-out) convs, identity BatchNorm; with `zero_init_last`, every block
        that has a `zero_init_last()` method zeroes its residual branch's last BN."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:
            x = getattr(self, name)(x)
        return self.maxpool(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.global_pool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
