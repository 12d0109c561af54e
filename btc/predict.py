"""`btc predict`: class probabilities (and Grad-CAM overlays) for new images.

The checkpoint (`checkpoint-best.pt`: state dict, the resolved `TrainConfig`, classes, task)
knows its own preprocessing. An image goes through exactly what the training images went
through:

1. **what `btc prepare` did** to the training dataset, read from the run folder: `config.yaml`
   next to the checkpoint names the dataset (`data`), whose `dataset.yaml` gives `source` and
   `params`. A `kaggle` dataset was cropped to the head (`btc.data.kaggle.crop_image`, the
   extreme-point crop, with the dataset's `pad`), and any dataset prepared with a `size` was
   resized to size² (`resize_square`). Images inside the training dataset folder are already
   prepared and skip this step; when the dataset folder cannot be found the step is skipped
   with a note on stderr (nothing new is stored in checkpoints).
2. **the recipe's evaluation preprocessing**, as `btc train` evaluates its test split:
   grayscale uint8 → resize to `resize_size` with the recipe's interpolation (`decode_resized`)
   → centre crop to `image_size` and normalisation (`Preprocess`), batched on the device by
   `Trainer.predict`.

Output: one line per image (`path  predicted  class=prob …`) or, with `--csv`, a CSV with
columns path, predicted, prob_<class>…. Unreadable images are reported on stderr
(`skipped PATH: reason`) and left out; the command fails only when no image could be read.
`--cam DIR` writes a Grad-CAM overlay per image (`<stem>-gradcam-<class>.png`, the original
image's size) and, for models with CBAM spatial-attention gates in the Grad-CAM layer (resnesat's
last stage), one overlay per gate (`<stem>-sa-<gate>.png`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch import nn

from btc.data.dataset import INTERPOLATION, Preprocess, decode_resized
from btc.data.images import ImageReadError, read_image, to_grayscale, to_uint8
from btc.engine.config import TrainConfig
from btc.errors import BtcError
from btc.io import atomic_write, read_yaml

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
RUN_CONFIG = "config.yaml"


# --------------------------------------------------------------------------- checkpoint


@dataclass
class Checkpoint:
    """A trained model with the config and classes it was trained with."""

    path: Path
    model: nn.Module
    config: TrainConfig
    classes: list[str]
    task: str
    epoch: int


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a `checkpoint-{best,last}.pt` of a btc run (on the CPU, in eval mode)."""
    from btc.models import create_model

    path = Path(path)
    if not path.is_file():
        raise BtcError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt / foreign file is the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BtcError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or not all(k in state for k in ("model", "config", "classes")):
        raise BtcError(f"{path} is not a btc checkpoint (needs 'model', 'config' and 'classes'; "
                       "use checkpoint-best.pt of a run folder)")
    config = TrainConfig.from_dict(dict(state["config"]))
    classes = [str(c) for c in state["classes"]]
    model = create_model(config.model, len(classes), input_size=config.image_size)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BtcError(f"{path}: weights do not fit model '{config.model}': {first}") from None
    model.eval()
    return Checkpoint(path, model, config, classes, str(state.get("task", config.task)),
                      int(state.get("epoch", -1)))


# --------------------------------------------------------------------------- what prepare did


@dataclass(frozen=True)
class PrepareStep:
    """What `btc prepare` did to the training images (applied to images from outside it)."""

    root: Path | None = None    # the training dataset folder, when found
    source: str = ""
    crop: bool = False          # the Kaggle extreme-point crop
    pad: int = 0
    size: int | None = None     # resize_square side
    note: str = ""              # why nothing is applied, for stderr

    def applies_to(self, image: Path) -> bool:
        if self.root is None or not (self.crop or self.size):
            return False
        try:
            image.resolve().relative_to(self.root.resolve())
        except ValueError:
            return True
        return False  # already a prepared image of the dataset

    def apply(self, gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """(prepared image, box x0, y0, x1, y1 of the original it shows)."""
        from btc.data.prepare_common import resize_square

        h, w = gray.shape[:2]
        box = (0, 0, w, h)
        if self.crop:
            from btc.data.kaggle import crop_image

            gray, result = crop_image(gray, self.pad)
            box = result.box
        return resize_square(gray, self.size), box

    def describe(self) -> str:
        if self.root is None:
            return "none"
        parts = (["extreme-point crop" + (f" (pad {self.pad})" if self.pad else "")] if self.crop else [])
        parts += [f"resize to {self.size}²"] if self.size else []
        return f"{', '.join(parts) or 'none'} (as btc prepare {self.source} made {self.root})"


def prepare_step(checkpoint: Path) -> PrepareStep:
    """Read the run folder's config.yaml → dataset folder → dataset.yaml (source, params)."""
    run_config = checkpoint.parent / RUN_CONFIG
    if not run_config.is_file():
        return PrepareStep(note=f"no {RUN_CONFIG} next to {checkpoint}: images are not cropped")
    try:
        data = (read_yaml(run_config) or {}).get("data")
    except Exception:  # an unreadable run config only loses the prepare step
        data = None
    if not data:
        return PrepareStep(note=f"{run_config} names no dataset: images are not cropped")
    root = Path(str(data))
    if not root.is_absolute() and not root.is_dir():
        root = checkpoint.parent / root
    info_path = root / "dataset.yaml"
    if not info_path.is_file():
        return PrepareStep(note=f"training dataset {data} not found: cannot tell whether its images "
                                "were cropped; images are used uncropped")
    info = read_yaml(info_path) or {}
    params = info.get("params") or {}
    source = str(info.get("source", ""))
    size = params.get("size")
    return PrepareStep(root=root, source=source, crop=source == "kaggle", pad=int(params.get("pad") or 0),
                       size=int(size) if isinstance(size, int) and size > 0 else None)


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
    gray, _ = step.apply(to_uint8(to_grayscale(read_image(path))))
    size = config.resize_size
    if gray.shape != (size, size):  # the remainder of decode_resized, on the prepared array
        gray = cv2.resize(gray, (size, size), interpolation=INTERPOLATION[config.interpolation])
    return gray


# --------------------------------------------------------------------------- predict


def predict_images(ck: Checkpoint, paths: list[Path], *, device: str = "cpu", batch_size: int = 32,
                   step: PrepareStep | None = None) -> tuple[list[Path], np.ndarray, list[tuple[Path, str]]]:
    """(paths read, probabilities (N, C), skipped (path, reason)) in input order."""
    from btc.engine.train import TensorSplit, Trainer, resolve_device

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
    split = TensorSplit(images=images, targets=torch.zeros(len(ok), dtype=torch.long),
                        paths=[str(paths[i]) for i in ok])
    config = dataclasses.replace(ck.config, compile=False)
    trainer = Trainer(ck.model, config, resolve_device(device))  # the exact evaluation path of btc train
    probs = trainer.predict(split, batch_size=batch_size)
    ck.model.cpu()
    return [paths[i] for i in ok], probs, skipped


def predictions_frame(paths: list[Path], probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"path": [str(p) for p in paths],
                          "predicted": [classes[i] for i in probs.argmax(1)] if len(probs) else []})
    for i, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, i] if len(probs) else []
    return frame


# --------------------------------------------------------------------------- Grad-CAM


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def write_cams(ck: Checkpoint, paths: list[Path], out_dir: Path, *, device: str = "cpu",
               batch_size: int = 32, step: PrepareStep | None = None) -> list[Path]:
    """Grad-CAM overlays (and spatial-attention overlays) of `paths`, at each image's size."""
    from btc.cam import attention_maps, grad_cam, overlay, place_map
    from btc.engine.train import resolve_device
    from btc.io import atomic_write_bytes
    from btc.models import get_spec

    step = step or PrepareStep()
    cfg = ck.config
    dev = resolve_device(device)
    model = ck.model.to(dev).eval()
    layer = get_spec(cfg.model).cam_layer
    preprocess = Preprocess.from_config(cfg)
    margin = (cfg.resize_size - cfg.image_size) // 2
    written: list[Path] = []
    used: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        originals, boxes, inputs = [], [], []
        for path in chunk:
            gray = to_uint8(to_grayscale(read_image(path)))
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
            maps = {f"gradcam-{_safe(ck.classes[predicted[i]])}": cams[i]}
            maps.update({f"sa-{name}": gate[i] for name, gate in gates.items()})
            for tag, cam in maps.items():
                heat, mask = place_map(cam.cpu().numpy(), originals[i].shape, region)
                png = cv2.imencode(".png", overlay(originals[i], heat, mask))[1].tobytes()
                written.append(atomic_write_bytes(out_dir / f"{stem}-{tag}.png", png))
    model.cpu()
    return written


# --------------------------------------------------------------------------- command


def predict_command(checkpoint: Path, inputs: list[Path], *, csv: Path | None = None,
                    cam: Path | None = None, device: str = "auto", batch_size: int = 32) -> dict[str, Any]:
    ck = load_checkpoint(checkpoint)
    step = prepare_step(Path(checkpoint))
    if step.note:
        print(f"note: {step.note}", file=sys.stderr)
    paths, skipped = collect_images(inputs)
    read, probs, unreadable = predict_images(ck, paths, device=device, batch_size=batch_size, step=step)
    skipped += unreadable
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not read:
        raise BtcError("no readable image among the inputs" if paths or skipped else "no input image")
    frame = predictions_frame(read, probs, ck.classes)
    if csv is not None:
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n", float_format="%.8g"))
        print(f"wrote {len(frame)} predictions to {csv}")
    else:
        for path, row in zip(read, probs, strict=True):
            parts = "  ".join(f"{c}={p:.4f}" for c, p in zip(ck.classes, row, strict=True))
            print(f"{path}  {ck.classes[int(row.argmax())]}  {parts}")
    written: list[Path] = []
    if cam is not None:
        written = write_cams(ck, read, Path(cam), device=device, batch_size=batch_size, step=step)
        print(f"wrote {len(written)} Grad-CAM overlays to {cam}")
    return {"paths": read, "probabilities": probs, "skipped": skipped, "cams": written, "prepare": step}
