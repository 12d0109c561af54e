"""`btc prepare folder`: any class-per-folder image tree, with a label map and task definitions.

Layout: `SRC/<class folder>/…/image` or `SRC/<split folder>/<class folder>/…/image`, where a
first-level folder named train/training or test/testing (any case; or as `splits:` says) sets
the split. Without `--labels`, the class is the class folder's name. Every image is written as
grayscale uint8 PNG (resized to `--size`² when given) at `OUT/images/<same path>.png`.

`labels.yaml` (all keys optional; a plain `folder: class` mapping is accepted too)::

    folders:            # folder under SRC (split folder removed) → class; null excludes it.
      Normal: notumor   # Nested folders may be named by their path ('tumour/glioma'); the
      Glioma: glioma    # longest matching path wins. With `folders`, unlisted folders are
      Meningioma: meningioma   # skipped (and listed as skipped).
      Metastasis: metastasis
    classes: [glioma, meningioma, metastasis, notumor]   # index order (default: sorted)
    tasks:              # output class → dataset labels; labels a task omits are not in it
      presence: {tumor: [glioma, meningioma, metastasis], no_tumor: [notumor]}
      source: {primary: [glioma, meningioma], secondary: [metastasis]}
    splits: {Train: train, Test: test}     # first-level folders that are splits
    patient_id: '^(?P<id>[A-Z]+\\d+)_'     # regex on the path inside SRC → patient id

This is paper 001's hierarchy: a presence task (tumour vs none) and a source task (primary vs
secondary tumour) over the same images. Classes with no image are dropped from `classes` and
from the tasks (a task left with fewer than two output classes is dropped). When the file defines
no tasks, `presence` is added when the labels include `notumor` and a tumour class, and
`tumor_type` when they include two or more tumour classes as well (`default_tasks`). Class names
are recognised in the spellings public trees use (`canonical_class`: `glioma_tumor`,
`Meningioma`, `no_tumor`, `no tumour` …): a tree of `glioma_tumor/ meningioma_tumor/ no_tumor/
pituitary_tumor/` keeps those class names and gets both tasks.

`--size` makes every image a square of that side; an image that is not square is stretched (its
aspect ratio is not kept), and the prepare says how many were (a note, and dataset.yaml's
`preprocessing`).

A new image from outside the dataset (`btc predict`) goes through `input_step`: grayscale uint8,
resized to the recorded `--size`² when one was given, as prepare wrote every image.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from btc.data.manifest import SPLITS
from btc.data.prepare.classes import TUMOR_CLASSES, default_tasks
from btc.data.prepare.finishing import PrepareSummary, finish
from btc.data.prepare.inputs import Skipped, list_files, rel_posix, unique_names
from btc.data.prepare.staging import Stage, staging_dir
from btc.data.prepare.work import Work
from btc.data.prepare.writing import read_gray_row
from btc.errors import BtcError
from btc.io import read_yaml
from btc.progress import SILENT, Progress

from .input_step import Resize, recorded_size

DEFAULT_SPLITS = {"train": "train", "training": "train", "test": "test", "testing": "test"}
LABEL_KEYS = {"folders", "classes", "tasks", "splits", "patient_id"}


@dataclass
class LabelMap:
    folders: dict[str, str | None] | None = None
    classes: list[str] | None = None
    tasks: dict[str, dict[str, list[str]]] | None = None
    splits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SPLITS))
    patient_id: re.Pattern[str] | None = None
    source: str | None = None


def _norm_folder(key: str) -> str:
    return str(PurePosixPath(str(key).replace("\\", "/").strip("/")))


def load_labels(path: str | Path | None) -> LabelMap:
    """Read and check labels.yaml (errors name the file and the key)."""
    if path is None:
        return LabelMap()
    path = Path(path)
    if not path.is_file():
        raise BtcError(f"{path}: no such labels file")
    try:
        data = read_yaml(path)
    except (OSError, UnicodeDecodeError) as e:
        raise BtcError(f"{path}: cannot read ({e})") from None
    except yaml.YAMLError as e:
        raise BtcError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BtcError(f"{path}: must be a mapping (folders, classes, tasks, splits, patient_id)")
    if data and not set(data) & LABEL_KEYS:
        data = {"folders": data}
    unknown = set(data) - LABEL_KEYS
    if unknown:
        raise BtcError(f"{path}: unknown key(s) {sorted(unknown)}; expected {sorted(LABEL_KEYS)}")
    lm = LabelMap(source=str(path))
    if data.get("folders") is not None:
        if not isinstance(data["folders"], dict):
            raise BtcError(f"{path}: 'folders' must map folder → class")
        lm.folders = {}
        for k, v in data["folders"].items():
            if isinstance(k, bool) or k is None:
                raise BtcError(f"{path}: folder name {k!r} was read as true/false/null by YAML; "
                               "quote folder names such as 'yes', 'no', 'on', 'off', 'null'")
            if v is not None and not isinstance(v, (str, int)):
                raise BtcError(f"{path}: folders.{k} must be a class name or null")
            lm.folders[_norm_folder(k)] = None if v is None else str(v)
    if data.get("classes") is not None:
        classes = data["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, (str, int)) for c in classes):
            hint = " (a folder → class map goes under 'folders:')" if isinstance(classes, dict) else ""
            raise BtcError(f"{path}: 'classes' must be a list of class names{hint}")
        lm.classes = [str(c) for c in classes]
        if len(set(lm.classes)) != len(lm.classes):
            raise BtcError(f"{path}: 'classes' lists a class twice")
        if lm.folders:
            missing = sorted({v for v in lm.folders.values() if v is not None} - set(lm.classes))
            if missing:
                raise BtcError(f"{path}: folders map to class(es) {missing} missing from 'classes'")
    known = set(lm.classes) if lm.classes else (
        {v for v in lm.folders.values() if v is not None} if lm.folders else None)
    if data.get("tasks") is not None:
        tasks = data["tasks"]
        if not isinstance(tasks, dict):
            raise BtcError(f"{path}: 'tasks' must map task → {{output class: [labels]}}")
        lm.tasks = {}
        for task, mapping in tasks.items():
            if not isinstance(mapping, dict):
                raise BtcError(f"{path}: task '{task}' must map output class → [labels]")
            lm.tasks[str(task)] = {}
            for out_class, labels in mapping.items():
                labels = [labels] if isinstance(labels, str) else labels
                if not isinstance(labels, list):
                    raise BtcError(f"{path}: task '{task}' class '{out_class}' must list labels")
                labels = [str(x) for x in labels]
                if known is not None:
                    bad = [x for x in labels if x not in known]
                    if bad:
                        raise BtcError(f"{path}: task '{task}' class '{out_class}' names unknown label(s) {bad}")
                lm.tasks[str(task)][str(out_class)] = labels
    if data.get("splits") is not None:
        splits = data["splits"]
        if not isinstance(splits, dict):
            raise BtcError(f"{path}: 'splits' must map folder → train or test")
        lm.splits = {}
        for k, v in splits.items():
            if str(v) not in SPLITS or not v:
                raise BtcError(f"{path}: splits.{k} must be train or test (got {v!r})")
            lm.splits[str(k).lower()] = str(v)
    if data.get("patient_id") is not None:
        try:
            lm.patient_id = re.compile(str(data["patient_id"]))
        except re.error as e:
            raise BtcError(f"{path}: patient_id is not a valid regular expression ({e})") from None
    return lm


# --------------------------------------------------------------------------- mapping inputs


@dataclass
class _Input:
    path: Path
    key: str
    split: str
    label: str
    folder: str
    patient_id: str


def _patient(lm: LabelMap, rel: str) -> str:
    if lm.patient_id is None:
        return ""
    m = lm.patient_id.search(rel)
    if not m:
        return ""
    if "id" in m.groupdict():
        return m.group("id") or ""
    return m.group(1) if m.groups() else m.group(0)


def _classify(lm: LabelMap, src: Path, files: list[Path], skipped: list[Skipped]) -> list[_Input]:
    inputs: list[_Input] = []
    unmapped: dict[str, int] = {}
    excluded: dict[str, int] = {}
    lower_folders = {k.lower(): k for k in (lm.folders or {})}
    for f in files:
        rel = rel_posix(f, src)
        parts = rel.split("/")[:-1]
        split = ""
        if parts and parts[0].lower() in lm.splits:
            split = lm.splits[parts[0].lower()]
            parts = parts[1:]
        if not parts:
            skipped.append(Skipped(rel, "not inside a class folder"))
            continue
        prefix = rel.split("/")[0] + "/" if split else ""
        if lm.folders is None:
            label, folder = parts[0], parts[0]
            if lm.classes is not None and label not in lm.classes:
                unmapped[prefix + folder] = unmapped.get(prefix + folder, 0) + 1
                continue
        else:
            folder = None
            for k in range(len(parts), 0, -1):
                candidate = "/".join(parts[:k])
                hit = candidate if candidate in lm.folders else lower_folders.get(candidate.lower())
                if hit is not None:
                    folder = hit
                    break
            if folder is None:
                unmapped[prefix + parts[0]] = unmapped.get(prefix + parts[0], 0) + 1
                continue
            label = lm.folders[folder]
            if label is None:
                excluded[prefix + folder] = excluded.get(prefix + folder, 0) + 1
                continue
        inputs.append(_Input(f, rel, split, label, folder, _patient(lm, rel)))
    for folder, n in sorted(unmapped.items()):
        where = "labels.yaml" if lm.folders is not None else "the classes of labels.yaml"
        skipped.append(Skipped(folder + "/", f"folder not in {where} ({n} files)"))
    for folder, n in sorted(excluded.items()):
        skipped.append(Skipped(folder + "/", f"excluded by labels.yaml ({n} files)"))
    return inputs


# --------------------------------------------------------------------------- worker


def _folder_one(task: dict[str, Any]) -> dict[str, Any]:
    result = read_gray_row(task, {"label": task["label"], "split": task["split"], "patient_id": task["patient_id"],
                                  "source": "folder", "orig_path": task["key"]})
    if result["ok"]:
        result["row"]["folder"] = task["folder"]
    return result


# --------------------------------------------------------------------------- the command


def canonical_class(name: str) -> str:
    """btc's class for a folder's class name in a common spelling (`glioma_tumor`, `Glioma`,
    `no_tumor`, `no tumour` …), else the name itself."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_").replace("tumour", "tumor")
    if key in ("no_tumor", "notumor"):
        return "notumor"
    key = key.removesuffix("_tumor")
    return key if key in TUMOR_CLASSES else str(name)


def folder_default_tasks(classes: list[str]) -> dict[str, dict[str, list[str]]]:
    """`default_tasks` of the classes read in btc's spelling (`canonical_class`), written back in
    the dataset's own class names; when two classes mean the same one, of the names as they are."""
    canonical = {c: canonical_class(c) for c in classes}
    if len(set(canonical.values())) < len(canonical):
        return default_tasks(classes)
    own = {v: k for k, v in canonical.items()}
    return {task: {own.get(out, out): [own[label] for label in labels] for out, labels in mapping.items()}
            for task, mapping in default_tasks(list(canonical.values())).items()}


def _stretched(rows: list[dict[str, Any]], size: int | None) -> int:
    """How many images `--size` stretched (not square before the resize)."""
    if size is None:
        return 0
    return sum(1 for r in rows if r.get("orig_height") and r.get("orig_height") != r.get("orig_width"))


def _final_classes_tasks(lm: LabelMap, labels: set[str]) -> tuple[list[str], dict[str, Any]]:
    classes = [c for c in lm.classes if c in labels] if lm.classes else sorted(labels)
    if lm.tasks is None:
        return classes, folder_default_tasks(classes)
    tasks: dict[str, Any] = {}
    for task, mapping in lm.tasks.items():
        kept = {out: [x for x in labs if x in labels] for out, labs in mapping.items()}
        kept = {out: labs for out, labs in kept.items() if labs}
        if len(kept) >= 2:
            tasks[task] = kept
    return classes, tasks


def input_step(info: dict[str, Any]) -> Resize:
    """A new image: grayscale uint8, resized to the recorded `--size` (if one was given)."""
    return Resize(recorded_size(info))


def prepare_folder(src: str | Path, out: str | Path, *, labels: str | Path | None = None,
                   size: int | None = None, workers: int | None = None,
                   progress: Progress = SILENT) -> PrepareSummary:
    """Write any class-per-folder tree at `src` as a prepared dataset in `out`."""
    started = time.monotonic()
    src, out = Path(src), Path(out)
    if size is not None and size < 8:
        raise BtcError(f"--size {size}: must be at least 8")
    if not src.exists():
        raise BtcError(f"{src}: no such folder")
    if not src.is_dir():
        raise BtcError(f"{src}: not a folder")
    try:
        next(iter(src.iterdir()), None)
    except OSError as e:
        raise BtcError(f"{src}: cannot read folder ({e.strerror or e})") from None
    lm = load_labels(labels)
    skipped: list[Skipped] = []
    files = list_files(src, skipped, src, [out.absolute(), staging_dir(out)])
    if labels is not None:
        lp = Path(labels).resolve()
        files = [f for f in files if f.resolve() != lp]
    inputs = _classify(lm, src, files, skipped)
    params = {"size": size, "method": "folder/v1"}
    stage = Stage(out, source="folder", params=params, inputs=[src])
    try:
        work = Work(stage, skipped)
        by_dir: dict[str, list[_Input]] = {}
        for inp in inputs:
            by_dir.setdefault(str(PurePosixPath(inp.key).parent), []).append(inp)
        for parent, group in sorted(by_dir.items()):
            stems = unique_names([i.path.stem for i in group], [i.path.suffix for i in group])
            for inp, stem in zip(group, stems, strict=True):
                rel_out = f"images/{stem}.png" if parent == "." else f"images/{parent}/{stem}.png"
                work.add(inp.key, inp.path, {"path": rel_out, "label": inp.label, "split": inp.split,
                                             "patient_id": inp.patient_id, "folder": inp.folder, "size": size},
                         inp.label, inp.split, inp.patient_id, worker=_folder_one, description="prepare folder")
        work.run(workers, progress)
        rows, keys = work.rows, work.keys
        classes, tasks = _final_classes_tasks(lm, {r["label"] for r in rows})
        command = f"btc prepare folder {src} {out}" + (f" --labels {labels}" if labels else "") + (
            f" --size {size}" if size else "")
        stretched = _stretched(rows, size)
        if stretched:
            progress.note(f"--size {size}: {stretched} of {len(rows)} images were not square and were stretched to "
                          f"{size}x{size} (aspect ratio not kept)")
        resize = f", resized to {size}x{size}" + (f" ({stretched} of {len(rows)} not square: stretched, aspect ratio "
                                                 "not kept)" if stretched else "")
        extra = {"preprocessing": {"image": "grayscale uint8 PNG" + (resize if size else ", original size")},
                 "labels_file": str(Path(labels).resolve()) if labels else None}
        return finish(stage, rows, keys, src=src, command=command,
                      params={"size": size, "labels": str(labels) if labels else None},
                      classes=classes, tasks=tasks, skipped=skipped, extra=extra, progress=progress, started=started)
    finally:
        stage.close()


__all__ = ["prepare_folder", "load_labels", "LabelMap", "input_step"]
