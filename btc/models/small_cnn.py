"""`small_cnn`: a four-block CNN for the demo and the CPU tests (not from a paper).

It exists so that `btc demo` and the test suite can train something to well above chance on
two CPU cores in seconds: 4 × [3×3 conv → BN → ReLU → 2×2 max-pool] (16, 32, 64, 128 channels)
→ global average pool → dense classes, ≈ 0.1 M parameters, any input side ≥ 16 px.
Batch normalisation makes it train from scratch in a few epochs. (BatchNorm's running statistics
lag behind fast-moving weights in the first epochs: evaluated after 4 epochs on the phantom data
it predicted one class; after 8 it generalises. GroupNorm trained too slowly for the demo.)
"""

from __future__ import annotations

from torch import nn

from btc.errors import BtcError
from btc.models.layers import ConvBnAct
from btc.models.registry import register_model


def conv_bn_relu_pool(in_chs: int, out_chs: int) -> nn.Sequential:
    """3×3 conv → BN → ReLU → 2×2 max-pool, as one flat `Sequential` (keys `0`…`3`)."""
    return nn.Sequential(*ConvBnAct(in_chs, out_chs, 3), nn.MaxPool2d(2))


class SmallCNN(nn.Sequential):
    """`features` (four `conv_bn_relu_pool` blocks) → global average pool → `fc`."""

    def __init__(self, num_classes: int, in_chans: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        chans = (in_chans, *widths)
        super().__init__()
        self.features = nn.Sequential(*(conv_bn_relu_pool(chans[i], chans[i + 1]) for i in range(len(widths))))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[-1], num_classes)


@register_model("small_cnn", paper="", input_size=64, recipe="paper002", cam_layer="features.3")
def small_cnn(num_classes: int, pretrained: bool = False) -> nn.Module:
    """Four conv-BN-ReLU-pool blocks → GAP → dense (demo and tests; not from a paper)."""
    if pretrained:
        raise BtcError("small_cnn has no pretrained weights; use --weights FILE")
    return SmallCNN(num_classes)
