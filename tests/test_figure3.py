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

import html
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm

from btc.engine.metrics import aggregate, compute_metrics
from btc.errors import BtcError
from btc.models import create_model, get_spec
from btc.models import weights as W
from btc.models.senet_sknet import SelectiveKernel
from btc.models.summary import count_params
from btc.report import papers as P
from btc.report.figure3 import BUILDERS, figure_3
from btc.report.runs import read_run
from btc.runfolder import CVFolder, CVSummary, FoldAssignment, FoldResult, Predictions, RunFolder
from tests.conftest import run_cli

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


# --------------------------------------------------------------------------- the report table


PRESENCE = ["no_tumor", "tumor"]
SOURCE = ["primary", "secondary"]
N_IMAGES = 40
FIG3_TITLE = P.PAPER_001_FIGURE_3["title"]
NO_NUMBERS = "Paper 001 prints no numbers for Fig. 3"


def write_run(folder: RunFolder, *, model: str, task: str, classes: list[str], seed: int,
              recipe: str = "paper001", deviations: tuple[str, ...] = ()) -> RunFolder:
    """A finished train run folder written through `btc.runfolder`: seeded predictions on a fixed
    test set, their metrics, a history and a config with a provenance block."""
    targets = np.arange(N_IMAGES) % len(classes)
    paths = [f"images/{classes[t]}/{i:03d}.png" for i, t in enumerate(targets)]
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N_IMAGES, len(classes)))
    logits[np.arange(N_IMAGES), targets] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    predictions = Predictions.from_probs(paths, targets, probs, classes)
    provenance = {"initial_weights": {"source": "random"}, "dataset": {"source": "phantom", "crop": "none"},
                  "protocol": "seeded hold-out, test fraction 0.2", "device": "cpu", "seed": seed,
                  "deviations": list(deviations)}
    folder.write_config({"model": model, "recipe": recipe, "task": task, "epochs": 2, "image_size": 64,
                         "seed": seed, "classes": classes, "split": "holdout", "test_fraction": 0.2,
                         "protocol": "paper", "provenance": provenance})
    folder.write_history([{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / e, "train_accuracy": 0.6 + 0.1 * e,
                           "val_loss": None, "val_accuracy": None, "seconds": 1.0} for e in (1, 2)])
    folder.write_predictions(predictions)
    folder.write_metrics(compute_metrics(predictions.targets, predictions.probs, classes))
    return folder


@pytest.fixture(scope="module")
def fig3_runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fig3-runs")
    runs = {
        "se-presence": write_run(RunFolder(base / "se-presence"), model="seresnet50", task="presence",
                                 classes=PRESENCE, seed=1),
        "sk-source": write_run(RunFolder(base / "sk-source"), model="sknet50", task="source",
                               classes=SOURCE, seed=2),
        "vgg-presence": write_run(RunFolder(base / "vgg-presence"), model="vgg16", task="presence",
                                  classes=PRESENCE, seed=3, recipe="paper003"),
        "resnest-presence": write_run(RunFolder(base / "resnest-presence"), model="resnest50", task="presence",
                                      classes=PRESENCE, seed=4, deviations=("epochs 2 (paper: 100)",)),
        "resnesat-cv": write_cv(CVFolder(base / "resnesat-cv"), model="resnesat", task="presence",
                                classes=PRESENCE, n_folds=2),
    }
    return {name: folder.path for name, folder in runs.items()}


def write_cv(cv: CVFolder, *, model: str, task: str, classes: list[str], n_folds: int) -> CVFolder:
    """A finished CV folder: `n_folds` run folders (`write_run`) and its cv.json."""
    results = [FoldResult(k, write_run(cv.fold(k), model=model, task=task, classes=classes, seed=10 + k)
                          .read_metrics()) for k in range(1, n_folds + 1)]
    paths = [f"images/{i:03d}.png" for i in range(N_IMAGES)]
    cv.write_folds(FoldAssignment(paths, np.arange(N_IMAGES) % n_folds + 1, "stratified"))
    mean, std = aggregate([r.metrics for r in results])
    cv.write_summary(CVSummary(n_folds, results, mean, std, "stratified"))
    return cv


def section(text: str, title: str) -> str:
    """The Markdown section under `## title`, up to the next `## ` heading."""
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def table_rows(md_section: str) -> dict[str, dict[str, str]]:
    """The section's table as {run: {header: cell}}."""
    lines = [ln for ln in md_section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows = [dict(zip(header, [c.strip() for c in ln.strip("|").split(" | ")], strict=True)) for ln in lines[2:]]
    for above, row in zip(rows, rows[1:], strict=False):  # a task's label is blanked below its first row
        row["Task"] = row["Task"] or above["Task"]
    return {row["Run"]: row for row in rows}


def accuracy_pct(run: Path) -> str:
    return f"{RunFolder(run).read_metrics()['accuracy'] * 100:.2f}"


def test_fig3_table_shows_btcs_values_only_in_markdown(fig3_runs, capsys):
    code, out, err = run_cli(["report", *fig3_runs.values(), "--paper", "001"], capsys)
    assert code == 0, err
    fig3 = section(out, FIG3_TITLE)
    rows = table_rows(fig3)
    assert list(rows) == ["vgg-presence", "se-presence", "resnest-presence", "sk-source"]  # the figure's order
    se = rows["se-presence"]
    assert (se["Task"], se["Network"], se["Reference"]) == ("(a) Presence", "SE-ResNet50", "[5] SENet")
    assert rows["sk-source"]["Task"] == "(b) Source" and rows["sk-source"]["Reference"] == "[6] SKNet"
    metrics = RunFolder(fig3_runs["se-presence"]).read_metrics()
    assert se["Accuracy"].startswith(accuracy_pct(fig3_runs["se-presence"]))
    assert se["Recall"].startswith(f"{metrics['per_class']['tumor']['recall'] * 100:.2f}")
    sk = RunFolder(fig3_runs["sk-source"]).read_metrics()
    assert rows["sk-source"]["Precision"].startswith(f"{sk['per_class']['primary']['precision'] * 100:.2f}")
    for row in rows.values():  # nothing published to compare with: no paper value, no difference
        for column in ("Accuracy", "Recall", "Specificity", "Precision", "F1-score"):
            assert "(paper –)" in row[column] and "Δ" not in row[column], row[column]
    assert NO_NUMBERS in fig3
    # protocol: the conforming run, a run with deviations, a run of another paper's recipe
    assert se["Protocol"] == "paper's protocol"
    assert rows["resnest-presence"]["Protocol"].startswith("not the paper's protocol")
    assert rows["vgg-presence"]["Protocol"].startswith("not the paper's protocol")
    assert "epochs 2 (paper: 100)" in fig3 and "recipe paper003" in fig3
    assert ("(b) Source: no run given for VGG16, ResNet50, ResNeXt50 32x4d, DenseNet121, SE-ResNet50, ResNeSt-50, "
            "ResNeSAt.") in fig3
    # a CV is not Fig. 3's single split: it fills Table III, and every run is in a table of paper 001
    assert "Not in Fig. 3 (a CV, not one 80/20 split): resnesat-cv." in fig3
    assert "resnesat-cv" in section(out, "Table III. Presence or absence of tumor model")
    assert "is in none of paper 001's tables" not in out


def test_fig3_table_renders_in_html_with_its_note(fig3_runs, capsys, tmp_path):
    out_file = tmp_path / "report.html"
    code, _, err = run_cli(["report", *fig3_runs.values(), "--paper", "001", "--format", "html",
                            "--out", out_file], capsys)
    assert code == 0, err
    page = out_file.read_text()
    assert f"<h2>{html.escape(FIG3_TITLE)}</h2>" in page
    fig3 = page[page.index(html.escape(FIG3_TITLE)):]
    fig3 = fig3[:fig3.index("<h2>", 1)]
    assert html.escape(NO_NUMBERS) in fig3
    for name in fig3_runs:
        assert (f"<td>{name}</td>" in fig3) == (name != "resnesat-cv")
    assert accuracy_pct(fig3_runs["sk-source"]) in fig3 and "Δ" not in fig3


def test_fig3_builder_skips_cvs_and_keeps_tables_iii_and_iv(fig3_runs):
    runs = [read_run(path) for path in fig3_runs.values()]
    tables, left = BUILDERS["001"](runs)
    assert [t.key for t in tables] == ["001-fig3", "001-III", "001-IV"]
    assert left == []
    figure, shown = figure_3(runs)
    assert {r.name for r in shown} == set(fig3_runs) - {"resnesat-cv"}
    assert [row.run for row in figure.rows] == ["vgg-presence", "se-presence", "resnest-presence", "sk-source"]
    assert all(c.paper is None for row in figure.rows for c in row.cells)
    empty, shown = figure_3([])
    assert empty.rows == [] and shown == []
    assert any(NO_NUMBERS in note for note in empty.notes)
