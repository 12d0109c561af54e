"""SE-ResNet50 and SKNet-50: the channel-attention ResNets of paper 001's Fig. 3 (refs. [5], [6]).

Paper 001 §III-B ("Existing Classification Networks Comparison", Fig. 3) compares the networks of
its references [1]–[7] (VGG, ResNet, ResNeXt, DenseNet, SENet, SKNet, ResNeSt) on an 80/20 split
before choosing ResNeSt. It names the families only; btc takes their 50-layer members, the ones
timm publishes ImageNet weights for, in timm's layouts so that those weights load by name
(`btc.models.weights`, sources `timm:seresnet50.a1_in1k` and `timm:skresnext50_32x4d.ra_in1k`).
Both are built here on btc's ResNet skeleton (`resnet_base.py`: plain 7×7 stem, max-pool, four
stages of [3, 4, 6, 3] blocks, 1×1/s conv shortcut, global average pool, `fc`), so they build
without timm; timm is needed only to check and load the ImageNet weights.

- `se_resnet50` = timm `seresnet50` (Hu et al. 2018, SE-ResNet-50): He et al.'s bottleneck
  (1×1 → 3×3/s → 1×1, BN after each) whose output, after its last BN and before the residual
  add, is re-weighted by a squeeze-and-excitation gate (`layers.SqueezeExcite`, reduction 16, as
  timm's `SEModule`: `se.fc1`, `se.fc2`). The last BN of every block starts at zero (timm's
  default `zero_init_last`).
- `sk_resnext50` = timm `skresnext50_32x4d` (Li et al. 2019, SKNet-50, their Table 1: ResNeXt-50
  32×4d whose grouped 3×3 conv is a selective-kernel conv). `SelectiveKernel` splits into two
  grouped paths, a 3×3 conv and a 3×3 conv with dilation 2 (the SK paper's "5×5" branch, as the
  paper itself implements it), each conv → BN → ReLU; fuses them by sum → global average pool →
  1×1 conv to d = max(C/16, 32) (timm: C/16 rounded to a multiple of 32) → BN → ReLU → 1×1 conv
  to 2C → softmax across the two paths; and outputs the paths weighted by it. No residual BN is
  zero-initialised (timm's `zero_init_last=False` for this model). Module names follow timm's
  `ConvNormAct` (`conv`, `bn`) and `SelectiveKernelAttn` (`fc_reduce`, `bn`, `fc_select`).

A timm state dict of either network loads into btc's with no missing or unexpected key, and gives
the same output (tests/test_figure3.py).
"""

from __future__ import annotations

import torch
from torch import nn

from btc.models.layers import SqueezeExcite, make_divisible
from btc.models.resnet_base import ResNet, plain_stem

LAYERS_50 = (3, 4, 6, 3)


class Bottleneck(nn.Module):
    """He et al.'s bottleneck (ResNeXt's with `cardinality` > 1), optionally SE-gated (timm
    `Bottleneck`, `attn_layer='se'`): 1×1 → BN → ReLU → 3×3/s (grouped) → BN → ReLU → 1×1 → BN
    → [SE] → + shortcut → ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, cardinality: int = 1, base_width: int = 64,
                 se: bool = False) -> None:
        super().__init__()
        width = planes * base_width // 64 * cardinality
        out_chs = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.se = SqueezeExcite(out_chs, reduction=16) if se else None
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.act3(out + shortcut)


class ConvBn(nn.Module):
    """conv (no bias) → BN → [ReLU], with timm's `ConvNormAct` names (`conv`, `bn`); padding
    keeps the side at stride 1 for any dilation."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride,
                              padding=dilation * (kernel_size - 1) // 2, dilation=dilation,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SelectiveKernelAttn(nn.Module):
    """The SK "fuse" and "select" steps: the paths' sum → global average pool → 1×1 conv to
    `attn_chs` → BN → ReLU → 1×1 conv to `paths`·C → softmax across the paths, (N, paths, C, 1, 1)."""

    def __init__(self, channels: int, paths: int, attn_chs: int) -> None:
        super().__init__()
        self.paths = paths
        self.fc_reduce = nn.Conv2d(channels, attn_chs, 1, bias=False)
        self.bn = nn.BatchNorm2d(attn_chs)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(attn_chs, channels * paths, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.sum(1).mean((2, 3), keepdim=True)
        s = self.fc_select(self.act(self.bn(self.fc_reduce(s))))
        return torch.softmax(s.view(s.shape[0], self.paths, -1, 1, 1), dim=1)


class SelectiveKernel(nn.Module):
    """Selective-kernel conv (Li et al. 2019, Fig. 1): grouped 3×3 paths of dilation 1, 2, …
    ("split"), weighted per channel by `SelectiveKernelAttn` ("fuse", "select") and summed."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, groups: int = 1,
                 dilations: tuple[int, ...] = (1, 2), reduction: int = 16,
                 attn_divisor: int = 32) -> None:
        super().__init__()
        self.paths = nn.ModuleList([ConvBn(in_chs, out_chs, 3, stride, dilation=d, groups=groups)
                                    for d in dilations])
        self.attn = SelectiveKernelAttn(out_chs, len(dilations),
                                        make_divisible(out_chs / reduction, attn_divisor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        paths = torch.stack([path(x) for path in self.paths], dim=1)
        return (paths * self.attn(paths)).sum(1)


class SelectiveKernelBottleneck(nn.Module):
    """SKNet's bottleneck (timm `SelectiveKernelBottleneck`): 1×1 → BN → ReLU → selective-kernel
    conv (grouped, stride /s) → 1×1 → BN → + shortcut → ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, cardinality: int = 32,
                 base_width: int = 4) -> None:
        super().__init__()
        width = planes * base_width // 64 * cardinality
        self.conv1 = ConvBn(inplanes, width)
        self.conv2 = SelectiveKernel(width, width, stride, groups=cardinality)
        self.conv3 = ConvBn(width, planes * self.expansion, act=False)
        self.act = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + shortcut)


def se_resnet50(num_classes: int) -> ResNet:
    """SE-ResNet50 (timm `seresnet50` layout)."""
    return ResNet(Bottleneck, LAYERS_50, plain_stem(), num_classes=num_classes,
                  zero_init_last=True, se=True)


def sk_resnext50(num_classes: int) -> ResNet:
    """SKNet-50: SK-ResNeXt50 32×4d (timm `skresnext50_32x4d` layout)."""
    return ResNet(SelectiveKernelBottleneck, LAYERS_50, plain_stem(), num_classes=num_classes,
                  cardinality=32, base_width=4)
