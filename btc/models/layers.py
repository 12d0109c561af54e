"""Small composable layers shared by the papers' architectures (timm `timm/layers/` style).

- `ConvBnAct`: conv → BN → ReLU, the unit the papers draw as one "conv" box.
- `SqueezeExcite`: SE channel attention, Hu et al. 2018 (paper 003 §2.5, eqs. 2–4).
- `ChannelAttention`, `SpatialAttention`, `CBAM`: Woo et al. 2018 (paper 002 §3.1.2 Fig. 3;
  the spatial part alone is the "SA" of paper 001 Fig. 4).
- `SeparableConv2d`: depthwise 3×3 + pointwise 1×1 (Keras `SeparableConv2D`, paper 002 §3.1.1).
- `SplitAttn`, `RadixSoftmax`: ResNeSt split-attention conv (Zhang et al. 2020, paper 001 §III-C),
  with timm's module and parameter names so timm checkpoints load unchanged.

The attention modules named `*Attention` return the attention *map* (values in (0, 1)) so it can
be inspected or hooked; the caller multiplies. `SqueezeExcite` and `CBAM` are complete gates that
return the re-weighted input.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round `v` to a multiple of `divisor`, at least `min_value`, never below 90 % of `v` (timm)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def _linear(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1×1 conv (groups 1) applied to pooled vectors (N, C) as the matmul it is: the conv's
    own weight and bias (so parameters and state-dict keys stay those of the conv), without the
    convolution machinery a (N, C, 1, 1) input would go through."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last when `x` is laid out so (and not also plain contiguous), else contiguous."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _dense_view(x: torch.Tensor) -> tuple[torch.Tensor, int, tuple[int, int]]:
    """`x` (N, C, H, W) as the view in which it is dense — NHWC for a channels-last tensor — and
    the positions of its channel and spatial dims there. A reduction over that view builds its
    gradient in `x`'s own layout; reduced over the NCHW dims of a channels-last tensor, `mean` and
    `max` hand back an NCHW gradient, and the sum with the other, channels-last, gradient of `x`
    then takes a slow path."""
    if _memory_format(x) == torch.channels_last:
        return x.permute(0, 2, 3, 1), 3, (1, 2)
    return x, 1, (2, 3)


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """Global average pool (N, C, H, W) → (N, C), its gradient in `x`'s layout."""
    view, _, spatial = _dense_view(x)
    return view.mean(spatial)


class ConvBnAct(nn.Sequential):
    """`k×k` conv (no bias) → BatchNorm → ReLU, 'same' padding for odd kernels at stride 1."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, act: bool = True) -> None:
        super().__init__(
            nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_chs),
            nn.ReLU(inplace=True) if act else nn.Identity(),
        )


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation: GAP → FC (C → C/r) → ReLU → FC (C/r → C) → sigmoid → scale.

    The two FC layers are 1×1 convs with bias (same parameters as `nn.Linear`), as in timm's
    `SEModule`. `reduction=16` is the SE paper's default, used by paper 003.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        rd = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = _linear(self.fc2, self.act(_linear(self.fc1, _spatial_mean(x))))
        return x * torch.sigmoid(s).view(*s.shape, 1, 1)


class ChannelAttention(nn.Module):
    """CBAM channel attention map (N, C, 1, 1): shared MLP on global avg- and max-pooled vectors.

    `σ(MLP(AvgPool(x)) + MLP(MaxPool(x)))`, MLP = FC(C → C/r) → ReLU → FC(C/r → C), with biases
    (Woo et al. 2018, eq. 2; the Keras implementations paper 002 builds on use biased Dense layers).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        rd = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, rd, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        # both pooled vectors through the shared MLP as one batch of 2N rows (two small matmuls
        # instead of four 1×1 convs); the max with its position, so that the backward pass
        # scatters into the one maximum instead of comparing the whole map with it
        pooled = torch.cat([_spatial_mean(x), F.adaptive_max_pool2d(x, 1).flatten(1)])
        z = _linear(self.fc2, self.act(_linear(self.fc1, pooled)))
        return torch.sigmoid(z[:n] + z[n:]).view(n, c, 1, 1)


class SpatialAttention(nn.Module):
    """CBAM spatial attention map (N, 1, H, W) in (0, 1).

    Channel-wise max and mean (2 maps) → `k×k` conv (2 → 1, no bias) → [BN] → sigmoid.
    `norm=True` is the original CBAM ("BasicConv" with BN, no ReLU), used by ResNeSAt (paper 001);
    `norm=False` is the common Keras CBAM (conv + sigmoid), used by DSConv-CBAM (paper 002).
    """

    def __init__(self, kernel_size: int = 7, norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view, channels, _ = _dense_view(x)
        # the max with its position (backward: one scatter, not a comparison of the whole input)
        pooled = torch.stack([view.max(channels).values, view.mean(channels)], dim=1)
        pooled = pooled.contiguous(memory_format=_memory_format(x))
        return torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: `x ← x·Mc(x)`, then `x ← x·Ms(x)` (Woo et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7,
                 spatial_norm: bool = True) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel, norm=spatial_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)
        return x * self.spatial(x)


class SeparableConv2d(nn.Module):
    """Depthwise `k×k` conv (one filter per channel, no bias) → pointwise 1×1 conv (with bias).

    Same parameters as Keras `SeparableConv2D(depth_multiplier=1, use_bias=True)`:
    `k·k·M + M·N + N` (paper 002 Table 2, plus the pointwise bias). `padding` is `'valid'` (Keras'
    default) or `'same'`.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3,
                 padding: str = "valid", bias: bool = True) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        pad = 0 if padding == "valid" else kernel_size // 2
        self.depthwise = nn.Conv2d(in_chs, in_chs, kernel_size, padding=pad, groups=in_chs,
                                   bias=False)
        self.pointwise = nn.Conv2d(in_chs, out_chs, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class RadixSoftmax(nn.Module):
    """Softmax over the radix splits of each cardinal group (sigmoid when radix is 1)."""

    def __init__(self, radix: int, cardinality: int) -> None:
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.size(0)
        if self.radix > 1:
            x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
            return F.softmax(x, dim=1).reshape(batch, -1)
        return torch.sigmoid(x)


class SplitAttn(nn.Module):
    """Split-attention conv (ResNeSt): radix-`R` grouped `k×k` conv → BN → ReLU → sum of splits →
    GAP → fc1 → BN → ReLU → fc2 → softmax over the radix → attention-weighted sum of splits.

    Module names (`conv`, `bn0`, `fc1`, `bn1`, `fc2`) follow timm's `SplitAttn`; the attention
    width is `max(32, in·R/4)` rounded to a multiple of 8, as in timm and the ResNeSt reference.
    """

    def __init__(self, in_chs: int, out_chs: int | None = None, kernel_size: int = 3,
                 stride: int = 1, groups: int = 1, radix: int = 2, rd_ratio: float = 0.25,
                 rd_divisor: int = 8) -> None:
        super().__init__()
        out_chs = out_chs or in_chs
        self.radix = radix
        mid_chs = out_chs * radix
        attn_chs = make_divisible(in_chs * radix * rd_ratio, divisor=rd_divisor, min_value=32)
        self.conv = nn.Conv2d(in_chs, mid_chs, kernel_size, stride, padding=kernel_size // 2,
                              groups=groups * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(mid_chs)
        self.act0 = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(out_chs, attn_chs, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(attn_chs, mid_chs, 1, groups=groups)
        self.rsoftmax = RadixSoftmax(radix, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory_format = _memory_format(x)
        x = self.act0(self.bn0(self.conv(x)))
        b = x.shape[0]
        # the radix splits as channel slices of the conv output (4-D views that keep its memory
        # format: a 5-D reshape has no channels-last layout, and the ops behind it would mix
        # formats and take slow paths, forward and backward)
        splits = x.chunk(self.radix, dim=1)
        gap = _spatial_mean(functools.reduce(torch.add, splits)).view(b, -1, 1, 1)
        attn = self.fc2(self.act1(self.bn1(self.fc1(gap))))
        attn = self.rsoftmax(attn).view(b, -1, 1, 1)
        if self.radix > 1:
            out = functools.reduce(torch.add, (s * a for s, a in zip(splits, attn.chunk(self.radix, dim=1), strict=True)))
        else:
            out = x * attn
        # contiguous in the input's memory format: a channels-last network stays channels-last
        # (a plain `.contiguous()` would hand the next conv an NCHW tensor)
        return out.contiguous(memory_format=memory_format)
