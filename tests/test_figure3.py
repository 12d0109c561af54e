"""Paper 001's Fig. 3 comparison set (issue 15, point 6): the new baselines and the report table.

- `resnext50` (torchvision ResNeXt50 32×4d), `seresnet50` (timm `seresnet50`) and `sknet50`
  (timm `skresnext50_32x4d`) build with a `num_classes` head, have the parameters of the reference
  network less the difference of the heads, name the ImageNet weights their publisher ships
  (timm's default tag), and btc's two timm layouts take a timm state dict with no missing key and
  give timm's output. Without timm they still build; checking their ImageNet weights then stops
  with one line.
- `btc report --paper 001` adds a Fig. 3 table built from run folders written through
  `btc.runfolder`: btc's values only (the paper prints none for the figure), and says so.
"""

from __future__ import annotations

import sys

import pytest
import torch
import torchvision.models as tvm

from btc.errors import BtcError
from btc.models import create_model, get_spec
from btc.models import weights as W
from btc.models.senet_sknet import SelectiveKernel
from btc.models.summary import count_params

TIMM_LAYOUTS = {"seresnet50": "seresnet50", "sknet50": "skresnext50_32x4d"}
FIG3_NEW = ("resnext50", "seresnet50", "sknet50")


def meta_model(name: str, num_classes: int) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, num_classes)


def timm_meta(name: str, **kwargs) -> torch.nn.Module:
    timm = pytest.importorskip("timm", reason="timm not installed (pip install -e '.[dev]')")
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kwargs)


# --------------------------------------------------------------------------- the baselines


def test_fig3_baselines_default_to_paper_001_and_name_their_imagenet_weights():
    sources = {name: get_spec(name).pretrained for name in FIG3_NEW}
    assert sources == {"resnext50": "torchvision:ResNeXt50_32X4D_Weights.IMAGENET1K_V1",
                       "seresnet50": "timm:seresnet50.a1_in1k",
                       "sknet50": "timm:skresnext50_32x4d.ra_in1k"}
    for name in FIG3_NEW:
        spec = get_spec(name)
        assert (spec.paper, spec.recipe, spec.input_size, spec.cam_layer) == ("001", "paper001", 256, "layer4")
        assert "Fig. 3" in spec.description
    assert tvm.get_weight("ResNeXt50_32X4D_Weights.IMAGENET1K_V1").url.endswith(".pth")


def test_timm_sources_are_timms_default_pretrained_tags():
    timm = pytest.importorskip("timm", reason="timm not installed (pip install -e '.[dev]')")
    for name, layout in TIMM_LAYOUTS.items():
        model, tag = get_spec(name).pretrained.removeprefix("timm:").split(".")
        assert model == layout
        tags = timm.list_pretrained(f"{layout}.*")
        assert f"{layout}.{tag}" == tags[0], tags  # the first tag is what pretrained=True loads


@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("name", sorted(TIMM_LAYOUTS))
def test_timm_layouts_have_timms_parameters_less_the_head(name, num_classes):
    model = meta_model(name, num_classes)
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == num_classes
    reference = timm_meta(TIMM_LAYOUTS[name])  # timm's 1000-class ImageNet network
    features = reference.get_classifier().in_features
    total, trainable = count_params(model)
    assert total == trainable == count_params(reference)[0] - (1000 - num_classes) * (features + 1)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours.keys() == theirs.keys()
    assert {k for k in ours if ours[k] != theirs[k]} == {"fc.weight", "fc.bias"}
    logits = model(torch.zeros(2, 3, 256, 256, device="meta"))
    assert logits.shape == (2, num_classes)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_resnext50_is_torchvisions_with_a_new_head(num_classes):
    model = meta_model("resnext50", num_classes)
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == num_classes
    published = tvm.ResNeXt50_32X4D_Weights.IMAGENET1K_V1.meta["num_params"]
    assert count_params(model)[0] == published - (1000 - num_classes) * (model.fc.in_features + 1)
    assert model.layer1[0].conv2.groups == 32 and model.layer1[0].conv2.out_channels == 128


@pytest.mark.parametrize("name", sorted(TIMM_LAYOUTS))
def test_a_timm_state_dict_loads_without_missing_keys_and_gives_timms_output(name):
    timm = pytest.importorskip("timm", reason="timm not installed (pip install -e '.[dev]')")
    torch.manual_seed(0)
    reference = timm.create_model(TIMM_LAYOUTS[name], pretrained=False, num_classes=3).eval()
    for module in reference.modules():  # BN away from the identity, so every tensor counts
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    model = create_model(name, 3).eval()
    result = model.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_sknet50_blocks_select_between_two_dilations():
    block = meta_model("sknet50", 4).layer2[0].conv2
    assert [p.conv.dilation for p in block.paths] == [(1, 1), (2, 2)]
    assert all(p.conv.groups == 32 and p.conv.stride == (2, 2) for p in block.paths)
    assert block.attn.fc_reduce.out_channels == 32  # max(256 / 16, 32)
    small = SelectiveKernel(64, 64, groups=32).eval()
    paths = torch.stack([path(torch.randn(2, 64, 8, 8)) for path in small.paths], dim=1)
    weights = small.attn(paths)
    assert weights.shape == (2, 2, 64, 1, 1)  # per image, path and channel, summing to 1 over paths
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 64, 1, 1))


def test_without_timm_they_build_and_checking_their_weights_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    monkeypatch.setattr(W, "_REFERENCES", {})
    for name in TIMM_LAYOUTS:
        model = create_model(name, 4)
        assert model.fc.out_features == 4
        file = tmp_path / f"{name}.pth"
        torch.save(model.state_dict(), file)
        with pytest.raises(BtcError, match=r"pip install timm") as info:
            W.import_weights(name, file)
        assert "\n" not in str(info.value)
