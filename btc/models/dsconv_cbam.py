"""DSConv-CBAM: three separable-conv / max-pool / CBAM blocks and two dense layers (paper 002).

Paper 002 (Chen et al., "A brain tumor diagnosis approach based on deep separable convolutional
networks and attention mechanisms"), §3.1.3 and Fig. 4:

    input 3×224×224
    3 × [ SeparableConv2D 3×3 (32, 64, 128 filters) → MaxPool 2×2 → CBAM (reduction 16, spatial 5×5) ]
    → Flatten → Dense 128 (ReLU) → Dense classes (softmax in the loss)

Choices the paper leaves open:

- **Padding.** The model is written in Keras, whose `SeparableConv2D` default is `'valid'`; the
  paper does not say otherwise, so `padding='valid'` is the default here. The spatial side
  goes 224 → 222 → 111 → 109 → 54 → 52 → 26, the flatten has 26·26·128 = 86,528 features and the
  model has ≈ 11.09 M parameters, 99.9 % of them in the first dense layer. With `'same'` padding
  the side is 224 → 112 → 56 → 28, the flatten has 100,352 features and the model ≈ 12.86 M
  parameters (`build_dsconv_cbam(..., padding="same")`).
- **Activation.** The paper states ReLU as the activation of its models (§3.4); a ReLU follows
  each separable conv (Keras `activation='relu'`).
- **CBAM.** Channel MLP with biases (hidden `C/16`: 2, 4, 8), spatial 5×5 conv without bias or
  BN followed by a sigmoid, as in the common Keras CBAM implementation.
- **Input size.** The dense layer after the flatten depends on the input side. The builder
  takes `input_size` (default: the paper's 224) and sizes that layer for it; `create_model(...,
  input_size=64)` builds the same network for 64 px inputs (the tests). A different input side at
  run time is an error naming the size the model was built for. This is preferred to
  `nn.LazyLinear` because parameter counts, FLOPs, state dicts and optimizers then work before a
  first forward pass.

**Memory format on the CPU.** On the CPU the blocks always run channels-last (NHWC), whatever
the input's layout: PyTorch's NCHW kernels for this network's shapes are slow there — the 2×2
max-pool loops over each window, and oneDNN reorders every separable conv's input and output
to and from its blocked layout (the 3 → 32 pointwise conv of the first block, 5.6 % of the FLOPs,
took 20 ms for 32 images at 64 px in NCHW and 0.8 ms in NHWC). A training step at 64 px is about
2×, inference about 3× faster (`benchmarks/results/cpu_models-cpu.json`); ONNX Runtime's CPU
provider likewise runs convs in a blocked channels-inner layout. The converted input has 3
channels (cheap); the flatten before the dense layers reads the features in NCHW order as
before, so the network computes the same function. On CUDA the layout is the caller's choice
(`btc train --channels-last`).
"""

from __future__ import annotations

import torch
from torch import nn

from btc.errors import BtcError
from btc.models.layers import CBAM, SeparableConv2d
from btc.models.registry import register_model

PAPER_INPUT_SIZE = 224


class DSConvBlock(nn.Module):
    """Separable 3×3 conv → ReLU → 2×2 max-pool → CBAM.

    Computed as conv → max-pool → ReLU: ReLU is monotone, so max(relu(a), relu(b)) =
    relu(max(a, b)) exactly, and the gradients agree (the pooled position is the same, and where
    a window's maximum is ≤ 0 both orders pass no gradient). The ReLU and its backward then run on
    the pooled map, a quarter of the conv's output, the block's largest tensor.
    """

    def __init__(self, in_chs: int, out_chs: int, padding: str = "valid", reduction: int = 16,
                 spatial_kernel: int = 5) -> None:
        super().__init__()
        self.conv = SeparableConv2d(in_chs, out_chs, 3, padding=padding)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.cbam = CBAM(out_chs, reduction, spatial_kernel, spatial_norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbam(self.act(self.pool(self.conv(x))))


def _side_after(side: int, padding: str, n_blocks: int) -> int:
    for _ in range(n_blocks):
        side = (side - (2 if padding == "valid" else 0)) // 2
    return side


class DSConvCBAM(nn.Module):
    """The DSConv-CBAM network of paper 002 Fig. 4, built for `input_size` × `input_size` inputs."""

    def __init__(self, num_classes: int = 4, in_chans: int = 3,
                 input_size: int = PAPER_INPUT_SIZE, widths: tuple[int, ...] = (32, 64, 128),
                 padding: str = "valid", hidden: int = 128) -> None:
        super().__init__()
        side = _side_after(input_size, padding, len(widths))
        if side < 1:
            raise BtcError(f"dsconv_cbam needs a larger input than {input_size} px")
        self.input_size = input_size
        chans = (in_chans, *widths)
        self.blocks = nn.Sequential(*(DSConvBlock(chans[i], chans[i + 1], padding)
                                      for i in range(len(widths))))
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(widths[-1] * side * side, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise BtcError(f"dsconv_cbam was built for {self.input_size}×{self.input_size} inputs "
                           f"(its dense layer follows a flatten), got {x.shape[-2]}×{x.shape[-1]}; "
                           "build it with create_model(..., input_size=N)")
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)  # see "Memory format on the CPU"
        x = self.flatten(self.blocks(x))
        return self.fc(self.act(self.fc1(x)))


@register_model("dsconv_cbam", paper="002", input_size=PAPER_INPUT_SIZE, recipe="paper002",
                cam_layer="blocks.2")
def dsconv_cbam(num_classes: int, pretrained: bool = False,
                input_size: int | None = None) -> nn.Module:
    """Separable conv + CBAM ×3 → dense 128 → classes (paper 002, §3.1.3, Fig. 4), 'valid' padding."""
    if pretrained:
        raise BtcError("dsconv_cbam has no pretrained weights (paper 002 trains it from scratch); "
                       "use --weights FILE")
    return DSConvCBAM(num_classes, input_size=input_size or PAPER_INPUT_SIZE)
