"""The figures a user looks at (issue 18.7): learning curves, ROC, confusion matrix
(`btc/report/plots.py`) and the Grad-CAM / spatial-attention overlays (`btc/models/cam.py`).

- a one-epoch learning curve has whole-epoch ticks (it had 0.945 … 1.050), validation drawn
  apart from training, loss from 0 and accuracy from 0 to 1;
- a class at AUC 0.5 does not hide the chance diagonal (drawn over the curves);
- an overlay is translucent (the image shows through where the map is low), carries a colour
  bar and names the class; a flat attention map is called uniform on a 0-to-1 scale.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from btc.models.cam import (
    OVERLAY_ALPHA,
    PANEL_MIN,
    attention_png,
    attention_scale,
    gradcam_png,
    gradcam_title,
    heat_layer,
)
from btc.report.plots import confusion_matrix_png, learning_curves_figure, roc_figure
from btc.runfolder import Predictions

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def history(epochs: int, val: bool = True) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "lr": 1e-3 * 0.5 ** (e // 3), "train_loss": 1.4 / e, "train_accuracy": 1 - 0.7 / e,
                         "val_loss": 1.5 / e if val else np.nan, "val_accuracy": 1 - 0.8 / e if val else np.nan,
                         "seconds": 1.0})


def test_one_epoch_has_whole_epoch_ticks_and_validation_apart():
    fig = learning_curves_figure([("", history(1))], title="one epoch")
    loss, accuracy, lr = fig.axes
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks == [1.0], ticks
    labels = [line.get_label() for line in loss.get_lines()]
    assert labels == ["train", "validation"]
    train, val = loss.get_lines()
    assert train.get_marker() != val.get_marker() and val.get_linestyle() == "--"  # apart with one point
    assert loss.get_ylim()[0] == 0 and accuracy.get_ylim() == (0, 1.02)
    assert lr.get_ylim()[0] == 0  # a constant rate on a linear axis from 0


def test_folds_overlay_and_a_decaying_rate_is_logarithmic():
    fig = learning_curves_figure([(f"fold-{k}", history(8)) for k in (1, 2, 3)])
    loss, _, lr = fig.axes
    assert all(float(t).is_integer() for t in loss.get_xticks()) and loss.get_xlim() == (0.5, 8.5)
    assert len(loss.get_lines()) == 6  # train and validation per fold
    assert lr.get_yscale() == "linear"  # 1e-3 → 1.25e-4: less than a decade
    long = history(12)
    long["lr"] = 1e-3 * 0.1 ** (long["epoch"] // 5)
    assert learning_curves_figure([("", long)]).axes[2].get_yscale() == "log"


def test_no_validation_split_is_said():
    fig = learning_curves_figure([("", history(3, val=False))])
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train"]
    assert "no validation split" in [t.get_text() for t in fig.axes[1].texts]


def _predictions(auc_half: bool) -> Predictions:
    rng = np.random.default_rng(0)
    targets = np.arange(200) % 4
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), targets] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if auc_half:
        probs[:, 0] = 0.25  # glioma's score says nothing: its ROC is the diagonal, AUC 0.5
    return Predictions.from_probs([str(i) for i in range(200)], targets, probs, CLASSES)


def test_chance_diagonal_is_drawn_over_a_class_at_auc_one_half():
    fig = roc_figure(_predictions(auc_half=True))
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "glioma (AUC 0.500)" in lines
    chance = lines["chance (AUC 0.5)"]
    assert list(chance.get_xdata()) == [0, 1] and list(chance.get_ydata()) == [0, 1]
    assert chance.get_zorder() > max(line.get_zorder() for name, line in lines.items() if name != chance.get_label())
    assert chance.get_color() not in [line.get_color() for name, line in lines.items() if name.startswith("glioma")]


def test_confusion_matrix_has_a_colour_bar(tmp_path):
    path = confusion_matrix_png([[30, 10], [5, 45]], ["a", "b"], tmp_path / "cm.png")
    assert cv2.imread(str(path)) is not None


def test_heat_layer_is_translucent_and_leaves_low_values_clear():
    heat = np.linspace(0, 1, 11, dtype=np.float32)[None].repeat(3, 0)
    mask = np.ones_like(heat, bool)
    mask[2] = False
    rgba = heat_layer(heat, mask)
    assert rgba[0, 0, 3] == 0 and np.isclose(rgba[0, -1, 3], OVERLAY_ALPHA) and OVERLAY_ALPHA < 1
    assert np.all(np.diff(rgba[0, :, 3]) > 0)  # opacity grows with the value
    assert np.all(rgba[2, :, 3] == 0)  # outside the mask: the image only


def _image(size: int = 64) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return (np.hypot(x - size / 2, y - size / 2) < size / 3).astype(np.uint8) * 150


def test_gradcam_figure_is_the_image_with_a_colour_bar_and_the_class():
    image = _image()
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1.0
    png = cv2.imdecode(np.frombuffer(gradcam_png(image, cam, (0, 0, 64, 64), "glioma", 0.93), np.uint8),
                       cv2.IMREAD_COLOR)
    assert png.shape[0] > PANEL_MIN and png.shape[1] > PANEL_MIN + 40  # enlarged image + title, colour bar
    coloured = np.abs(png[..., 2].astype(int) - png[..., 0].astype(int)) > 40
    assert coloured.any() and coloured.mean() < 0.5  # the map where it is high (and the bar), not everywhere
    assert gradcam_title(cam, "glioma", 0.93) == "Grad-CAM of class 'glioma' (p = 0.93)"
    assert "all zero" in gradcam_title(np.zeros((4, 4)), "glioma")


def test_attention_scale_names_a_flat_map_uniform():
    flat = np.full((2, 2), 0.5, np.float32) + np.float32(1e-7) * np.arange(4).reshape(2, 2)
    title, low, high = attention_scale(flat, "layer4.0.sa")
    assert (low, high) == (0.0, 1.0) and title == "spatial attention layer4.0.sa\nuniform: 0.500 everywhere"
    varied = np.array([[0.2, 0.4], [0.6, 0.9]], np.float32)
    title, low, high = attention_scale(varied, "layer4.1.sa")
    assert (low, high) == (np.float32(0.2), np.float32(0.9)) and title.endswith("values 0.200 to 0.900")
    png = attention_png(_image(), varied, (0, 0, 64, 64), "layer4.1.sa")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
