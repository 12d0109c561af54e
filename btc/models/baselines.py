"""The papers' baselines: torchvision networks with new heads, the frozen transfer models and
the MLP.

- `resnet18_transfer` (paper 004, §III-A): torchvision ResNet18, every pretrained weight frozen,
  a new final fully connected layer trained. As in the PyTorch transfer-learning tutorial the
  paper follows, freezing is `requires_grad=False`; BatchNorm layers keep their train/eval mode.
- `mobilenet_v2` (paper 002, §3.3): MobileNetV2 without its classifier, frozen, then global
  average pooling → dense 128 (ReLU) → dense classes. Paper 002 is Keras, where a frozen
  (`trainable=False`) backbone also runs its BatchNorm in inference mode: the frozen features stay
  in eval mode even when the model is put in train mode.
- `mlp` (paper 002, §3.2, Fig. 5): the figure's layer sizes are not given in the text. A 224 px
  3-channel image flattened is 150,528 inputs (77 M weights for a 512-unit layer), so the MLP
  first average-pools the image to 32×32 (an area resize; the engine feeds replicated grayscale,
  so no information across channels is lost), flattens 3·32·32 = 3,072 values and applies dense
  512 → 256 → 128 (ReLU) → classes: ≈ 1.74 M parameters.
- `resnet18`, `resnet34`, `resnet50`, `vgg16`, `resnext101` (32×8d), `googlenet` (no auxiliary
  heads), `efficientnet_v2_s`, `densenet121`: torchvision builds with a `num_classes` head, the
  networks paper 003 compares in Tables 2 and 5 (`resnet34` is Table 2's model 1).
- Paper 001's Fig. 3 (§III-B) compares its references [1]–[7] on an 80/20 split: VGG (`vgg16`),
  ResNet (`resnet50`), ResNeXt (`resnext50`: torchvision ResNeXt50 32×4d), DenseNet
  (`densenet121`), SENet (`seresnet50`), SKNet (`sknet50`) and ResNeSt (`resnest50`,
  `resnesat.py`). `seresnet50` and `sknet50` are btc's builds of timm's `seresnet50` and
  `skresnext50_32x4d` (`senet_sknet.py`); the three new ones default to paper 001's recipe.

Each but the MLP names its ImageNet weights as its registry `pretrained` source, which
`btc.models.weights` loads into the built network (every tensor but the new head): torchvision's
`torchvision:<Enum>.IMAGENET1K_V1`, or for `seresnet50` and `sknet50` timm's default tag of the
network (`timm:seresnet50.a1_in1k`, `timm:skresnext50_32x4d.ra_in1k`, the weights
`timm.create_model(name, pretrained=True)` loads); these two build without timm, which checks and
loads their weights (without it, `--pretrained` stops with one line saying to install it).
`pretrained` changes only GoogLeNet's build (the input transform its ImageNet weights, ported from
TensorFlow, expect).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torchvision.models as tvm
from torch import nn

from btc.errors import BtcError
from btc.models.registry import register_model
from btc.models.senet_sknet import se_resnet50, sk_resnext50


def freeze(module: nn.Module) -> nn.Module:
    """Set `requires_grad=False` on every parameter of `module`."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# --------------------------------------------------------------------------- paper 004


@register_model("resnet18_transfer", paper="004", input_size=224, recipe="paper004",
                cam_layer="layer4", pretrained="torchvision:ResNet18_Weights.IMAGENET1K_V1")
def resnet18_transfer(num_classes: int, pretrained: bool = False) -> nn.Module:
    """ResNet18, all layers frozen but a new final layer (paper 004): use with pretrained weights."""
    model = tvm.resnet18(weights=None)
    freeze(model)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


# --------------------------------------------------------------------------- paper 002


class MobileNetV2Transfer(nn.Module):
    """Frozen MobileNetV2 features → GAP → dense `hidden` → ReLU → dense classes (paper 002 §3.3)."""

    def __init__(self, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.features = freeze(tvm.mobilenet_v2(weights=None).features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(1280, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(hidden, num_classes)

    def train(self, mode: bool = True) -> MobileNetV2Transfer:
        super().train(mode)
        self.features.eval()  # Keras semantics: a frozen backbone runs BN in inference mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(self.features(x)), 1)
        return self.fc(self.act(self.fc1(x)))


@register_model("mobilenet_v2", paper="002", input_size=224, recipe="paper002",
                cam_layer="features", pretrained="torchvision:MobileNet_V2_Weights.IMAGENET1K_V1")
def mobilenet_v2(num_classes: int, pretrained: bool = False) -> nn.Module:
    """Frozen MobileNetV2 + GAP + dense 128 + output (paper 002 §3.3): use with pretrained weights."""
    return MobileNetV2Transfer(num_classes)


class MLP(nn.Module):
    """Average-pool to `side`×`side` → flatten → dense `hidden`… (ReLU) → dense classes."""

    def __init__(self, num_classes: int, in_chans: int = 3, side: int = 32,
                 hidden: tuple[int, ...] = (512, 256, 128)) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.flatten = nn.Flatten()
        layers: list[nn.Module] = []
        width = in_chans * side * side
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.flatten(self.pool(x))))


@register_model("mlp", paper="002", input_size=224, recipe="paper002", cam_layer="pool")
def mlp(num_classes: int, pretrained: bool = False) -> nn.Module:
    """MLP baseline (paper 002 §3.2): 32×32 area-pooled input, dense 512-256-128, classes."""
    if pretrained:
        raise BtcError("mlp has no pretrained weights (paper 002 trains it from scratch); "
                       "use --weights FILE")
    return MLP(num_classes)


# --------------------------------------------------------------------------- plain torchvision


class TorchvisionBaseline(NamedTuple):
    """A plain torchvision network of the papers' comparisons, with a new `num_classes` head."""

    builder: Callable[..., nn.Module]
    weights: type[tvm.WeightsEnum]  # its ImageNet weights (meta: parameter count, GFLOPS)
    head: str  # dotted path of the `nn.Linear` classifier that is replaced
    cam_layer: str
    description: str
    paper: str = ""  # "001": a baseline only paper 001 uses (its recipe and 256 px input)


TORCHVISION_BASELINES = {
    "resnet18": TorchvisionBaseline(
        tvm.resnet18, tvm.ResNet18_Weights, "fc", "layer4",
        "torchvision ResNet18, all layers trainable (compare resnet18_transfer)"),
    "resnet34": TorchvisionBaseline(
        tvm.resnet34, tvm.ResNet34_Weights, "fc", "layer4",
        "torchvision ResNet34 (paper 003, Table 2 model 1)"),
    "resnet50": TorchvisionBaseline(
        tvm.resnet50, tvm.ResNet50_Weights, "fc", "layer4",
        "torchvision ResNet50 (paper 003, Table 5)"),
    "vgg16": TorchvisionBaseline(
        tvm.vgg16, tvm.VGG16_Weights, "classifier.6", "features",
        "torchvision VGG16 (paper 003, Table 5)"),
    "resnext101": TorchvisionBaseline(
        tvm.resnext101_32x8d, tvm.ResNeXt101_32X8D_Weights, "fc", "layer4",
        "torchvision ResNeXt101 32x8d (paper 003, Table 5)"),
    "googlenet": TorchvisionBaseline(
        tvm.googlenet, tvm.GoogLeNet_Weights, "fc", "inception5b",
        "torchvision GoogLeNet, no auxiliary heads (paper 003, Table 5)"),
    "efficientnet_v2_s": TorchvisionBaseline(
        tvm.efficientnet_v2_s, tvm.EfficientNet_V2_S_Weights, "classifier.1", "features",
        "torchvision EfficientNetV2-S (paper 003, Table 5)"),
    "densenet121": TorchvisionBaseline(
        tvm.densenet121, tvm.DenseNet121_Weights, "classifier", "features",
        "torchvision DenseNet121 (paper 003, Table 5)"),
    "resnext50": TorchvisionBaseline(
        tvm.resnext50_32x4d, tvm.ResNeXt50_32X4D_Weights, "fc", "layer4",
        "torchvision ResNeXt50 32x4d (paper 001, Fig. 3, ref. [3])", paper="001"),
}


def _make_plain(name: str) -> Callable[..., nn.Module]:
    builder, _, head, _, description, _ = TORCHVISION_BASELINES[name]

    def build(num_classes: int, pretrained: bool = False) -> nn.Module:
        extra = {}
        if name == "googlenet":  # its ImageNet weights expect torchvision's input transform
            extra = {"aux_logits": False, "init_weights": not pretrained,
                     "transform_input": pretrained}
        return builder(weights=None, num_classes=num_classes, **extra)

    build.__name__ = name
    build.__doc__ = f"{description}, with a new `{head}` head."
    return build


for _name, _baseline in TORCHVISION_BASELINES.items():
    _paper001 = _baseline.paper == "001"
    register_model(_name, paper=_baseline.paper, input_size=256 if _paper001 else 224,
                   recipe="paper001" if _paper001 else "paper003",
                   cam_layer=_baseline.cam_layer, description=_baseline.description,
                   pretrained=f"torchvision:{_baseline.weights.__name__}.IMAGENET1K_V1")(
        _make_plain(_name))


# --------------------------------------------------------------------------- paper 001, Fig. 3


@register_model("seresnet50", paper="001", input_size=256, recipe="paper001", cam_layer="layer4",
                pretrained="timm:seresnet50.a1_in1k")
def seresnet50(num_classes: int, pretrained: bool = False) -> nn.Module:
    """SE-ResNet50, timm `seresnet50` layout (paper 001, Fig. 3, ref. [5] SENet)."""
    return se_resnet50(num_classes)


@register_model("sknet50", paper="001", input_size=256, recipe="paper001", cam_layer="layer4",
                pretrained="timm:skresnext50_32x4d.ra_in1k")
def sknet50(num_classes: int, pretrained: bool = False) -> nn.Module:
    """SKNet-50 = SK-ResNeXt50 32x4d, timm `skresnext50_32x4d` layout (paper 001, Fig. 3, ref. [6])."""
    return sk_resnext50(num_classes)
