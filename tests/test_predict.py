"""`btc predict` and Grad-CAM: real Kaggle images, a checkpoint trained here, hand-computed CAM."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tests.conftest import run_cli, shared_data

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
PER_SPLIT = {"Training": 10, "Testing": 2}  # holdout needs 10 per class for val


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small Kaggle subset (real files) → `btc prepare kaggle` (crop) → `btc train small_cnn`."""
    src_root = shared_data("kaggle-original-sample")
    tmp = tmp_path_factory.mktemp("predict")
    src = tmp / "raw"
    for split, n in PER_SPLIT.items():
        for cls in CLASSES:
            (src / split / cls).mkdir(parents=True)
            for f in sorted((src_root / split / cls).iterdir())[:n]:
                shutil.copy(f, src / split / cls / f.name)
    from btc.cli import main

    def cli(*args):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            assert not e.code, f"btc {' '.join(map(str, args))} exited {e.code}"

    data, run = tmp / "data", tmp / "run"
    cli("prepare", "kaggle", src, data, "--size", 64, "-j", 1, "-q")
    cli("train", "--data", data, "--model", "small_cnn", "--epochs", 1, "--image-size", 64,
        "--batch-size", 16, "--no-pretrained", "--device", "cpu", "-q", "--out", run)
    return src, data, run


def _original_of(prepared_rel: str, data: Path, src: Path) -> Path:
    """The raw file a prepared image came from (manifest orig_path, relative to SRC)."""
    manifest = pd.read_csv(data / "manifest.csv", keep_default_na=False).set_index("path")
    return src / manifest.loc[prepared_rel, "orig_path"]


def test_predict_matches_train_evaluation(trained, tmp_path, capsys):
    src, data, run = trained
    evaluated = pd.read_csv(run / "predictions.csv")
    originals = [_original_of(p, data, src) for p in evaluated["path"]]
    assert all(p.is_file() for p in originals)
    out_csv = tmp_path / "pred.csv"
    code, out, err = run_cli(["predict", run / "checkpoint-best.pt", *originals, "--csv", out_csv,
                              "--device", "cpu", "--batch-size", 3], capsys)
    assert code == 0, err
    got = pd.read_csv(out_csv)
    probs = got[[f"prob_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-6)
    # raw files → the same crop + resize as `btc prepare kaggle` → the same probabilities as `btc train`
    want = evaluated[[f"prob_{c}" for c in CLASSES]].to_numpy()
    assert got["path"].tolist() == [str(p) for p in originals]
    np.testing.assert_allclose(probs, want, atol=1e-5)
    assert got["predicted"].tolist() == evaluated["predicted"].tolist()
    # the prepared copies (inside the dataset: not cropped again) give the same numbers
    code, out, err = run_cli(["predict", run / "checkpoint-best.pt", data / "images" / "test", "--device", "cpu"], capsys)
    assert code == 0, err
    lines = [line.split() for line in out.strip().splitlines()]
    by_path = {Path(parts[0]).relative_to(data).as_posix(): parts for parts in lines}
    assert len(by_path) == len(evaluated)
    for _, row in evaluated.iterrows():
        parts = by_path[row["path"]]
        assert parts[1] == row["predicted"]
        shown = dict(p.split("=") for p in parts[2:])
        for c in CLASSES:
            assert abs(float(shown[c]) - row[f"prob_{c}"]) < 1e-4


def test_predict_skips_unreadable(trained, tmp_path, capsys):
    src, _, run = trained
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    good = next((src / "Testing" / "glioma").iterdir())
    code, out, err = run_cli(["predict", run / "checkpoint-best.pt", good, bad, tmp_path / "missing.jpg",
                              "--device", "cpu"], capsys)
    assert code == 0
    assert len(out.strip().splitlines()) == 1 and out.startswith(str(good))
    assert f"skipped {bad}:" in err and f"skipped {tmp_path / 'missing.jpg'}: no such file" in err
    code, out, err = run_cli(["predict", run / "checkpoint-best.pt", bad], capsys)
    assert code != 0 and "no readable image" in err


def test_cam_overlays(trained, tmp_path, capsys):
    src, _, run = trained
    images = [next((src / "Testing" / c).iterdir()) for c in ("glioma", "pituitary")]
    cams = tmp_path / "cams"
    code, out, err = run_cli(["predict", run / "checkpoint-best.pt", *images, "--cam", cams, "--device", "cpu"], capsys)
    assert code == 0, err
    for image in images:
        (png,) = cams.glob(f"{image.stem}-gradcam-*.png")
        overlay = cv2.imread(str(png), cv2.IMREAD_COLOR)
        original = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        # the image at its size (at least 256 px) with a title above and a colour bar beside it
        assert overlay.shape[0] > max(original.shape[0], 256) and overlay.shape[1] > max(original.shape[1], 256)
        assert overlay.std() > 1.0
        # the overlay is coloured (a heat map), not just the gray image
        assert np.abs(overlay[..., 2].astype(int) - overlay[..., 0].astype(int)).max() > 30


def test_predict_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "checkpoint-best.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["predict", bad, tmp_path], capsys)
    assert code == 1 and "not a readable checkpoint" in err and "\n" not in err.strip()
    code, _, err = run_cli(["predict", tmp_path / "none.pt", tmp_path], capsys)
    assert code == 1 and "checkpoint not found" in err


# --------------------------------------------------------------------------- Grad-CAM by hand


class Tiny(nn.Module):
    """conv 1→2 (3×3) → ReLU → GAP → linear 2→2: the CAM layer is `conv`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.act = nn.ReLU()
        self.fc = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def test_grad_cam_hand_computed():
    from btc.models.cam import grad_cam

    torch.manual_seed(0)
    model = Tiny().eval()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]],
                                              [[[0, 0, 0], [0, -1, 0], [0, 0, 0]]]], dtype=torch.float32))
        model.fc.weight.copy_(torch.tensor([[2.0, -1.0], [0.5, 3.0]]))
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])  # conv = identity / negation of x
    cams, logits = grad_cam(model, "conv", x)
    # by hand: A0 = x, A1 = -x; logits = W · [mean relu(x), mean relu(-x)] = W · [1, 0.5]
    assert torch.allclose(logits, torch.tensor([[1.5, 2.0]]))
    # class 1 predicted; dy/dA_k = W[1, k] · 1[A_k > 0] / 4 → α0 = 0.5·(2/4)/4, α1 = 3·(1/4)/4
    a0, a1 = x[0, 0], -x[0, 0]
    alpha0, alpha1 = 0.5 * (a0 > 0).float().mean() / 4, 3.0 * (a1 > 0).float().mean() / 4
    cam = torch.relu(alpha0 * a0 + alpha1 * a1)
    expected = (cam - cam.min()) / (cam.max() - cam.min())
    assert torch.allclose(cams[0], expected, atol=1e-6)
    # and for an explicitly chosen class (0): α0 = 2·(2/4)/4, α1 = −1·(1/4)/4 → ReLU(...)
    cams0, _ = grad_cam(model, "conv", x, target=torch.tensor([0]))
    cam0 = torch.relu(2 * 0.5 / 4 * a0 - 0.25 / 4 * a1)
    assert torch.allclose(cams0[0], (cam0 - cam0.min()) / (cam0.max() - cam0.min()), atol=1e-6)


def test_grad_cam_and_attention_maps_resnesat():
    from btc.models import create_model, get_spec
    from btc.models.cam import attention_maps, grad_cam

    torch.manual_seed(0)
    model = create_model("resnesat", 2).eval()
    layer = get_spec("resnesat").cam_layer
    x = torch.randn(1, 3, 64, 64)
    with attention_maps(model, layer) as gates:
        cams, logits = grad_cam(model, layer, x)
    assert cams.shape == (1, 2, 2) and logits.shape == (1, 2)
    assert sorted(gates) == ["layer4.0.sa", "layer4.1.sa", "layer4.2.sa"]
    assert all(g.shape == (1, 2, 2) and ((g > 0) & (g < 1)).all() for g in gates.values())


def test_prepare_step_from_run_folder(tmp_path):
    from btc.engine.inference import prepare_step
    from btc.io import atomic_write_yaml

    data, run = tmp_path / "data", tmp_path / "run"
    atomic_write_yaml(data / "dataset.yaml", {"source": "kaggle", "classes": ["a", "b"], "params": {"size": 32, "pad": 2}})
    atomic_write_yaml(run / "config.yaml", {"model": "small_cnn", "data": str(data)})
    step = prepare_step(run / "checkpoint-best.pt")
    assert not step.note and "extreme-point crop" in step.describe() and "32" in step.describe()
    assert step.applies_to(tmp_path / "new.png") and not step.applies_to(data / "images" / "x.png")
    image = np.zeros((100, 120), np.uint8)
    cv2.circle(image, (60, 50), 30, 200, -1)
    prepared, box = step.apply(image)
    assert prepared.shape == (32, 32) and box == (28, 18, 93, 83)
    (data / "dataset.yaml").unlink()
    assert prepare_step(run / "checkpoint-best.pt").note
