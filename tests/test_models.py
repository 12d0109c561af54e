"""Model zoo: btc's own models train on CPU; the torchvision baselines have their head and size;
the papers' structural claims hold; the ResNet skeleton keeps its state-dict layout; `btc models`.

CPU only, 64 px inputs, batch 2; no test touches the network (ImageNet weights: test_weights.py,
against a local server). The torchvision baselines are checked on the meta device (construction, head,
parameters, MACs against torchvision's published figures) instead of a training step that would
re-test torchvision; one of them (resnet18) still takes a real step.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm

from btc.errors import BtcError
from btc.models import create_model, get_spec, list_models, load_weights
from btc.models.baselines import TORCHVISION_BASELINES
from btc.models.layers import CBAM, SeparableConv2d, SpatialAttention, SplitAttn, SqueezeExcite
from btc.models.resnesat import ResNeSt, ResNeStBottleneck
from btc.models.resnet34_improved import BasicBlock, InceptionDownsample, ResNet34Improved
from btc.models.resnet_base import ResNet
from btc.models.summary import (
    FLOPS_PER_MAC,
    count_params,
    flops_per_image,
    summarize,
    summarize_models,
)
from tests.conftest import run_cli

torch.set_num_threads(2)

DESIGN_NAMES = {
    "resnesat", "resnest50", "dsconv_cbam", "mobilenet_v2", "mlp", "resnet34_improved",
    "resnet34", "resnet34_a", "resnet34_b", "resnet34_c", "resnet18_transfer", "resnet18",
    "resnet50", "vgg16", "resnext101", "googlenet", "efficientnet_v2_s", "densenet121",
}
SIZE = 64


def meta_model(name: str, num_classes: int = 4, **kwargs) -> torch.nn.Module:
    """A model on the meta device: structure and parameter counts without memory or init cost."""
    with torch.device("meta"):
        return create_model(name, num_classes, **kwargs)


def params(name: str, num_classes: int = 4) -> int:
    return count_params(meta_model(name, num_classes))[0]


# --------------------------------------------------------------------------- registry


def test_registry_has_design_names_and_recipes():
    assert DESIGN_NAMES <= set(list_models())
    recipes = {
        "paper001": {"resnesat", "resnest50"},
        "paper002": {"dsconv_cbam", "mobilenet_v2", "mlp"},
        "paper004": {"resnet18_transfer"},
    }
    for name in sorted(DESIGN_NAMES):
        spec = get_spec(name)
        expected = next((r for r, names in recipes.items() if name in names), "paper003")
        assert spec.recipe == expected, name
        assert spec.input_size == {"001": 256}.get(spec.paper, 224), name
        assert spec.description, name


def test_unknown_model_is_one_line_btc_error():
    with pytest.raises(BtcError, match=r"unknown model 'nope'; known: resnesat") as info:
        create_model("nope", 4)
    assert "\n" not in str(info.value)
    with pytest.raises(BtcError):
        get_spec("resnet35")


# --------------------------------------------------------------------------- training step


# btc's own models and wrappers, plus one plain torchvision network as the representative
TRAINED_HERE = [n for n in list_models() if n not in TORCHVISION_BASELINES] + ["resnet18"]
HEAVY = {"resnesat", "resnest50", "resnet34_improved", "resnet34_a", "resnet34_b", "resnet34_c",
         "seresnet50", "sknet50", "resnext50"}  # > 5 s on 2 cores
TRAINED_HERE = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in TRAINED_HERE]


@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("name", TRAINED_HERE)
def test_forward_backward(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes, input_size=SIZE)
    model.train()
    cam = {}  # the Grad-CAM layer exists and gives a spatial map
    hook = model.get_submodule(get_spec(name).cam_layer).register_forward_hook(
        lambda mod, inputs, output: cam.setdefault("out", output))
    x = torch.randn(2, 3, SIZE, SIZE)
    logits = model(x)
    hook.remove()
    assert logits.shape == (2, num_classes)
    assert cam["out"].ndim == 4 and cam["out"].shape[0] == 2
    loss = F.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


# --------------------------------------------------------------------------- torchvision baselines


@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("name", list(TORCHVISION_BASELINES))
def test_torchvision_baseline_head_parameters_and_cam_layer(name, num_classes):
    baseline = TORCHVISION_BASELINES[name]
    model = meta_model(name, num_classes)
    head = model.get_submodule(baseline.head)
    assert isinstance(head, torch.nn.Linear) and head.out_features == num_classes
    # torchvision's published count is for its 1000-class head (GoogLeNet: without aux heads)
    published = baseline.weights.IMAGENET1K_V1.meta["num_params"]
    total, trainable = count_params(model)
    assert total == trainable == published - (1000 - num_classes) * (head.in_features + 1)
    cam = {}
    model.get_submodule(get_spec(name).cam_layer).register_forward_hook(
        lambda mod, inputs, output: cam.setdefault("out", output))
    logits = model(torch.zeros(2, 3, 224, 224, device="meta"))
    assert logits.shape == (2, num_classes) and cam["out"].ndim == 4


@pytest.mark.parametrize("name", list(TORCHVISION_BASELINES))
def test_macs_match_torchvision_published_gflops(name):
    # torchvision's "GFLOPS" (`_ops`) are multiply-adds, at each network's evaluation crop
    weights = TORCHVISION_BASELINES[name].weights.IMAGENET1K_V1
    size = weights.transforms().crop_size[0]
    flops = flops_per_image(meta_model(name, 1000), size)
    assert flops % FLOPS_PER_MAC == 0
    assert flops / FLOPS_PER_MAC / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.005)


# --------------------------------------------------------------------------- transfer models


@pytest.mark.parametrize("name, head", [
    ("resnet18_transfer", {"fc.weight", "fc.bias"}),
    ("mobilenet_v2", {"fc1.weight", "fc1.bias", "fc.weight", "fc.bias"}),
])
def test_transfer_models_train_only_their_head(name, head):
    model = create_model(name, 4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == head
    total, n_trainable = count_params(model)
    assert n_trainable == sum(p.numel() for n, p in model.named_parameters() if n in head)
    assert n_trainable < total / 10


def test_mobilenet_v2_frozen_backbone_stays_in_eval_mode():
    model = create_model("mobilenet_v2", 4).train()
    assert model.training and not model.features.training
    assert not any(m.training for m in model.features.modules())


# --------------------------------------------------------------------------- layers


def test_spatial_attention_map_in_unit_interval():
    torch.manual_seed(0)
    x = torch.randn(3, 16, 9, 11)
    for gate in (SpatialAttention(7, norm=True).eval(), SpatialAttention(5, norm=False)):
        m = gate(x)
        assert m.shape == (3, 1, 9, 11)
        assert (m > 0).all() and (m < 1).all()


def test_resnesat_has_an_sa_gate_in_every_bottleneck_giving_unit_maps():
    model = create_model("resnesat", 2).eval()
    gates = {n: m for n, m in model.named_modules() if isinstance(m, SpatialAttention)}
    assert len(gates) == 3 + 4 + 6 + 3
    assert all(n.endswith(".sa") for n in gates)
    maps = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: maps.__setitem__(n, o))
             for n, m in gates.items()]
    with torch.no_grad():
        model(torch.randn(2, 3, SIZE, SIZE))
    for h in hooks:
        h.remove()
    assert maps["layer1.0.sa"].shape == (2, 1, SIZE // 4, SIZE // 4)
    assert maps["layer4.2.sa"].shape == (2, 1, SIZE // 32, SIZE // 32)
    for out in maps.values():
        assert out.shape[:2] == (2, 1) and (out > 0).all() and (out < 1).all()


def test_layer_shapes_and_parameters():
    x = torch.randn(2, 32, 16, 16)
    assert SqueezeExcite(32, 16)(x).shape == x.shape
    assert CBAM(32, 16, 5, spatial_norm=False)(x).shape == x.shape
    sep = SeparableConv2d(32, 64, 3)  # Keras SeparableConv2D: k·k·M + M·N + N
    assert sum(p.numel() for p in sep.parameters()) == 9 * 32 + 32 * 64 + 64
    assert sep(x).shape == (2, 64, 14, 14)
    assert SeparableConv2d(32, 64, 3, padding="same")(x).shape == (2, 64, 16, 16)
    sa = SplitAttn(64, 64, radix=2)
    assert sa(torch.randn(2, 64, 8, 8)).shape == (2, 64, 8, 8)
    assert sa.conv.groups == 2 and sa.conv.out_channels == 128 and sa.fc1.out_channels == 32


# --------------------------------------------------------------------------- weights


@pytest.fixture(scope="module")
def timm_resnest_file(tmp_path_factory):
    timm = pytest.importorskip("timm", reason="timm not installed (pip install -e '.[dev]')")
    torch.manual_seed(0)
    ref = timm.create_model("resnest50d", pretrained=False).eval()
    path = tmp_path_factory.mktemp("timm") / "resnest50d.pth"
    torch.save(ref.state_dict(), path)
    return ref, path


def test_timm_resnest50d_state_dict_loads_into_resnest50(timm_resnest_file):
    ref, path = timm_resnest_file
    model = create_model("resnest50", 1000).eval()
    report = load_weights(model, path, strict=True)
    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-4)
    # a 4-class model keeps its new head and loads everything else
    report = load_weights(create_model("resnest50", 4), path)
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.mismatched) == ["fc.bias", "fc.weight"]


def test_timm_resnest50d_state_dict_loads_into_resnesat_but_the_gates(timm_resnest_file):
    _, path = timm_resnest_file
    report = load_weights(create_model("resnesat", 4), path)
    assert report.unexpected == []
    assert report.missing and all(".sa." in k for k in report.missing)
    assert len({k.split(".sa.")[0] for k in report.missing}) == 16
    assert sorted(report.mismatched) == ["fc.bias", "fc.weight"]


def test_load_weights_reports_a_mismatched_head(tmp_path):
    torch.manual_seed(0)
    source = create_model("mlp", 2)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)  # a btc checkpoint
    target = create_model("mlp", 4)
    report = load_weights(target, path)
    assert report.mismatched == ["fc.weight", "fc.bias"]
    assert report.missing == [] and report.unexpected == []
    assert torch.equal(target.hidden[0].weight, source.hidden[0].weight)
    assert target.fc.weight.shape == (4, 128)
    assert "mismatched" in report.summary() and "\n" not in report.summary()
    with pytest.raises(BtcError, match="do not match"):
        load_weights(create_model("mlp", 4), path, strict=True)
    # raw state dict with a DataParallel prefix, through create_model(weights=...)
    raw = tmp_path / "raw.pt"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, raw)
    model = create_model("mlp", 2, weights=raw)
    assert model.weights_report.missing == [] and model.weights_report.mismatched == []
    assert torch.equal(model.fc.weight, source.fc.weight)


def test_load_weights_user_errors_are_one_line(tmp_path):
    model = create_model("mlp", 2)
    with pytest.raises(BtcError, match="weights file not found"):
        load_weights(model, tmp_path / "missing.pt")
    with pytest.raises(BtcError, match="weights file not found"):
        create_model("mlp", 2, weights=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint\nsecond line\n")
    with pytest.raises(BtcError, match="is not a weights file") as info:
        load_weights(model, junk)
    assert "\n" not in str(info.value)
    not_sd = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_sd)
    with pytest.raises(BtcError, match="not a state dict"):
        load_weights(model, not_sd)


# ImageNet weights (caches, downloads, offline, import): tests/test_weights.py


# --------------------------------------------------------------------------- papers' figures


def test_resnesat_gates_add_a_few_thousand_parameters():
    # paper 001: ResNeSt 97.45 MB, ResNeSAt 97.46 MB (0.01 MB ≈ 2,600 float32 parameters)
    extra = params("resnesat") - params("resnest50")
    assert 0 < extra < 10_000
    assert extra == 16 * (2 * 7 * 7 + 2)  # 7×7 conv (2 → 1, no bias) + BN per bottleneck


def test_resnest50_size_matches_paper_001():
    # paper 001 reports 97.45 MB for its 2-class ResNeSt; float32 parameters in MiB are within
    # 0.5 % of it (the rest is the BN statistics and the file format: see resnesat.py)
    size_mib = params("resnest50", 2) * 4 / 2**20
    assert abs(size_mib - 97.45) / 97.45 < 0.005


@pytest.mark.parametrize("name, paper_params", [("resnet34", 21.3e6),
                                                ("resnet34_improved", 17.3e6)])
def test_resnet34_parameter_counts_match_paper_003(name, paper_params):
    # paper 003 §3.4 states one decimal in millions (4-class head): ±0.05 M is its rounding
    assert abs(params(name, 4) - paper_params) <= 0.05e6


def test_resnet34_ablations_are_single_module_changes():
    base = params("resnet34")
    a, b, c = params("resnet34_a"), params("resnet34_b"), params("resnet34_c")
    full = params("resnet34_improved")
    assert a < base < b and base < c  # A removes parameters, B and C add a few
    assert full == pytest.approx(a + (b - base) + (c - base), rel=0.01)


def test_resnet34_improved_layout_follows_figure_2():
    model = meta_model("resnet34_improved")
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert type(model.layer2[0]).__name__ == "InceptionDownsample"  # + 3, 5, 2 basic blocks
    x = torch.randn(1, 3, 224, 224, device="meta")
    assert model.forward_features(x).shape == (1, 512, 7, 7)


def test_dsconv_cbam_follows_paper_002_with_valid_padding():
    model = meta_model("dsconv_cbam")  # built for the paper's 224 px input
    assert model.fc1.in_features == 26 * 26 * 128 and model.fc1.out_features == 128
    small = create_model("dsconv_cbam", 4, input_size=SIZE)
    with pytest.raises(BtcError, match="built for 64"):
        small(torch.randn(1, 3, 96, 96))


# --------------------------------------------------------------------------- ResNet skeleton

# 4-class heads: the counts of the hand-rolled networks the skeleton replaced (issue 13)
SKELETON_PARAMS = {
    "resnesat": 25_444_036, "resnest50": 25_442_436, "resnet34_improved": 17_344_408,
    "resnet34_a": 17_181_924, "resnet34_b": 21_331_972, "resnet34_c": 21_447_920,
}


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """State-dict keys, in order, with their shapes."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", SKELETON_PARAMS)
def test_skeleton_builds_the_papers_resnets_with_unchanged_parameter_counts(name):
    model = meta_model(name)
    assert isinstance(model, ResNet)
    assert count_params(model)[0] == SKELETON_PARAMS[name]
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    block = ResNeStBottleneck if isinstance(model, ResNeSt) else BasicBlock
    assert all(isinstance(b, block | InceptionDownsample)
               for i in range(1, 5) for b in getattr(model, f"layer{i}"))


def test_skeleton_shortcuts_and_initialisation():
    resnest = create_model("resnest50", 4)  # avg-down shortcuts, residual branches start at zero
    assert isinstance(resnest.layer1[0].downsample[0], torch.nn.Identity)
    assert isinstance(resnest.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert all(torch.all(b.bn3.weight == 0) for b in resnest.modules()
               if isinstance(b, ResNeStBottleneck))
    resnet = create_model("resnet34_c", 4)  # torchvision: strided 1×1 conv, BN at identity
    assert resnet.layer2[0].downsample[0].stride == (2, 2)
    assert resnet.layer1[0].downsample is None
    assert all(torch.all(b.bn2.weight == 1) for b in resnet.modules() if isinstance(b, BasicBlock))


def test_skeleton_without_paper_003_modules_is_torchvision_resnet34():
    torch.manual_seed(0)
    ref = tvm.resnet34(num_classes=4).eval()
    model = ResNet34Improved(4, inception_down=False, multiscale_stem=False, se=False).eval()
    assert shapes(model) == shapes(ref) and list(shapes(model)) == list(shapes(ref))
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))
    assert shapes(meta_model("resnet34")) == shapes(ref)  # the registered baseline


def test_paper_003_ablations_change_only_their_modules_keys():
    base = shapes(meta_model("resnet34"))
    c = shapes(meta_model("resnet34_c"))  # + SE (fc1, fc2, with biases) in all 16 basic blocks
    se = [k for k in c if ".se." in k]
    assert len(se) == 16 * 4 and {k: v for k, v in c.items() if k not in se} == base
    b = shapes(meta_model("resnet34_b"))  # the multi-scale stem instead of conv1 / bn1
    stem = [k for k in b if k.startswith("stem.")]
    assert stem and {k: v for k, v in b.items() if k not in stem} == {
        k: v for k, v in base.items() if not k.startswith(("conv1.", "bn1."))}
    a = shapes(meta_model("resnet34_a"))  # Inception modules instead of layer{2,3,4}.0
    first = ("layer2.0.", "layer3.0.", "layer4.0.")
    assert all(".branch" in k for k in a if k.startswith(first))
    assert {k: v for k, v in a.items() if not k.startswith(first)} == {
        k: v for k, v in base.items() if not k.startswith(first)}


def test_resnest_keys_are_timm_resnest50d_keys_plus_the_gates():
    timm = pytest.importorskip("timm", reason="timm not installed (pip install -e '.[dev]')")
    with torch.device("meta"):
        ref = timm.create_model("resnest50d", pretrained=False, num_classes=4)
    plain = shapes(meta_model("resnest50"))
    assert list(plain.items()) == list(shapes(ref).items())
    gated = shapes(meta_model("resnesat"))
    gates = [k for k in gated if ".sa." in k]  # conv, BN (weight, bias, 3 buffers) × 16
    assert len(gates) == 16 * 6 and {k: v for k, v in gated.items() if k not in gates} == plain


# --------------------------------------------------------------------------- summary / CLI


def test_summarize_figures():
    row = summarize("resnet34_improved")
    assert row.params == row.trainable_params == params("resnet34_improved")
    assert row.size_mib == pytest.approx(row.params * 4 / 2**20, abs=1e-3)
    assert row.size_mb == pytest.approx(row.params * 4 / 1e6, abs=1e-3)
    assert row.state_mib > row.size_mib
    assert row.input_size == 224 and row.paper == "003" and row.macs > 1e9
    assert row.flops == 2 * row.macs
    frozen = summarize("resnet18_transfer")
    assert frozen.trainable_params == 512 * 4 + 4
    assert frozen.macs / 1e9 == pytest.approx(1.81, abs=0.01)  # torchvision: "1.81 GFLOPS"


def test_summarize_models_returns_rows_and_prints_nothing(capsys):
    rows = summarize_models(["mlp", "small_cnn"])
    assert [r.name for r in rows] == ["mlp", "small_cnn"]
    assert capsys.readouterr() == ("", "")
    with pytest.raises(BtcError, match="unknown model 'bogus'"):
        summarize_models(["mlp", "bogus"])


def test_flops_per_image_counts_a_linear_layer():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).train()
    assert flops_per_image(model, 8) == FLOPS_PER_MAC * 3 * 8 * 8 * 10
    assert model.training


def test_models_json_is_the_only_stdout(capsys):
    code, out, err = run_cli(["models", "--json", "--models", "resnesat,resnest50"], capsys)
    assert code == 0 and err == ""
    rows = json.loads(out)  # the whole of stdout is one JSON document
    assert [r["name"] for r in rows] == ["resnesat", "resnest50"]
    for key in ("name", "paper", "params", "size_mib", "state_mib", "trainable_params",
                "size_mb", "input_size", "macs", "flops"):
        assert key in rows[0], key
    assert rows[0]["input_size"] == 256 and rows[0]["paper"] == "001"
    assert rows[0]["params"] == SKELETON_PARAMS["resnesat"]
    assert all(r["flops"] == 2 * r["macs"] > 0 for r in rows)
    code, out, err = run_cli(["models", "--json", "--models", "resnesat,bogus"], capsys)
    assert code != 0 and out == "" and "unknown model 'bogus'" in err


def test_models_cli_table_labels_macs_and_flops(capsys):
    code, out, _ = run_cli(["models", "--models", "mlp,resnet18"], capsys)
    assert code == 0 and "resnet18" in out and "mlp" in out
    assert "GMACs" in out and "GFLOPs" in out and "(2×MACs)" in out
    resnet18 = next(line for line in out.splitlines() if line.startswith("resnet18"))
    assert resnet18.split()[-2:] == ["1.81", "3.63"]  # GMACs, GFLOPs
