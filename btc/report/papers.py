"""The published numbers of the papers' tables, as data (DESIGN.md: never inside a test's expectation).

Every value is transcribed as the paper prints it; `unit` says whether a table prints fractions
(0.9733) or percentages (97.33). `btc report --paper` converts both to percentages with two
decimals (kappa and loss stay plain numbers). Class keys are btc's class names (`glioma`,
`meningioma`, `notumor`, `pituitary`; paper 001's presence task `tumor` / `no_tumor`), metric keys
are `metrics.json`'s (`precision`, `recall`, `specificity`, `f1`, `accuracy`, `kappa`, `loss`).
Rows are keyed by btc's registered model names; `MODEL_LABELS` gives the papers' names for them.

The papers (../shared/papers/):
- 001 ResNeSAt (presence and source of tumour; Ruijin Hospital data; ten-fold CV), §IV; its Fig. 3
  (§III-B, an 80/20 baseline comparison) prints no numbers and is described, not transcribed.
- 002 DSConv-CBAM vs MobileNetV2 vs MLP (Kaggle Brain Tumor MRI Dataset, official split), §4.2.
- 003 improved ResNet34 (Figshare + no-tumour images, 4 classes), §3.4.
- 004 ResNet18 transfer learning (Kaggle dataset, extreme-point crop), §III.
"""

from __future__ import annotations

from typing import Any

PAPERS = ("001", "002", "003", "004")

# The names the papers give btc's models (row labels of the rendered tables).
MODEL_LABELS: dict[str, str] = {
    "resnest50": "ResNeSt",
    "resnesat": "ResNeSAt",
    "mlp": "MLP",
    "mobilenet_v2": "MobileNetV2",
    "dsconv_cbam": "DSConv-CBAM",
    "resnet34": "ResNet34",
    "resnet34_a": "ResNet34 + A",
    "resnet34_b": "ResNet34 + B",
    "resnet34_c": "ResNet34 + C",
    "resnet34_improved": "ResNet34 + A + B + C",
    "vgg16": "Vgg16",
    "resnet50": "ResNet50",
    "resnext101": "ResNext101",
    "googlenet": "GoogleNet",
    "efficientnet_v2_s": "EfficientNet V2",
    "densenet121": "DenseNet",
    "resnet18_transfer": "ResNet18 (transfer)",
}

# Display names of btc's classes, in the papers' spelling.
CLASS_LABELS: dict[str, str] = {
    "glioma": "Glioma",
    "meningioma": "Meningioma",
    "notumor": "No tumor",
    "pituitary": "Pituitary",
    "tumor": "Tumor",
    "no_tumor": "No tumor",
    "primary": "Primary",
    "secondary": "Secondary",
    "average": "Average",
}

METRIC_LABELS: dict[str, str] = {
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "f1": "F1-score",
    "accuracy": "Accuracy",
    "kappa": "Kappa",
    "loss": "Loss",
    "train_accuracy": "Train accuracy",
    "train_loss": "Train loss",
}

# --------------------------------------------------------------------------- paper 001
# Tables III and IV, §IV "Experimental results" (p. 3 of the paper): averages over the ten test
# folds of a ten-fold cross-validation. Binary tasks: recall, specificity, precision and F1 are
# those of the positive class (`positive`: the tumour / the primary-tumour class).
PAPER_001: dict[str, Any] = {
    "unit": "fraction",
    "columns": ("recall", "specificity", "precision", "f1", "accuracy"),
    "tables": {
        "III": {
            "title": "Table III. Presence or absence of tumor model",
            "where": "paper 001, §IV, Table III",
            "task": "presence",
            "positive": "tumor",
            "rows": {
                "resnest50": {"recall": 0.9733, "specificity": 0.9772, "precision": 0.9803,
                              "f1": 0.9768, "accuracy": 0.9751},
                "resnesat": {"recall": 0.9864, "specificity": 0.9981, "precision": 0.9983,
                             "f1": 0.9923, "accuracy": 0.9918},
            },
        },
        "IV": {
            "title": "Table IV. Source of tumor model (primary or secondary)",
            "where": "paper 001, §IV, Table IV",
            "task": "source",
            "positive": "primary",
            "rows": {
                "resnest50": {"recall": 0.7927, "specificity": 0.8684, "precision": 0.8718,
                              "f1": 0.8304, "accuracy": 0.8283},
                "resnesat": {"recall": 0.8212, "specificity": 0.8480, "precision": 0.8591,
                             "f1": 0.8397, "accuracy": 0.8338},
            },
        },
    },
}

# Fig. 3 "Baseline Comparison. (a) Presence or absence of tumor, (b) Source of tumor", §III-B
# "Existing Classification Networks Comparison" (p. 2): the test accuracy of the networks of refs.
# [1]-[7], trained on 80 % of the images and tested on the other 20 %. The figure is a chart with no
# printed values and the text gives none, only its reading (`finding`): no number is transcribed,
# and a report shows btc's values alone. The references name families, not depths; `networks` maps
# btc's member of each family to the reference it stands for (ResNeSAt, the proposed network of
# §III-C, is not among the baselines: btc shows it beside them).
PAPER_001_FIGURE_3: dict[str, Any] = {
    "title": "Fig. 3. Baseline comparison on an 80/20 split (btc's values only)",
    "where": "paper 001, §III-B, Fig. 3: a chart, no values printed",
    "recipe": "paper001",
    "test_fraction": 0.2,
    "panels": {
        "a": {"task": "presence", "positive": "tumor", "label": "(a) Presence"},
        "b": {"task": "source", "positive": "primary", "label": "(b) Source"},
    },
    "networks": {  # btc model: (btc's network, the reference it stands for)
        "vgg16": ("VGG16", "[1] VGG"),
        "resnet50": ("ResNet50", "[2] ResNet"),
        "resnext50": ("ResNeXt50 32x4d", "[3] ResNeXt"),
        "densenet121": ("DenseNet121", "[4] DenseNet"),
        "seresnet50": ("SE-ResNet50", "[5] SENet"),
        "sknet50": ("SKNet-50", "[6] SKNet"),
        "resnest50": ("ResNeSt-50", "[7] ResNeSt"),
        "resnesat": ("ResNeSAt", "proposed (§III-C)"),
    },
    "finding": "ResNeSt (the red line) does best on both tasks; on the source of tumour most networks "
               "cannot separate the classes.",
}

# --------------------------------------------------------------------------- paper 002
# Table 3 "Test results of different models", §4.2 "Testing results": Kaggle Testing set
# (1311 images). Kappa and accuracy are printed once per model (two decimals). "Average" is the
# weighted average (§4.2: "the lowest weighted average across other metrics").
# `accuracy_text`: the same accuracies with two more digits, §4.4 "Discussion" ("97.41%, 96.72%,
# and 89.47%"); the report shows these (percent) in the Accuracy column.
PAPER_002: dict[str, Any] = {
    "unit": "fraction",
    "title": "Table 3. Test results of different models",
    "where": "paper 002, §4.2, Table 3 (accuracy: §4.4)",
    "classes": ("pituitary", "notumor", "meningioma", "glioma"),
    "columns": ("precision", "recall", "f1", "specificity"),
    "average": "weighted",
    "rows": {
        "mlp": {
            "kappa": 0.86, "accuracy": 0.89,
            "per_class": {
                "pituitary": {"precision": 0.96, "recall": 0.98, "f1": 0.97, "specificity": 0.99},
                "notumor": {"precision": 0.89, "recall": 1.00, "f1": 0.94, "specificity": 1.00},
                "meningioma": {"precision": 0.89, "recall": 0.68, "f1": 0.77, "specificity": 0.91},
                "glioma": {"precision": 0.84, "recall": 0.89, "f1": 0.86, "specificity": 0.97},
                "average": {"precision": 0.90, "recall": 0.89, "f1": 0.89, "specificity": 0.97},
            },
        },
        "mobilenet_v2": {
            "kappa": 0.96, "accuracy": 0.97,
            "per_class": {
                "pituitary": {"precision": 0.97, "recall": 0.99, "f1": 0.98, "specificity": 1.00},
                "notumor": {"precision": 1.00, "recall": 1.00, "f1": 1.00, "specificity": 1.00},
                "meningioma": {"precision": 0.91, "recall": 0.97, "f1": 0.94, "specificity": 0.99},
                "glioma": {"precision": 0.99, "recall": 0.91, "f1": 0.94, "specificity": 0.97},
                "average": {"precision": 0.97, "recall": 0.97, "f1": 0.97, "specificity": 0.99},
            },
        },
        "dsconv_cbam": {
            "kappa": 0.97, "accuracy": 0.97,
            "per_class": {
                "pituitary": {"precision": 0.98, "recall": 1.00, "f1": 0.99, "specificity": 1.00},
                "notumor": {"precision": 0.99, "recall": 1.00, "f1": 1.00, "specificity": 1.00},
                "meningioma": {"precision": 0.94, "recall": 0.95, "f1": 0.95, "specificity": 0.99},
                "glioma": {"precision": 0.97, "recall": 0.94, "f1": 0.95, "specificity": 0.98},
                "average": {"precision": 0.97, "recall": 0.97, "f1": 0.97, "specificity": 0.99},
            },
        },
    },
    # §4.4 Discussion, percent.
    "accuracy_text": {"dsconv_cbam": 97.41, "mobilenet_v2": 96.72, "mlp": 89.47},
}

# --------------------------------------------------------------------------- paper 003
# §3.4 "Experimental results". All values in percent. A = Inception-v2 downsampling,
# B = multi-scale input, C = SE attention; btc's resnet34_a/_b/_c/_improved (models 2, 3, 4, 5).
# Table 3's "Average" is the plain (macro) mean of the four classes (checked: model 1 precision
# (98.18 + 94.06 + 100 + 96.28) / 4 = 97.13); Tables 4 and 5 are read as macro averages too.
PAPER_003: dict[str, Any] = {
    "unit": "percent",
    # Table 2 "Model's average test accuracy" (model number, modules, accuracy %).
    "table2": {
        "title": "Table 2. Model's average test accuracy (ablation)",
        "where": "paper 003, §3.4, Table 2",
        "rows": {
            "resnet34": {"model": 1, "modules": "", "accuracy": 97.71},
            "resnet34_a": {"model": 2, "modules": "A", "accuracy": 98.33},
            "resnet34_b": {"model": 3, "modules": "B", "accuracy": 98.22},
            "resnet34_c": {"model": 4, "modules": "C", "accuracy": 98.28},
            "resnet34_improved": {"model": 5, "modules": "A B C", "accuracy": 98.82},
        },
    },
    # Table 3 "Average evaluation index of each model %" (per class and average).
    "table3": {
        "title": "Table 3. Average evaluation index of each model (%)",
        "where": "paper 003, §3.4, Table 3",
        "classes": ("glioma", "meningioma", "notumor", "pituitary"),
        "columns": ("precision", "recall", "specificity", "f1"),
        "average": "macro",
        "rows": {
            "resnet34": {
                "glioma": {"precision": 98.18, "recall": 98.25, "specificity": 99.15, "f1": 98.21},
                "meningioma": {"precision": 94.06, "recall": 93.9, "specificity": 98.89, "f1": 93.97},
                "notumor": {"precision": 100, "recall": 99.3, "specificity": 100, "f1": 99.65},
                "pituitary": {"precision": 96.28, "recall": 97.31, "specificity": 99.02, "f1": 96.79},
                "average": {"precision": 97.13, "recall": 97.19, "specificity": 99.27, "f1": 97.16},
            },
            "resnet34_a": {
                "glioma": {"precision": 97.92, "recall": 99.12, "specificity": 99.02, "f1": 98.52},
                "meningioma": {"precision": 96.08, "recall": 95.74, "specificity": 99.27, "f1": 95.91},
                "notumor": {"precision": 100, "recall": 99.48, "specificity": 100, "f1": 99.74},
                "pituitary": {"precision": 98.1, "recall": 97.31, "specificity": 99.51, "f1": 97.71},
                "average": {"precision": 98.03, "recall": 97.91, "specificity": 99.45, "f1": 97.97},
            },
            "resnet34_b": {
                "glioma": {"precision": 98.94, "recall": 98.42, "specificity": 99.51, "f1": 98.68},
                "meningioma": {"precision": 94.41, "recall": 95.75, "specificity": 98.95, "f1": 95.07},
                "notumor": {"precision": 100, "recall": 99.83, "specificity": 100, "f1": 99.91},
                "pituitary": {"precision": 97.31, "recall": 97.31, "specificity": 99.3, "f1": 97.31},
                "average": {"precision": 97.67, "recall": 97.83, "specificity": 99.44, "f1": 97.74},
            },
            "resnet34_c": {
                "glioma": {"precision": 98.44, "recall": 99.12, "specificity": 99.1, "f1": 98.6},
                "meningioma": {"precision": 96.09, "recall": 95.75, "specificity": 99.27, "f1": 95.92},
                "notumor": {"precision": 100, "recall": 98.95, "specificity": 100, "f1": 99.47},
                "pituitary": {"precision": 97.59, "recall": 97.85, "specificity": 99.37, "f1": 97.72},
                "average": {"precision": 98.03, "recall": 97.92, "specificity": 99.44, "f1": 97.93},
            },
            "resnet34_improved": {
                "glioma": {"precision": 97.93, "recall": 98.88, "specificity": 99.74, "f1": 99.16},
                "meningioma": {"precision": 96.12, "recall": 97.87, "specificity": 99.26, "f1": 96.98},
                "notumor": {"precision": 100, "recall": 99.79, "specificity": 100, "f1": 99.9},
                "pituitary": {"precision": 97.95, "recall": 97.74, "specificity": 99.47, "f1": 97.85},
                "average": {"precision": 98.33, "recall": 98.57, "specificity": 99.62, "f1": 98.47},
            },
        },
    },
    # Table 4 "The average evaluation metric of the five-fold cross-validation of the improved
    # network": folds 1–5 (btc's fold-1 … fold-5, the same numbering) and their average.
    "table4": {
        "title": "Table 4. Five-fold cross-validation of the improved network (%)",
        "where": "paper 003, §3.4, Table 4",
        "model": "resnet34_improved",
        "columns": ("accuracy", "precision", "recall", "specificity", "f1"),
        "folds": {
            1: {"accuracy": 99, "precision": 98.64, "recall": 98.84, "specificity": 99.67, "f1": 98.74},
            2: {"accuracy": 98.67, "precision": 98.15, "recall": 98.58, "specificity": 99.59, "f1": 98.35},
            3: {"accuracy": 98.89, "precision": 98.58, "recall": 98.62, "specificity": 99.65, "f1": 98.6},
            4: {"accuracy": 98.67, "precision": 98.17, "recall": 98.44, "specificity": 99.59, "f1": 98.3},
            5: {"accuracy": 98.89, "precision": 98.54, "recall": 98.62, "specificity": 99.65, "f1": 98.58},
        },
        "average": {"accuracy": 98.82, "precision": 98.42, "recall": 98.62, "specificity": 99.63, "f1": 98.51},
    },
    # Table 5 "The average evaluation index of other classification networks after improvement".
    "table5": {
        "title": "Table 5. Other classification networks (%)",
        "where": "paper 003, §3.4, Table 5",
        "columns": ("accuracy", "precision", "recall", "specificity", "f1"),
        "rows": {
            "vgg16": {"accuracy": 95.77, "precision": 95.59, "recall": 94.41, "specificity": 98.55, "f1": 94.93},
            "resnet50": {"accuracy": 97.88, "precision": 97.96, "recall": 96.99, "specificity": 99.27, "f1": 97.4},
            "resnext101": {"accuracy": 98.22, "precision": 97.79, "recall": 97.83, "specificity": 99.43, "f1": 97.8},
            "googlenet": {"accuracy": 97.66, "precision": 97.24, "recall": 96.66, "specificity": 99.23, "f1": 97.1},
            "efficientnet_v2_s": {"accuracy": 98.22, "precision": 97.9, "recall": 97.56, "specificity": 99.41,
                                  "f1": 97.72},
            "densenet121": {"accuracy": 98.22, "precision": 98.06, "recall": 97.69, "specificity": 99.4, "f1": 97.87},
            "resnet34_improved": {"accuracy": 98.82, "precision": 98.42, "recall": 98.62, "specificity": 99.63,
                                  "f1": 98.51},
        },
        "labels": {"resnet34_improved": "Ours (ResNet34 + A + B + C)"},
    },
}

# --------------------------------------------------------------------------- paper 004
# §III-A "First experiment" (SGD, lr 1e-3, momentum 0.9, 24 epochs): training accuracy and loss
# 0.9984 and 0.0055, testing accuracy and loss 0.9925 and 0.0378. §III-B "Other experiments"
# (NAdam, lr 1e-3): testing accuracy 0.9931, testing loss 0.03446 (no training values given).
# Rows are keyed by btc's recipes for resnet18_transfer, paper004 (SGD) and paper004-nadam; runs
# are matched to them by their optimiser.
PAPER_004: dict[str, Any] = {
    "unit": "fraction",
    "title": "Test accuracy and loss per optimiser (ResNet18 transfer learning)",
    "where": "paper 004, §III-A (SGD) and §III-B (NAdam)",
    "model": "resnet18_transfer",
    "columns": ("accuracy", "loss", "train_accuracy", "train_loss"),
    "rows": {
        "paper004": {"label": "SGD (lr 1e-3, momentum 0.9)", "optimizer": "sgd", "lr": 1e-3,
                     "accuracy": 0.9925, "loss": 0.0378, "train_accuracy": 0.9984, "train_loss": 0.0055},
        "paper004-nadam": {"label": "NAdam (lr 1e-3)", "optimizer": "nadam", "lr": 1e-3,
                           "accuracy": 0.9931, "loss": 0.03446},
    },
}

PUBLISHED: dict[str, dict[str, Any]] = {"001": PAPER_001, "002": PAPER_002, "003": PAPER_003, "004": PAPER_004}


def to_percent(value: float | None, unit: str) -> float | None:
    """A published rate in percent, whether the paper prints fractions or percentages."""
    if value is None:
        return None
    return float(value) * 100.0 if unit == "fraction" else float(value)
