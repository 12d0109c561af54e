"""ImageNet weights the way torchvision and timm get them, into their caches, online or offline.

Papers 001 (ResNeSAt: ResNeSt-50d), 002 (MobileNetV2) and 004 (ResNet18) start from ImageNet
weights (issue 14). The registry names each model's source (`ModelSpec.pretrained`):

- `torchvision:<Enum>.<MEMBER>`, e.g. `torchvision:ResNet18_Weights.IMAGENET1K_V1`: the file of
  torchvision's weight enum in the torch hub cache (`$TORCH_HOME/hub/checkpoints/`, by default
  `~/.cache/torch/hub/checkpoints/`) under torchvision's own name, `resnet18-f37072fd.pth`, whose
  suffix is the start of the file's sha256 (what `torch.hub`'s `check_hash` compares). btc uses
  `IMAGENET1K_V1`, the weights torchvision's `pretrained=True` gave when the papers were written.
- `timm:<model>.<tag>`, e.g. `timm:resnest50d.in1k`: timm's Hugging Face repository
  `timm/<model>.<tag>`, file `model.safetensors` (or `pytorch_model.bin`), in the Hugging Face hub
  cache (`$HF_HUB_CACHE`, or `$HF_HOME/hub`, by default `~/.cache/huggingface/hub`), where a file's
  blob is named by the sha256 the hub publishes for it (its LFS etag). Downloads go through
  `huggingface_hub`, so `HF_ENDPOINT` selects a mirror; timm itself checks the shapes.
- None: the paper trains the model from scratch.

A download is checked against the published hash and deleted on a mismatch. A file already in a
cache, or imported with `btc weights import`, is accepted when its tensors have the names and
shapes of the source network (torchvision's or timm's, built on the meta device), and recorded
with its sha256; the record is `verified` only when that sha256 matches the published one.
`--offline` / `BTC_OFFLINE=1` refuse the network: the weights must then be in the cache, else
`WeightsUnavailable` names the command that gets them. Loading copies every tensor whose name and
shape match the btc model; the others (a new classifier, paper 001's attention gates, paper 003's
new modules) keep their initialisation, and the record counts both.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from btc.download import Checksum, DownloadError, download, file_digest, offline_reason
from btc.errors import BtcError
from btc.io import atomic_write
from btc.models.registry import get_spec, list_models, load_weights, torch_load_weights
from btc.progress import SILENT, Progress

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightsUnavailable(BtcError):
    """Pretrained weights were asked for and cannot be had: not cached and offline, the download
    failed or did not match its published hash. The message names the command that fixes it."""


@dataclass(frozen=True)
class WeightsRecord:
    """The initial weights of a run, for its provenance.

    `source`: the registry's source (`torchvision:…`, `timm:…`) or `file` for `--weights FILE`;
    `file`: the file read; `sha256`: its hash; `verified`: the hash matches `published`, the hash
    its publisher gives (torchvision's file-name prefix, the hub's etag; None when unknown);
    `loaded` / `kept`: tensors copied into the model / model tensors left at their initialisation
    (None when the weights were fetched or imported but not loaded into a model).
    """

    source: str
    file: str
    sha256: str
    verified: bool
    published: str | None = None
    loaded: int | None = None
    kept: int | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """One line: source, file name, hash and whether it is verified."""
        check = "verified" if self.verified else (
            "unverified: no published hash" if self.published is None
            else f"unverified: published {self.published}")
        text = f"{self.source} ({Path(self.file).name}, sha256 {self.sha256[:12]}…, {check})"
        if self.loaded is not None:
            text += f"; loaded {self.loaded} tensors, {self.kept} kept at initialisation"
        return text


@dataclass(frozen=True)
class WeightsStatus:
    """One row of `btc weights list`: a model, its source, and whether the file is cached."""

    model: str
    source: str | None
    cache: str | None
    file: str | None
    cached: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------- state dicts


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a `.safetensors` file or a `torch.save` file (`weights_only=True`)."""
    if _is_safetensors(path):
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 — a cut safetensors file is the user's to fix
            raise BtcError(f"cannot read weights from {path}: {str(exc).splitlines()[0][:120]}") from None
    obj = torch_load_weights(path)
    if (not isinstance(obj, Mapping) or not obj
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise BtcError(f"{path} is not a state dict (a mapping of names to tensors)")
    return dict(obj)


def _is_safetensors(path: Path) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30)


def _check_shapes(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Size],
                  path: Path, source: str) -> None:
    """Refuse a file whose tensors are not those of the source network (names and shapes)."""

    def counted(key: str) -> bool:  # old checkpoints predate BatchNorm's counter
        return not key.endswith("num_batches_tracked")

    missing = [k for k in reference if counted(k) and k not in state]
    unexpected = [k for k in state if counted(k) and k not in reference]
    reshaped = [k for k in reference if counted(k) and k in state
                and tuple(state[k].shape) != tuple(reference[k])]
    if missing or unexpected or reshaped:
        parts = [f"{len(keys)} {label} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
                 for label, keys in (("missing tensors", missing), ("unexpected tensors", unexpected),
                                     ("tensors of another shape", reshaped)) if keys]
        raise BtcError(f"{path} does not hold the weights of {source}: {'; '.join(parts)}")


def _load_matching(model: nn.Module, state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """Copy the tensors of `state` whose name and shape match `model`; (loaded, kept initial)."""
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return len(keep), len(own) - len(keep)


def _meta_state_shapes(build) -> dict[str, torch.Size]:
    """Names and shapes of the state dict of `build()`, built on the meta device (no memory)."""
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return {k: v.shape for k, v in build().state_dict().items()}


# --------------------------------------------------------------------------- sources


class _Source:
    """Where one source's file lives, how it is downloaded, read and checked."""

    source: str
    cache: str  # the cache's name, for messages

    def location(self) -> Path:
        """The cached file's path, or the folder it will be in."""
        raise NotImplementedError

    def cached(self) -> Path | None:
        raise NotImplementedError

    def published(self, path: Path) -> str | None:
        """The publisher's hash (or prefix) for the cached `path`; None when unknown."""
        raise NotImplementedError

    def download(self, progress: Progress) -> Path:
        raise NotImplementedError

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        return _read_state_dict(path)

    def reference(self) -> dict[str, torch.Size]:
        raise NotImplementedError

    def install(self, file: Path, sha256: str) -> Path:
        """Copy a checked local file into the cache under the name the library looks for."""
        raise NotImplementedError


# DenseNet checkpoints published before torchvision renamed `norm.1` to `norm1` (torchvision's
# own loader applies the same rename).
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


class _Torchvision(_Source):
    cache = "torch hub cache"

    def __init__(self, name: str) -> None:
        from torchvision.models import get_weight

        self.source = f"torchvision:{name}"
        try:
            self.weights = get_weight(name)
        except (ValueError, KeyError, AttributeError):
            raise BtcError(f"unknown torchvision weights {name!r}") from None
        self.url = self.weights.url
        self.filename = Path(urlparse(self.url).path).name
        found = torch.hub.HASH_REGEX.search(self.filename)
        self.prefix = found.group(1) if found else None

    def location(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / self.filename

    def cached(self) -> Path | None:
        path = self.location()
        return path if path.is_file() else None

    def published(self, path: Path) -> str | None:
        return self.prefix

    def download(self, progress: Progress) -> Path:
        path = self.location()
        download(self.url, path, checksum=Checksum("sha256", self.prefix) if self.prefix else None,
                 progress=progress, description=f"downloading {self.filename}")
        return path

    def read(self, path: Path) -> dict[str, torch.Tensor]:
        state = _read_state_dict(path)
        return {_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}

    def reference(self) -> dict[str, torch.Size]:
        import torchvision.models as tvm

        for name in tvm.list_models(module=tvm):
            if tvm.get_model_weights(name) is type(self.weights):
                return _meta_state_shapes(partial(tvm.get_model, name, weights=None))
        raise BtcError(f"no torchvision network for {self.source}")

    def install(self, file: Path, sha256: str) -> Path:
        return atomic_write(self.location(), lambda tmp: shutil.copyfile(file, tmp))


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, as `huggingface_hub` resolves it, read at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


class _Timm(_Source):
    cache = "Hugging Face hub cache"
    FILES = ("model.safetensors", "pytorch_model.bin")  # the order timm looks for them
    IMPORTED = "0" * 40  # the snapshot of a file btc imported: no hub commit is known for it

    def __init__(self, name: str) -> None:
        self.source = f"timm:{name}"
        self.name = name
        self.repo = f"timm/{name}"

    def location(self) -> Path:
        return hf_hub_cache() / f"models--{self.repo.replace('/', '--')}"

    def _snapshot(self) -> Path | None:
        """The snapshot folder `refs/main` points to (the hub cache's layout), if any."""
        ref = self.location() / "refs" / "main"
        if not ref.is_file():
            return None
        return self.location() / "snapshots" / ref.read_text().strip()

    def cached(self) -> Path | None:
        snapshot = self._snapshot()
        for name in self.FILES if snapshot else ():
            if (snapshot / name).is_file():
                return snapshot / name
        return None

    def published(self, path: Path) -> str | None:
        if path.parent.name == self.IMPORTED:
            return None
        blob = Path(os.path.realpath(path)).name  # the hub's etag: the sha256 of an LFS file
        return blob if _SHA256.match(blob) else None

    def download(self, progress: Progress) -> Path:
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise BtcError("timm weights are downloaded with huggingface_hub: "
                           "pip install timm (the btc extra 'timm')") from None
        try:
            path = Path(hf_hub_download(
                self.repo, self.FILES[0], cache_dir=hf_hub_cache(),
                endpoint=os.environ.get("HF_ENDPOINT") or None, tqdm_class=_hub_bars(progress)))
        except (OSError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DownloadError(f"cannot download {self.repo}/{self.FILES[0]} from the Hugging "
                                f"Face hub: {reason}") from None
        published = self.published(path)
        if published and file_digest(path) != published:
            blob = Path(os.path.realpath(path))
            path.unlink()
            blob.unlink(missing_ok=True)
            raise DownloadError(f"{self.repo}/{self.FILES[0]}: sha256 does not match the "
                                f"published {published}; the download was deleted")
        return path

    def reference(self) -> dict[str, torch.Size]:
        try:
            import timm
        except ImportError:
            raise BtcError(f"{self.source} weights are checked against timm's network: "
                           "pip install timm (the btc extra 'timm')") from None
        return _meta_state_shapes(partial(timm.create_model, self.name, pretrained=False))

    def install(self, file: Path, sha256: str) -> Path:
        root = self.location()
        name = self.FILES[0] if _is_safetensors(file) else self.FILES[1]
        blob = atomic_write(root / "blobs" / sha256, lambda tmp: shutil.copyfile(file, tmp))
        snapshot = self._snapshot() or root / "snapshots" / self.IMPORTED
        link = snapshot / name
        snapshot.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, snapshot))
        if not (root / "refs" / "main").is_file():
            atomic_write(root / "refs" / "main", lambda tmp: tmp.write_text(snapshot.name))
        return link


def _hub_bars(progress: Progress) -> type:
    """A tqdm class for `huggingface_hub` that draws nothing and reports to `progress`."""
    from tqdm.std import tqdm

    class Bars(tqdm):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self._task = progress.add(f"downloading {kwargs.get('desc') or 'weights'}",
                                      kwargs.get("total"))
            if kwargs.get("initial"):
                progress.update(self._task, completed=kwargs["initial"])

        def update(self, n: float | None = 1) -> bool | None:
            progress.update(self._task, advance=n or 0)
            return None

    return Bars


def _parse(source: str) -> _Source:
    kind, _, name = source.partition(":")
    if kind == "torchvision" and name:
        return _Torchvision(name)
    if kind == "timm" and name:
        return _Timm(name)
    raise BtcError(f"unknown weights source {source!r} (expected torchvision:<Enum>.<MEMBER> "
                   "or timm:<model>.<tag>)")


# --------------------------------------------------------------------------- public API


def pretrained_source(model_name: str) -> str | None:
    """The ImageNet weights `model_name` starts from in its paper, or None (from scratch)."""
    return get_spec(model_name).pretrained


def _source_of(model_name: str) -> _Source:
    source = pretrained_source(model_name)
    if source is None:
        raise BtcError(f"{model_name} is trained from scratch: it has no ImageNet weights "
                       "(use --no-pretrained, or --weights FILE for your own)")
    return _parse(source)


def _home(path: Path) -> str:
    """`path` with the home folder written `~`, for messages."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def _obtain(model_name: str, src: _Source, offline: bool, progress: Progress) -> Path:
    """The cached file of `src`, downloaded first unless offline."""
    path = src.cached()
    if path is not None:
        return path
    if reason := offline_reason(offline):
        raise WeightsUnavailable(
            f"no ImageNet weights for {model_name} in the {src.cache} ({_home(src.location())}) "
            f"and {reason}: run `btc weights fetch {model_name}` on a machine with internet, "
            "or pass --no-pretrained")
    try:
        return src.download(progress)
    except DownloadError as e:
        raise WeightsUnavailable(
            f"{e}; to get the weights elsewhere run `btc weights fetch {model_name}` on a machine "
            f"with internet (or `btc weights import {model_name} FILE`), or pass --no-pretrained"
        ) from None


_REFERENCES: dict[str, dict[str, torch.Size]] = {}


def _reference(source: str) -> dict[str, torch.Size]:
    """The names and shapes of the source network's state dict (built once per process)."""
    if source not in _REFERENCES:
        _REFERENCES[source] = _parse(source).reference()
    return _REFERENCES[source]


def _record(src: _Source, path: Path, state: Mapping[str, torch.Tensor],
            model: nn.Module | None = None, sha256: str | None = None) -> WeightsRecord:
    """Check `state` (read from `path`) against the source network, load it into `model` if
    given, and record it."""
    _check_shapes(state, _reference(src.source), path, src.source)
    sha256 = sha256 or file_digest(path)
    published = src.published(path)
    loaded = kept = None
    if model is not None:
        loaded, kept = _load_matching(model, state)
        if loaded == 0:
            raise BtcError(f"no tensor of {src.source} matches the model's names and shapes")
    return WeightsRecord(source=src.source, file=str(path), sha256=sha256,
                         verified=published is not None and sha256.startswith(published),
                         published=published, loaded=loaded, kept=kept)


def resolve_pretrained(model_name: str, model: nn.Module, *, offline: bool,
                       progress: Progress = SILENT) -> WeightsRecord:
    """Load `model_name`'s ImageNet weights into `model` (built by `create_model`).

    Uses the cached file, else downloads it (checked against the published hash) unless
    `offline` or `BTC_OFFLINE=1`, in which case `WeightsUnavailable` names the fetch command.
    A from-scratch model (no source) is a `BtcError`.
    """
    src = _source_of(model_name)
    path = _obtain(model_name, src, offline, progress)
    return _record(src, path, src.read(path), model)


def fetch_weights(model_name: str, *, progress: Progress = SILENT) -> WeightsRecord:
    """Download `model_name`'s ImageNet weights into their cache ahead of training (a no-op when
    they are cached); refused offline (`BTC_OFFLINE=1`)."""
    src = _source_of(model_name)
    if src.cached() is None and (reason := offline_reason()):
        raise WeightsUnavailable(f"btc weights fetch needs the network ({reason})")
    path = _obtain(model_name, src, False, progress)
    return _record(src, path, src.read(path))


def import_weights(model_name: str, file: str | Path) -> WeightsRecord:
    """Copy a local weights file into the cache where `model_name`'s source is looked for, under
    the library's file name, after checking its tensors' names and shapes. Its hash is compared
    with the published one when there is one (torchvision's); a mismatch is imported unverified.
    A different file already cached is never overwritten."""
    src = _source_of(model_name)
    file = Path(file)
    if not file.is_file():
        raise BtcError(f"weights file not found: {file}")
    state = src.read(file)
    _check_shapes(state, _reference(src.source), file, src.source)
    sha256 = file_digest(file)
    cached = src.cached()
    if cached is not None and file_digest(cached) != sha256:
        raise BtcError(f"{_home(cached)} already holds other weights for {src.source}; "
                       "delete it first to import another file")
    path = cached or src.install(file, sha256)
    return _record(src, path, state, sha256=sha256)


def weights_table() -> list[WeightsStatus]:
    """Every registered model, its weights source and whether the file is cached (no hashing)."""
    rows = []
    for name in list_models():
        source = pretrained_source(name)
        if source is None:
            rows.append(WeightsStatus(name, None, None, None, False))
            continue
        src = _parse(source)
        path = src.cached()
        rows.append(WeightsStatus(name, source, src.cache, str(path or src.location()),
                                  path is not None))
    return rows


def load_weights_file(model: nn.Module, path: str | Path) -> WeightsRecord:
    """`--weights FILE`: load a local state dict (or btc checkpoint) into `model` and record it.

    Tensors of another shape (a head for another number of classes) are left at initialisation;
    `model.weights_report` keeps the details (`registry.WeightsReport`)."""
    report = load_weights(model, path)
    model.weights_report = report
    own = len(model.state_dict())
    return WeightsRecord(source="file", file=str(Path(path).resolve()), sha256=file_digest(path),
                         verified=False, published=None, loaded=report.loaded,
                         kept=own - report.loaded)
