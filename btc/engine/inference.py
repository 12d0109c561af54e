"""Inference on new images: class probabilities and Grad-CAM overlays (`btc predict`).

The checkpoint (`checkpoint-best.pt`: state dict, the resolved `TrainConfig`, classes, task)
knows its own preprocessing. An image goes through exactly what the training images went
through:

1. **what `btc prepare` did** to the training dataset. The run's `config.yaml` names the dataset
   (`data`), whose `dataset.yaml` says which source prepared it; the source itself says how a
   new raw image is brought to the dataset's images (`btc.data.sources.new_image_step`: e.g.
   Kaggle's extreme-point crop, then the resize). Images inside the training dataset folder are
   already prepared and skip this step; when the dataset folder cannot be found the step is
   skipped with a note (nothing new is stored in checkpoints).
2. **the recipe's evaluation preprocessing**, as `btc train` evaluates its test split:
   grayscale uint8 → resize to `resize_size` with the recipe's interpolation → centre crop to
   `image_size` and normalisation, batched on the device by the `Predictor`.

Unreadable images are returned as skipped (path, reason), never dropped silently. Grad-CAM
overlays are one per image (`<stem>-gradcam-<class>.png`: the original image, at least 256 px,
under the translucent map, with a colour bar and the class in the title; `btc.models.cam`) and, for
models with CBAM spatial-attention gates in the Grad-CAM layer (resnesat's last stage), one per
gate (`<stem>-sa-<gate>.png`).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from btc.data.dataset import INTERPOLATION, decode_resized
from btc.data.images import IMAGE_SUFFIXES, ImageReadError, read_gray_uint8
from btc.data.sources import InputStep, new_image_step
from btc.engine.checkpoint import Checkpoint
from btc.engine.config import TrainConfig
from btc.engine.devices import resolve_device
from btc.engine.predictor import Predictor
from btc.io import read_yaml
from btc.runfolder import RunFolder

IMAGE_EXTENSIONS = IMAGE_SUFFIXES


# --------------------------------------------------------------------------- what prepare did


@dataclass(frozen=True)
class PrepareStep:
    """What `btc prepare` did to the training images, applied to images from outside it."""

    root: Path | None = None        # the training dataset folder, when found
    step: InputStep | None = None   # the source's own step (crop, resize)
    note: str = ""                  # why nothing is applied

    def applies_to(self, image: Path) -> bool:
        if self.root is None or self.step is None:
            return False
        try:
            image.resolve().relative_to(self.root.resolve())
        except ValueError:
            return True
        return False  # already a prepared image of the dataset

    def apply(self, gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """(prepared image, box x0, y0, x1, y1 of the original it shows)."""
        if self.step is None:
            return gray, (0, 0, gray.shape[1], gray.shape[0])
        return self.step.apply(gray)

    def describe(self) -> str:
        if self.root is None or self.step is None:
            return "none"
        return f"{self.step.describe()} (as btc prepare made {self.root})"


def prepare_step(checkpoint: Path) -> PrepareStep:
    """The run folder's config → its dataset folder → dataset.yaml → the source's step."""
    run = RunFolder(Path(checkpoint).parent)
    if not run.config_path.is_file():
        return PrepareStep(note=f"no run config next to {checkpoint}: images are not cropped")
    try:
        data = run.read_config().get("data")
    except Exception:  # noqa: BLE001 — an unreadable run config only loses the prepare step
        data = None
    if not data:
        return PrepareStep(note=f"{run.config_path} names no dataset: images are not cropped")
    root = Path(str(data))
    if not root.is_absolute() and not root.is_dir():
        root = run.path / root
    info_path = root / "dataset.yaml"
    if not info_path.is_file():
        return PrepareStep(note=f"training dataset {data} not found: cannot tell whether its images "
                                "were cropped; images are used uncropped")
    try:
        info = read_yaml(info_path) or {}
    except Exception:  # noqa: BLE001
        return PrepareStep(note=f"{info_path} is unreadable: images are used uncropped")
    return PrepareStep(root=root, step=new_image_step(info if isinstance(info, dict) else {}))


# --------------------------------------------------------------------------- inputs


def collect_images(inputs: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files as given, folders searched recursively for image extensions (sorted)."""
    images: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                skipped.append((item, f"no image ({', '.join(IMAGE_EXTENSIONS)}) in this folder"))
            images += found
        elif item.exists():
            images.append(item)
        else:
            skipped.append((item, "no such file or folder"))
    return images, skipped


def _reason(path: Path, exc: Exception) -> str:
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def load_input(path: Path, config: TrainConfig, step: PrepareStep) -> np.ndarray:
    """One image → uint8 (resize_size, resize_size), as the training images were decoded."""
    if not step.applies_to(path):
        return decode_resized(path, config.resize_size, config.interpolation)
    gray, _ = step.apply(read_gray_uint8(path))
    size = config.resize_size
    if gray.shape != (size, size):  # the remainder of decode_resized, on the prepared array
        gray = cv2.resize(gray, (size, size), interpolation=INTERPOLATION[config.interpolation])
    return gray


# --------------------------------------------------------------------------- predict


def predict_images(ck: Checkpoint, paths: list[Path], *, device: str = "cpu", batch_size: int = 32,
                   step: PrepareStep | None = None) -> tuple[list[Path], np.ndarray, list[tuple[Path, str]]]:
    """(paths read, probabilities (N, C), skipped (path, reason)) in input order."""
    step = step or PrepareStep()
    size = ck.config.resize_size

    def work(path: Path) -> np.ndarray | str:
        try:
            return load_input(path, ck.config, step)
        except (ImageReadError, OSError, cv2.error) as e:
            return _reason(path, e)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(work, paths))
    ok = [i for i, r in enumerate(results) if not isinstance(r, str)]
    skipped = [(paths[i], r) for i, r in enumerate(results) if isinstance(r, str)]
    if not ok:
        return [], np.zeros((0, len(ck.classes))), skipped
    images = torch.from_numpy(np.stack([results[i] for i in ok]).reshape(len(ok), 1, size, size))
    predictor = Predictor(ck.model, ck.config, resolve_device(device))  # btc train's evaluation path
    probs = predictor.predict(images, batch_size=batch_size)
    ck.model.cpu()
    return [paths[i] for i in ok], probs, skipped


# --------------------------------------------------------------------------- Grad-CAM


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def write_cams(ck: Checkpoint, paths: list[Path], out_dir: Path, *, device: str = "cpu",
               batch_size: int = 32, step: PrepareStep | None = None) -> list[Path]:
    """Grad-CAM overlays (and spatial-attention overlays) of `paths`, at each image's size."""
    from btc.io import atomic_write_bytes
    from btc.models import get_spec
    from btc.models.cam import attention_maps, attention_png, grad_cam, gradcam_png

    step = step or PrepareStep()
    cfg = ck.config
    dev = resolve_device(device)
    model = ck.model.to(dev).eval()
    layer = get_spec(cfg.model).cam_layer
    preprocess = Predictor(model, cfg, dev).preprocess
    margin = (cfg.resize_size - cfg.image_size) // 2
    written: list[Path] = []
    used: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        originals, boxes, inputs = [], [], []
        for path in chunk:
            gray = read_gray_uint8(path)
            prepared, box = step.apply(gray) if step.applies_to(path) else (gray, (0, 0, gray.shape[1], gray.shape[0]))
            if prepared.shape != (cfg.resize_size,) * 2:
                prepared = cv2.resize(prepared, (cfg.resize_size,) * 2, interpolation=INTERPOLATION[cfg.interpolation])
            originals.append(gray)
            boxes.append(box)
            inputs.append(prepared)
        batch = torch.from_numpy(np.stack(inputs)[:, None]).to(dev)
        x = preprocess(batch, train=False)
        with attention_maps(model, layer) as gates:
            cams, logits = grad_cam(model, layer, x)
        predicted = logits.argmax(1).cpu().tolist()
        probs = torch.softmax(logits.float(), 1).cpu().numpy()
        for i, path in enumerate(chunk):
            x0, y0, x1, y1 = boxes[i]
            sx, sy = (x1 - x0) / cfg.resize_size, (y1 - y0) / cfg.resize_size
            # the network input is the centre image_size² of the resize_size² image of the box
            region = (x0 + margin * sx, y0 + margin * sy,
                      x0 + (margin + cfg.image_size) * sx, y0 + (margin + cfg.image_size) * sy)
            stem = _safe(path.stem)
            while stem in used:
                stem += "_"
            used.add(stem)
            name = ck.classes[predicted[i]]
            pngs = {f"gradcam-{_safe(name)}": gradcam_png(originals[i], cams[i].cpu().numpy(), region, name,
                                                          float(probs[i, predicted[i]]))}
            pngs.update({f"sa-{gate_name}": attention_png(originals[i], gate[i].cpu().numpy(), region, gate_name)
                         for gate_name, gate in gates.items()})
            for tag, png in pngs.items():
                written.append(atomic_write_bytes(out_dir / f"{stem}-{tag}.png", png))
    model.cpu()
    return written
