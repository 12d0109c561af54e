"""Synthetic MRI-like axial slices: the embedded dataset of `btc demo` and the tests.

Each synthetic patient has a head (ellipse of smooth textured parenchyma inside a bright skull
ring, two dark ventricles) at a random position, size and tilt on a black background with random
margins, so the extreme-point crop has work to do. Its class decides the lesion, drawn in every
slice of that patient with some jitter:

- glioma: an irregular intra-parenchymal mass (union of blobs): bright rim, dark necrotic core,
  darker oedema around it;
- meningioma: a round, homogeneous extra-axial mass touching the inner skull;
- pituitary: a small bright midline mass low in the head (the sella);
- notumor: none.

Lesion contrast, size and noise vary, so a small CNN learns the classes but not trivially:
`btc demo`'s small CNN reaches about 0.9 accuracy on held-out patients (phantom/v2; v1's fainter
glioma, drawn without a dark core and oedema, left it near 0.45).
Everything is drawn from `numpy.random.default_rng(seed)`: the same seed gives byte-identical
images and manifest. The slices are written as generated, so a new image needs no step but
grayscale uint8 (`input_step` → `Identity`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from btc import __version__
from btc.data.images import encode_png, phash64, pixel_sha256
from btc.data.manifest import split_counts
from btc.data.prepare.finishing import PrepareSummary
from btc.data.prepare.staging import Stage
from btc.io import atomic_write_bytes
from btc.progress import SILENT, Progress

from .input_step import Identity

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
TASKS = {"presence": {"tumor": ["glioma", "meningioma", "pituitary"], "no_tumor": ["notumor"]},
         "tumor_type": {"glioma": ["glioma"], "meningioma": ["meningioma"], "pituitary": ["pituitary"]}}


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Low-frequency texture in about [-1, 1]."""
    coarse = rng.standard_normal((max(2, int(size / scale)),) * 2).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _ellipse_mask(size: int, center: tuple[float, float], axes: tuple[float, float], angle: float) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.ellipse(mask, (round(center[0]), round(center[1])), (max(1, round(axes[0])), max(1, round(axes[1]))),
                angle, 0, 360, 255, -1, lineType=cv2.LINE_AA)
    return mask.astype(np.float32) / 255.0


def _patient(rng: np.random.Generator, size: int, label: str) -> dict[str, Any]:
    """The fixed anatomy of one synthetic patient (in pixels of a size×size slice)."""
    scale = rng.uniform(0.55, 0.8)                                    # head size → random margins
    ax, ay = size * scale / 2 * rng.uniform(0.8, 0.92), size * scale / 2
    margin_x, margin_y = size / 2 - ax, size / 2 - ay
    cx = size / 2 + rng.uniform(-0.8, 0.8) * margin_x
    cy = size / 2 + rng.uniform(-0.8, 0.8) * margin_y
    p = {"center": (cx, cy), "axes": (ax, ay), "angle": rng.uniform(-12, 12),
         "brightness": rng.uniform(0.75, 1.0), "label": label}
    if label == "glioma":
        r, t = rng.uniform(0.15, 0.5), rng.uniform(0, 2 * math.pi)
        p["lesion"] = (cx + r * ax * math.cos(t), cy + r * ay * math.sin(t))
        p["radius"] = size * rng.uniform(0.09, 0.13)
        p["blobs"] = rng.uniform(-1, 1, (5, 3))
    elif label == "meningioma":
        t = rng.uniform(0, 2 * math.pi)
        p["radius"] = size * rng.uniform(0.07, 0.11)
        inner = 0.9  # inner skull edge, then moved inwards by the radius so it touches the skull
        p["lesion"] = (cx + (inner * ax - p["radius"]) * math.cos(t), cy + (inner * ay - p["radius"]) * math.sin(t))
    elif label == "pituitary":
        p["radius"] = size * rng.uniform(0.045, 0.065)
        p["lesion"] = (cx + rng.uniform(-0.04, 0.04) * ax, cy + rng.uniform(0.35, 0.5) * ay)
    return p


def render_slice(rng: np.random.Generator, size: int, p: dict[str, Any]) -> np.ndarray:
    """One uint8 slice of patient `p`, with per-slice jitter of anatomy, lesion and noise."""
    (cx, cy), (ax, ay), angle = p["center"], p["axes"], p["angle"]
    j = rng.uniform(0.95, 1.05)                                           # slice level: head size
    ax, ay = ax * j, ay * j
    head = _ellipse_mask(size, (cx, cy), (ax, ay), angle)
    brain = _ellipse_mask(size, (cx, cy), (ax * 0.88, ay * 0.9), angle)
    skull = np.clip(head - brain, 0, 1)
    image = 0.08 * head                                                   # scalp
    image += skull * rng.uniform(0.75, 0.95)                              # bright skull ring
    parenchyma = 0.42 + 0.06 * _smooth_noise(rng, size, 10) + 0.03 * _smooth_noise(rng, size, 3)
    image = image * (1 - brain) + brain * parenchyma
    for side in (-1, 1):                                                  # ventricles (dark)
        v = _ellipse_mask(size, (cx + side * ax * 0.12, cy - ay * 0.05), (ax * 0.07, ay * 0.22), angle + side * 12)
        image = image * (1 - 0.6 * v)
    if p["label"] != "notumor":
        image = _draw_lesion(rng, size, image, brain if p["label"] != "meningioma" else head, p)
    image = image * p["brightness"] + head * rng.normal(0, 0.035, (size, size))
    image = np.clip(image, 0, 1) * head                                   # black background
    return np.round(image * 255).astype(np.uint8)


def _draw_lesion(rng, size, image, region, p) -> np.ndarray:
    lx, ly = p["lesion"]
    lx, ly = lx + rng.normal(0, size * 0.006), ly + rng.normal(0, size * 0.006)
    r = p["radius"] * rng.uniform(0.85, 1.15)
    contrast = rng.uniform(0.3, 0.45)
    if p["label"] == "glioma":  # ring-enhancing: bright irregular rim, dark necrotic core, dark oedema around
        mask = np.zeros((size, size), np.float32)
        for dx, dy, dr in p["blobs"]:
            mask = np.maximum(mask, _ellipse_mask(size, (lx + dx * r * 0.6, ly + dy * r * 0.6),
                                                  (r * (0.6 + 0.3 * dr), r * (0.5 + 0.3 * abs(dy))), 45 * dx))
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, r * 0.12)) * region
        core = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(r * 0.3)))
        rim = np.clip(mask - core, 0, 1)
        oedema = cv2.GaussianBlur(mask, (0, 0), r * 0.6) * region
        texture = 0.8 + 0.2 * _smooth_noise(rng, size, 4)
        return image - 0.12 * oedema + 1.1 * contrast * rim * texture - 0.8 * contrast * core
    mask = _ellipse_mask(size, (lx, ly), (r, r * rng.uniform(0.85, 1.0)), rng.uniform(0, 180))
    mask = cv2.GaussianBlur(mask, (0, 0), 0.8) * region
    gain = contrast * (1.2 if p["label"] == "pituitary" else 1.0)
    return image * (1 - mask) + mask * np.clip(image + gain + 0.45 * mask, 0, 1)


def generate(per_class: int = 40, size: int = 128, per_patient: int = 4, seed: int = 0,
             test_fraction: float = 0.2):
    """Yield (relative path, label, patient id, split, uint8 image), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        n_patients = math.ceil(per_class / per_patient)
        n_test = round(n_patients * test_fraction)
        test_ids = set(rng.choice(n_patients, size=n_test, replace=False).tolist()) if n_test else set()
        for i in range(per_class):
            k, s = divmod(i, per_patient)
            if s == 0:
                patient_rng = np.random.default_rng([seed, CLASSES.index(label), k])
                patient = _patient(patient_rng, size, label)
            pid = f"{label[:2]}{k:04d}"
            split = "test" if k in test_ids else "train"
            image = render_slice(patient_rng, size, patient)
            yield f"images/{label}/{pid}_{s}.png", label, f"phantom-{pid}", split, image


def input_step(info: dict[str, Any]) -> Identity:
    """Phantom slices are generated at their final size: a new image is only made grayscale uint8."""
    return Identity()


def prepare_phantom(out: str | Path, *, per_class: int = 40, size: int = 128, per_patient: int = 4,
                    seed: int = 0, test_fraction: float = 0.2, progress: Progress = SILENT) -> PrepareSummary:
    """Write the phantom dataset as a prepared dataset (images/, manifest.csv, dataset.yaml).

    Written like every prepare (`btc.data.prepare.staging.Stage`): in a staging folder swapped
    into `out` at the end, so an interrupted run leaves no half dataset, and an existing `out` is
    replaced only when it is a dataset btc prepared that holds nothing else.
    """
    started = time.monotonic()
    params = {"per_class": per_class, "size": size, "per_patient": per_patient, "seed": seed,
              "test_fraction": test_fraction}
    stage = Stage(out, source="phantom", params={**params, "method": "phantom/v2"})
    try:
        rows = []
        total = per_class * len(CLASSES)
        with progress.bar("phantom", total) as advance:
            for rel, label, pid, split, image in generate(per_class, size, per_patient, seed, test_fraction):
                atomic_write_bytes(stage.path(rel), encode_png(image))
                rows.append({"path": rel, "label": label, "split": split, "patient_id": pid, "source": "phantom",
                             "orig_path": "", "height": size, "width": size,
                             "sha256": pixel_sha256(image), "phash": phash64(image)})
                advance()
        manifest = pd.DataFrame(rows)
        counts = split_counts(manifest)
        stage.commit(manifest, {
            "name": "phantom",
            "source": "phantom",
            "classes": list(CLASSES),
            "tasks": TASKS,
            "provenance": {"generator": "btc.data.sources.phantom", "btc_version": __version__},
            "command": "btc prepare phantom " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in params.items()),
            "params": params,
            "counts": counts,
        }, keys=[])
    finally:
        stage.close()
    return PrepareSummary(out=stage.out, source="phantom", images=len(rows), classes=list(CLASSES), counts=counts,
                          seconds=time.monotonic() - started)
