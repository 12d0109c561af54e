"""Typed training configuration = a paper's recipe (`recipes/*.yaml`) + command-line overrides.

The resolved `TrainConfig` is written as `config.yaml` into every run folder, so a run can be
repeated exactly and a checkpoint knows its own preprocessing (`btc predict`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from btc.errors import BtcError
from btc.io import read_yaml

RECIPES_DIR = Path(__file__).parent / "recipes"

CHOICES = {
    "interpolation": ("bilinear", "area", "nearest", "bicubic"),
    "crop": ("none", "random"),
    "normalize": ("imagenet", "unit", "standardize"),
    "optimizer": ("sgd", "adam", "adamw", "nadam"),
    "schedule": ("constant", "cosine", "step"),
    "select": ("last", "best_val"),
    "amp": ("auto", "on", "off"),
    "split": ("official", "holdout"),
    "protocol": ("paper", "leak-free"),
    "channels_last": ("auto", "on", "off"),
}


@dataclass
class TrainConfig:
    """Everything that determines a training run. Field names are the recipe's YAML keys."""

    model: str = ""
    recipe: str = ""
    paper: str = ""
    task: str = "multiclass"
    # data and preprocessing
    image_size: int = 224          # network input side
    resize_size: int = 224         # side the images are resized to (> image_size with crop: random)
    interpolation: str = "area"
    crop: str = "none"             # random: random image_size crop when training, centre crop else
    normalize: str = "imagenet"
    hflip: float = 0.0             # probabilities of a horizontal / vertical flip
    vflip: float = 0.0
    brightness: float = 0.0        # factor drawn uniformly from [1 - b, 1 + b]
    # optimisation
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_size: int = 30
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 32
    task_lr: dict[str, float] = field(default_factory=dict)  # per-task lr (paper 001)
    # splits (DESIGN.md, Protocols): `split` official = the manifest's train/test split when it
    # has one, holdout = a seeded test_fraction; `folds` = the paper's CV fold count; `protocol`
    # paper = image-level as the papers did, leak-free = patients and duplicate groups kept on
    # one side of every split
    split: str = "official"
    folds: int = 10
    protocol: str = "paper"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_column: str = "split"
    select: str = "best_val"
    # model and run
    pretrained: bool = False
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"              # CUDA only: bf16 where supported, else fp16 with a scaler
    channels_last: str = "auto"
    compile: bool = False
    deterministic: bool = False
    snapshot_every: int = 0        # also keep the weights of every N-th epoch (0: only best and last)

    def validate(self) -> TrainConfig:
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), getattr(TrainConfig(), f.name)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, (int, float)):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if ok and isinstance(default, int) and not float(value).is_integer():
                    ok = False
            elif isinstance(default, str):
                ok = isinstance(value, str)
            else:
                ok = True
            if not ok:
                raise BtcError(f"config '{f.name}' expects a finite {type(default).__name__} "
                               f"(got {value!r})")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise BtcError(f"config '{name}' must be one of {', '.join(allowed)} (got {getattr(self, name)!r})")
        positive = ("image_size", "resize_size", "epochs", "batch_size", "step_size")
        if self.folds < 2:
            raise BtcError(f"config 'folds' must be at least 2 (got {self.folds!r})")
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise BtcError(f"config '{name}' must be positive (got {getattr(self, name)!r})")
        if self.lr <= 0:
            raise BtcError(f"config 'lr' must be positive (got {self.lr!r})")
        if self.resize_size < self.image_size:
            raise BtcError(f"resize_size {self.resize_size} is smaller than image_size {self.image_size}")
        if self.crop == "none" and self.resize_size != self.image_size:
            raise BtcError("resize_size must equal image_size unless crop is 'random'")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BtcError(f"config '{name}' must be in [0, 1) (got {getattr(self, name)!r})")
        for name in ("hflip", "vflip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BtcError(f"config '{name}' is a probability in [0, 1] (got {getattr(self, name)!r})")
        if not 0.0 <= self.brightness < 1.0:
            raise BtcError(f"config 'brightness' must be in [0, 1) (got {self.brightness!r})")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BtcError(f"unknown config field(s): {', '.join(unknown)}")
        values = dict(d)
        if "betas" in values:
            values["betas"] = tuple(float(b) for b in values["betas"])
        return cls(**values)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(recipe: str) -> dict[str, Any]:
    """A recipe by name (`paper001`, …) or by path to a YAML file."""
    path = Path(recipe)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        raise BtcError(f"unknown recipe '{recipe}'; known: {', '.join(recipe_names())} (or a YAML file)")
    try:
        data = read_yaml(path) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BtcError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise BtcError(f"{path}: a recipe is a YAML mapping")
    data.setdefault("recipe", data.pop("name", path.stem))
    return data


def _coerce(name: str, value: Any, template: Any) -> Any:
    """Convert a CLI string (from `--set key=value`) to the type of the field's default."""
    if not isinstance(value, str) or isinstance(template, str):
        return value
    parsed = yaml.safe_load(value)
    if isinstance(template, bool) and not isinstance(parsed, bool):
        raise BtcError(f"config '{name}' expects true/false (got {value!r})")
    if isinstance(template, int) and not isinstance(template, bool):
        if not isinstance(parsed, int) or isinstance(parsed, bool):  # 2.7 or true is no count
            raise BtcError(f"config '{name}' expects a number, a whole one (got {value!r})")
        return parsed
    if isinstance(template, float):
        if not isinstance(parsed, (int, float)) or isinstance(parsed, bool):
            raise BtcError(f"config '{name}' expects a number (got {value!r})")
        return float(parsed)
    return parsed


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """`["lr=0.01", "vflip=0.5"]` → `{"lr": 0.01, "vflip": 0.5}` (types from TrainConfig)."""
    defaults = TrainConfig()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not hasattr(defaults, key):
            raise BtcError(f"--set expects FIELD=VALUE with a config field (got {item!r})")
        out[key] = _coerce(key, value, getattr(defaults, key))
    return out


def resolve_config(model: str, recipe: str | None = None, task: str = "multiclass",
                   overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Recipe (the model's paper by default) + task-specific lr + overrides → a valid config."""
    from btc.models import get_spec

    spec = get_spec(model)
    values = load_recipe(recipe or spec.recipe)
    values["model"] = model
    values["task"] = task
    task_lr = values.get("task_lr") or {}
    if task in task_lr:
        values["lr"] = task_lr[task]
    overrides = dict(overrides or {})
    if "image_size" in overrides and "resize_size" not in overrides:
        # keep the recipe's crop margin (e.g. 256 → 224) proportional at another size
        ratio = values.get("resize_size", overrides["image_size"]) / values.get("image_size", overrides["image_size"])
        overrides["resize_size"] = int(round(overrides["image_size"] * ratio))
    values.update(overrides)
    return TrainConfig.from_dict(values).validate()


def save_config(config: TrainConfig, path: Path, extra: dict[str, Any] | None = None) -> None:
    from btc.io import atomic_write_yaml

    atomic_write_yaml(path, {**config.to_dict(), **(extra or {})})


def read_config(path: Path) -> TrainConfig:
    data = read_yaml(path) or {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig.from_dict({k: v for k, v in data.items() if k in fields})
