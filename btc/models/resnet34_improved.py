"""Improved ResNet34 and its single-module ablations (paper 003).

Paper 003 (Li et al., "Research on Brain Tumor Classification Method Based on Improved ResNet34
Network"), §2.2–2.5, Figs. 2, 4, 5 and Table 2. Three modules are added to ResNet34:

- **A** (§2.3, Fig. 4) the Inception-v2 downsampling module replaces each residual downsampling
  block (the first block of stages 2–4). With it the stages hold 3, 3, 5, 2 basic blocks after
  the modules, as Fig. 2 shows (ResNet34's 3, 4, 6, 3 minus the replaced block).
- **B** (§2.4, Fig. 5) the multi-scale input module replaces the 7×7 stem conv: 3×3, 5×5, 7×7 and
  11×11 convs (stride 1, 32 channels each), summed pairwise (3+5, 7+11), then a 3×3 and a 5×5
  conv (stride 2, 32 channels each), concatenated to 64 channels; ResNet34's 3×3 max-pool
  follows (Fig. 2).
- **C** (§2.5) an SE block (reduction 16) in every residual block, on the residual branch after
  the second BN and before the add (Fig. 2: conv, conv, SE, +).

`resnet34_improved` has A+B+C (Table 2, model 5); `resnet34_a`, `resnet34_b`, `resnet34_c` are
models 2, 3, 4. Every conv box is conv → BN → ReLU (BN-Inception, i.e. Inception v2, style).
Module names follow torchvision's ResNet (`conv1`, `bn1`, `layerN.M.conv1`, …, `fc`), so
torchvision's ImageNet ResNet34 (the registry's `pretrained` source,
`torchvision:ResNet34_Weights.IMAGENET1K_V1`) loads through `btc.models.weights` into every tensor
whose name and shape match (the new modules start from their initialisation).
The stages, shortcuts and initialisation are the ResNet skeleton of `resnet_base.py`; module
A is its downsampling block (`down_block`), B its stem, C an option of the basic block.

**Reading of Fig. 4 chosen to reproduce the paper's parameter count.** The text says the module
has four branches whose outputs have the same width and concatenate to twice the input width
(each branch ends with C/2 channels for C input channels). Taken literally, Fig. 4 (branch 1:
3×3/2 conv → C/2; branch 2: 1×1 → C/4, 3×3/2 → C/2; branch 3: 1×1 → C/2, 3×3 → C/4, 3×3/2 → C/2;
branch 4: 3×3/2 max-pool, 3×3/2 conv → C/2) gives 17.76 M parameters for the full model with
4 classes, 2.7 % above the paper's ≈ 17.3 M; its pool branch would also halve the side twice.
We read the figure as the Inception-v2 module it names, with only the 1×1 branch turned into a
3×3 one (as the text says):

- branch 4 is max-pool 3×3/2 → **1×1** conv → C/2 (Inception's pool projection, stride 1);
- branch 3's first 1×1 reduces to **C/4**, like branch 2's: 1×1 → C/4, 3×3 → C/4, 3×3/2 → C/2.

This gives 17,344,408 parameters (4 classes, +0.26 % from 17.3 M; ResNet34 21,286,724, so
81.5 % of it — the paper says "about 80 %"). For comparison: only the pool-branch change,
17.41 M; Inception-v3's grid reduction (pool branch without conv, branches 2 and 3 ending with
C/4 — contradicts "same width per branch"), 17.27 M. `InceptionDownsample(figure_literal=True)`
builds the literal Fig. 4 reading.

The stride of a two-conv branch is on its last conv, so every branch gives ⌈H/2⌉ × ⌈W/2⌉.
"""

from __future__ import annotations

import torch
from torch import nn

from btc.models.layers import ConvBnAct, SqueezeExcite
from btc.models.registry import register_model
from btc.models.resnet_base import ResNet, Stem, plain_stem

PAPER_INPUT_SIZE = 224


class InceptionDownsample(nn.Module):
    """Inception-v2 downsampling module (paper 003 Fig. 4): C×H×W → 2C×H/2×W/2, four branches of
    C/2 channels each, concatenated. See the module docstring for the reading of the figure."""

    def __init__(self, in_chs: int, out_chs: int | None = None, figure_literal: bool = False) -> None:
        super().__init__()
        if out_chs not in (None, 2 * in_chs):
            raise ValueError(f"the Inception downsampling module doubles the width: {in_chs} → "
                             f"{2 * in_chs}, not {out_chs}")
        half, quarter = in_chs // 2, in_chs // 4
        reduce3 = half if figure_literal else quarter
        self.branch1 = ConvBnAct(in_chs, half, 3, stride=2)
        self.branch2 = nn.Sequential(ConvBnAct(in_chs, quarter, 1),
                                     ConvBnAct(quarter, half, 3, stride=2))
        self.branch3 = nn.Sequential(ConvBnAct(in_chs, reduce3, 1),
                                     ConvBnAct(reduce3, quarter, 3),
                                     ConvBnAct(quarter, half, 3, stride=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1),
                                     ConvBnAct(in_chs, half, 3 if figure_literal else 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class MultiScaleStem(nn.Module):
    """Multi-scale input module (paper 003 Fig. 5): 3×H×W → 64×H/2×W/2."""

    def __init__(self, in_chans: int = 3, width: int = 32) -> None:
        super().__init__()
        self.conv3 = ConvBnAct(in_chans, width, 3)
        self.conv5 = ConvBnAct(in_chans, width, 5)
        self.conv7 = ConvBnAct(in_chans, width, 7)
        self.conv11 = ConvBnAct(in_chans, width, 11)
        self.fuse_small = ConvBnAct(width, width, 3, stride=2)  # on conv3 + conv5
        self.fuse_large = ConvBnAct(width, width, 5, stride=2)  # on conv7 + conv11
        self.out_chs = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = self.fuse_small(self.conv3(x) + self.conv5(x))
        large = self.fuse_large(self.conv7(x) + self.conv11(x))
        return torch.cat([small, large], 1)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs), with an optional SE gate before the add (module C);
    torchvision's module names, its shortcut (`downsample`) given by `make_layer`."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, se: bool = False,
                 se_reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcite(planes, se_reduction) if se else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + shortcut)


class ResNet34Improved(ResNet):
    """ResNet34 with any of the modules A (Inception-v2 downsampling), B (multi-scale input) and
    C (SE in every residual block), on the shared ResNet skeleton (`resnet_base.py`): A is its
    downsampling block, B its stem, C a block option. With none it is torchvision's ResNet34."""

    def __init__(self, num_classes: int = 4, in_chans: int = 3, inception_down: bool = True,
                 multiscale_stem: bool = True, se: bool = True,
                 layers: tuple[int, ...] = (3, 4, 6, 3),
                 figure_literal: bool = False) -> None:
        if multiscale_stem:
            multiscale = MultiScaleStem(in_chans)
            stem = Stem({"stem": multiscale}, multiscale.out_chs)
        else:
            stem = plain_stem(in_chans)

        def inception(in_chs: int, out_chs: int) -> InceptionDownsample:
            return InceptionDownsample(in_chs, out_chs, figure_literal=figure_literal)

        super().__init__(BasicBlock, layers, stem, num_classes=num_classes,
                         down_block=inception if inception_down else None, se=se)


def _build(num_classes: int, a: bool, b: bool, c: bool) -> ResNet34Improved:
    return ResNet34Improved(num_classes, inception_down=a, multiscale_stem=b, se=c)


_SPEC = dict(paper="003", input_size=PAPER_INPUT_SIZE, recipe="paper003", cam_layer="layer4",
             pretrained="torchvision:ResNet34_Weights.IMAGENET1K_V1")


@register_model("resnet34_improved", **_SPEC)
def resnet34_improved(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet34 + Inception-v2 downsampling + multi-scale input + SE (paper 003, Fig. 2, Table 2 model 5)."""
    return _build(num_classes, True, True, True)


@register_model("resnet34_a", **_SPEC)
def resnet34_a(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet34 + Inception-v2 downsampling module only (paper 003, Table 2 model 2)."""
    return _build(num_classes, True, False, False)


@register_model("resnet34_b", **_SPEC)
def resnet34_b(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet34 + multi-scale input module only (paper 003, Table 2 model 3)."""
    return _build(num_classes, False, True, False)


@register_model("resnet34_c", **_SPEC)
def resnet34_c(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet34 + SE block in every residual block only (paper 003, Table 2 model 4)."""
    return _build(num_classes, False, False, True)
