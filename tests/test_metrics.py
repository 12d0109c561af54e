"""Metrics against scikit-learn on hand-made predictions, including specificity."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from btc.engine.metrics import aggregate, compute_metrics

CLASSES = ["glioma", "meningioma", "notumor"]


def _probs(pred, n_classes=3, confidence=0.8):
    p = np.full((len(pred), n_classes), (1 - confidence) / (n_classes - 1))
    p[np.arange(len(pred)), pred] = confidence
    return p


def test_agrees_with_sklearn_and_hand_specificity():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2, 1])
    probs = _probs(pred)
    m = compute_metrics(y, probs, CLASSES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert m["macro"]["f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["weighted"]["precision"] == pytest.approx(precision_score(y, pred, average="weighted"))
    assert m["per_class"]["meningioma"]["recall"] == pytest.approx(recall_score(y, pred, average=None)[1])
    assert m["auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    # specificity by hand: glioma (0) negatives are the 7 non-glioma images; one (index 7) predicted 0
    assert m["per_class"]["glioma"]["specificity"] == pytest.approx(6 / 7)
    # notumor (2): negatives are 6 images; index 4 predicted 2 → 5/6
    assert m["per_class"]["notumor"]["specificity"] == pytest.approx(5 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert [m["per_class"][c]["support"] for c in CLASSES] == [3, 3, 4]


def test_binary_auc_and_perfect():
    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    m = compute_metrics(y, probs, ["a", "b"])
    assert m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["kappa"] == 1.0
    assert m["macro"]["specificity"] == 1.0


def test_aggregate_mean_and_std():
    y = np.array([0, 1, 2, 0])
    a = compute_metrics(y, _probs(np.array([0, 1, 2, 0])), CLASSES)
    b = compute_metrics(y, _probs(np.array([0, 1, 2, 1])), CLASSES)
    mean, std = aggregate([a, b])
    assert mean["accuracy"] == pytest.approx(0.875)
    assert std["accuracy"] == pytest.approx(np.std([1.0, 0.75], ddof=1))
    assert mean["per_class"]["glioma"]["recall"] == pytest.approx(0.75)
    assert "confusion_matrix" not in mean and "classes" not in mean
