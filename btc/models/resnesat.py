"""ResNeSAt: ResNeSt-50 with a CBAM spatial-attention gate in every bottleneck (paper 001).

Paper 001 (Zhang et al., "Brain Tumors Classification for MR images based on Attention Guided
Deep Learning Model"), Table II and Fig. 4:

- stem ("InitConv"): deep stem, 3×3 convs 3→32 (stride 2) →32 →64, BN + ReLU after each, max-pool;
- layers [3, 4, 6, 3] of bottlenecks, widths 64/128/256/512, expansion 4;
- bottleneck: 1×1 conv, BN, ReLU → split-attention 3×3 conv (radix 2, cardinality 1) → [avd
  3×3 average-pool, stride 2, in the first block of layers 2–4] → 1×1 conv, BN → **SA** →
  + shortcut → ReLU;
- shortcut where the shape changes ("avg-down"): 2×2 average-pool (stride 2; identity in
  layer 1) → 1×1 conv → BN;
- SA (Fig. 4) = CBAM spatial attention: channel max and mean → 7×7 conv → BN → sigmoid, the map
  multiplies the output of the last BN, before the residual add;
- classifier: global average pool → FC.

Table II lists the avd average-pool *before* `SplAtConv` in layers 2–4 (ResNeSt's "avd_first"
variant); we follow the ResNeSt-50 reference and timm's `resnest50d` (pool after the
split-attention conv) so that ImageNet weights load. Both variants have identical parameters;
`avd_first=True` gives Table II's order. Table II's ", ReLU, SA" order is read with the ReLU
belonging to the residual add, as drawn in Fig. 4.

The stem, the stage loop, the avg-down shortcut and the initialisation are the ResNet skeleton
of `resnet_base.py` (`deep_stem`, `avg_down_shortcut`, `zero_init_last`); this module adds the
bottleneck. `resnest50` is the same network without the gates. Module names follow timm's
`resnest50d` (`conv1.{0,1,3,4,6}`, `bn1`, `layerN.M.{conv1,bn1,conv2.{conv,bn0,fc1,bn1,fc2},conv3,
bn3,downsample.{1,2}}`, `fc`): a timm state dict loads into `resnest50` with no missing key, and into
`resnesat` with only the gates' keys (`layerN.M.sa.*`) missing.

Size (paper 001 §IV: ResNeSt 97.45 MB, ResNeSAt 97.46 MB). The gates add 16 × (2·7·7 + 2) =
1,600 parameters (6.25 KiB) to ResNeSt-50's 25,438,338 (2 classes). In MiB, a 2-class
`resnest50` is 97.04 (float32 parameters), 97.29 (whole state dict), 97.41 (`torch.save` of the
state dict) and 97.45 (`torch.save` of the whole module): the paper's figure is most likely the
size of a saved 2-class checkpoint file, and its +0.01 matches the gates' +0.006 MiB.
"""

from __future__ import annotations

import torch
from torch import nn

from btc.models.layers import SpatialAttention, SplitAttn
from btc.models.registry import register_model
from btc.models.resnet_base import ResNet, avg_down_shortcut, deep_stem

IMAGENET = "timm:resnest50d.in1k"  # paper 001 starts from these weights (btc.models.weights)


class ResNeStBottleneck(nn.Module):
    """ResNeSt bottleneck (1×1 → split-attention 3×3 → [avd] → 1×1), optionally SA-gated."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, radix: int = 2, cardinality: int = 1,
                 avd_first: bool = False, spatial_gate: bool = False, sa_kernel: int = 7) -> None:
        super().__init__()
        width = planes * cardinality
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU(inplace=True)
        avd = nn.AvgPool2d(3, stride, padding=1) if stride > 1 else None
        self.avd_first = avd if avd_first else None
        self.conv2 = SplitAttn(width, width, kernel_size=3, stride=1, groups=cardinality,
                               radix=radix)
        self.avd_last = None if avd_first else avd
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.sa = SpatialAttention(sa_kernel, norm=True) if spatial_gate else None
        self.act3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        if self.avd_first is not None:
            out = self.avd_first(out)
        out = self.conv2(out)
        if self.avd_last is not None:
            out = self.avd_last(out)
        out = self.bn3(self.conv3(out))
        if self.sa is not None:
            out = out * self.sa(out)
        return self.act3(out + shortcut)


class ResNeSt(ResNet):
    """ResNeSt with deep stem and avg-down shortcuts (timm `resnest50d` layout), on the shared
    ResNet skeleton (`resnet_base.py`); the last BN of every bottleneck starts at zero, as in timm."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000,
                 in_chans: int = 3, stem_width: int = 32, radix: int = 2, cardinality: int = 1,
                 avd_first: bool = False, spatial_gate: bool = False, sa_kernel: int = 7) -> None:
        super().__init__(ResNeStBottleneck, layers, deep_stem(in_chans, stem_width),
                         num_classes=num_classes, shortcut=avg_down_shortcut, zero_init_last=True,
                         radix=radix, cardinality=cardinality, avd_first=avd_first,
                         spatial_gate=spatial_gate, sa_kernel=sa_kernel)


def _build(num_classes: int, spatial_gate: bool) -> ResNeSt:
    return ResNeSt(num_classes=num_classes, spatial_gate=spatial_gate)


@register_model("resnesat", paper="001", input_size=256, recipe="paper001", cam_layer="layer4",
                pretrained=IMAGENET)
def resnesat(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNeSt-50 + CBAM spatial attention in every bottleneck (paper 001, Table II, Fig. 4)."""
    return _build(num_classes, spatial_gate=True)


@register_model("resnest50", paper="001", input_size=256, recipe="paper001", cam_layer="layer4",
                pretrained=IMAGENET)
def resnest50(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNeSt-50 (deep stem, avg-down, radix 2): paper 001's baseline, timm `resnest50d` layout."""
    return _build(num_classes, spatial_gate=False)
