"""Paper 001's two-stage diagnosis: a presence model, then a second model on what it calls tumour.

Paper 001 (§III, Fig. 2) trains two ResNeSAt models, one for the presence or absence of tumour
(Table III) and one for the source of the tumour (Table IV), and then uses them "to sequentially
classify the presence or absence of tumors and the type of tumor source on the new image". The
paper reports each stage on its own test images only. `btc two-stage` evaluates the chain end to
end, on the first stage's test images:

1. stage 1 (e.g. `--task presence`) classifies every test image; its probabilities are read from
   the run's own `predictions.csv`;
2. the images it assigns to the *routing class* (the stage-1 class whose dataset labels hold
   every label of stage 2's task: `tumor`) go on to stage 2 (e.g. `--task source` or
   `tumor_type`), whose `checkpoint-best.pt` is run on every test image;
3. the chained prediction is stage 1's class, or stage 2's class when stage 1 routed the
   image on. The true class is read the same way from the image's dataset label. Probabilities,
   for the AUC, are P(c) = p1(c) for a final stage-1 class and p1(route)·p2(c) for a stage-2
   class.

Both runs must be of the same dataset and test split: two `btc train` runs, or two `btc cv`
folders whose folds agree on the images they share. Runs made with the same seed and fold
count always agree, because test folds are drawn over the whole dataset
(`TaskData.dataset_strata`). A tumour image whose label stage 2's task leaves out (no class to
be right about) is counted in `excluded` and left out of the metrics.

Output: a run folder (`predictions.csv`, `metrics.json`, `config.yaml`, plots) or, for CVs, a
CV folder (`fold-k/…`, `cv.json` with mean ± std) that `btc report` reads like any other run,
plus `two_stage.json` (the stages, routing class, counts and end-to-end metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from btc.data.manifest import PreparedDataset, load_dataset
from btc.engine.checkpoint import load_checkpoint
from btc.engine.cv import collect
from btc.engine.evaluate import write_evaluation
from btc.engine.inference import PrepareStep, predict_images
from btc.errors import BtcError
from btc.io import atomic_write_json
from btc.runfolder import CVFolder, Predictions, RunFolder, is_cv_folder


@dataclass(frozen=True)
class Chain:
    """How the two stages' classes combine into the chained classes."""

    stage1_classes: list[str]
    stage2_classes: list[str]
    route: str                     # the stage-1 class whose images go on to stage 2
    truth: dict[str, str]          # dataset label → chained class (labels absent: excluded)
    stage2_labels: frozenset[str]  # the dataset labels of stage 2's task

    @property
    def classes(self) -> list[str]:
        return [c for c in self.stage1_classes if c != self.route] + self.stage2_classes

    def combine(self, p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chained probabilities (N, C), chained predictions (N,)) from the two stages' outputs."""
        route = self.stage1_classes.index(self.route)
        kept = [i for i in range(len(self.stage1_classes)) if i != route]
        probs = np.concatenate([p1[:, kept], p1[:, [route]] * p2], axis=1)
        first = p1.argmax(1)
        stage1_pred = np.searchsorted(kept, first)  # index among the kept stage-1 classes
        predicted = np.where(first == route, len(kept) + p2.argmax(1), stage1_pred)
        return probs, predicted


def make_chain(dataset: PreparedDataset, task1: str, task2: str) -> Chain:
    classes1, index1 = dataset.task_labels(task1)
    classes2, index2 = dataset.task_labels(task2)
    owners = {classes1[index1[label]] if label in index1 else None for label in index2}
    if len(owners) != 1 or None in owners:
        raise BtcError(f"task '{task2}' cannot follow task '{task1}': its labels ({', '.join(index2)}) "
                       f"must all belong to one class of '{task1}'")
    route = owners.pop()
    chained = [c for c in classes1 if c != route] + classes2
    if len(set(chained)) < len(chained):
        raise BtcError(f"tasks '{task1}' and '{task2}' share a class name: {chained}")
    truth = {label: classes2[i] for label, i in index2.items()}
    truth.update({label: classes1[i] for label, i in index1.items() if classes1[i] != route})
    return Chain(classes1, classes2, route, truth, frozenset(index2))


# --------------------------------------------------------------------------- run folders


def _run_info(run: RunFolder) -> dict[str, Any]:
    """The finished run's config (provenance included)."""
    info = run.read_config()
    if not run.is_complete():
        raise BtcError(f"{run.path}: the run has not finished; run the same command again (btc train: with --resume; btc cv resumes by itself)")
    return info


def _test_paths(run: RunFolder) -> set[str]:
    split = run.read_split()
    return set(split.loc[split["role"] == "test", "path"])


def run_pairs(stage1: Path, stage2: Path) -> tuple[str, list[tuple[int | None, RunFolder, RunFolder]]]:
    """('train' or 'cv', [(fold or None, stage-1 run folder, stage-2 run folder)])."""
    kinds = ["cv" if is_cv_folder(d) else "train" if RunFolder(d).has_run() else None
             for d in (stage1, stage2)]
    for d, kind in zip((stage1, stage2), kinds, strict=True):
        if kind is None:
            raise BtcError(f"{d}: not a btc train run nor a btc cv folder")
    if kinds[0] != kinds[1]:
        raise BtcError(f"{stage1} is a {kinds[0]} folder and {stage2} a {kinds[1]} folder: chain two "
                       "train runs or two CVs")
    if kinds[0] == "train":
        return "train", [(None, RunFolder(stage1), RunFolder(stage2))]
    cv1, cv2 = CVFolder(stage1), CVFolder(stage2)
    n1, n2 = cv1.read_folds().n_folds, cv2.read_folds().n_folds
    if n1 != n2:
        raise BtcError(f"the CVs have {n1} and {n2} folds: run both with the same --folds and --seed")
    pairs = [(k, cv1.fold(k), cv2.fold(k)) for k in range(1, n1 + 1)
             if cv1.fold(k).is_complete() and cv2.fold(k).is_complete()]
    if not pairs:
        raise BtcError("no fold has finished in both CVs")
    return "cv", pairs


def _same_dataset(info1: dict[str, Any], info2: dict[str, Any]) -> Path:
    data1, data2 = (Path(str(i.get("data", ""))) for i in (info1, info2))
    if data1.resolve() != data2.resolve():
        raise BtcError(f"the runs were trained on different datasets ({data1} and {data2})")
    return data1


# --------------------------------------------------------------------------- evaluation


def chain_pair(stage1: RunFolder, stage2: RunFolder, out: RunFolder, *, device: str = "cpu",
               batch_size: int = 64, dataset: PreparedDataset | None = None) -> dict[str, Any]:
    """Evaluate one stage-1 run chained with one stage-2 run into `out`; returns its summary."""
    info1, info2 = _run_info(stage1), _run_info(stage2)
    data = _same_dataset(info1, info2)
    dataset = dataset or load_dataset(data)
    chain = make_chain(dataset, str(info1.get("task")), str(info2.get("task")))
    test1, test2 = _test_paths(stage1), _test_paths(stage2)
    manifest = dataset.manifest
    stage2_images = set(manifest.loc[manifest["label"].isin(chain.stage2_labels), "path"])
    if test2 != test1 & stage2_images:
        raise BtcError(f"{stage1.path} and {stage2.path} were not tested on the same images "
                       f"({len(test2 - test1)} of stage 2's test images are not in stage 1's test split); "
                       "run both with the same --seed (and --folds)")
    stage1_predictions = stage1.read_predictions()
    paths, p1 = stage1_predictions.paths, stage1_predictions.probs
    if stage1_predictions.classes != chain.stage1_classes:
        raise BtcError(f"{stage1.predictions_path} has classes {stage1_predictions.classes}, task "
                       f"'{info1.get('task')}' has {chain.stage1_classes}")
    labels = manifest.set_index("path").loc[paths, "label"].to_numpy()
    keep = np.array([label in chain.truth for label in labels], dtype=bool)
    checkpoint = load_checkpoint(stage2.best_checkpoint)
    read, p2, skipped = predict_images(checkpoint, [dataset.root / p for p in paths], device=device,
                                       batch_size=batch_size, step=PrepareStep())
    if skipped:
        raise BtcError(f"cannot read {skipped[0][0]}: {skipped[0][1]}")
    probs, predicted = chain.combine(p1, p2)
    targets = np.array([chain.classes.index(chain.truth[label]) for label in labels[keep]], dtype=int)
    out.path.mkdir(parents=True, exist_ok=True)
    metrics = write_evaluation(out, Predictions.from_probs(
        [p for p, k in zip(paths, keep, strict=True) if k], targets, probs[keep], chain.classes, predicted[keep]))
    routed = int((p1.argmax(1) == chain.stage1_classes.index(chain.route)).sum())
    summary = {
        "stage1": {"run": str(stage1.path), "task": info1.get("task"), "model": info1.get("model"),
                   "classes": chain.stage1_classes},
        "stage2": {"run": str(stage2.path), "task": info2.get("task"), "model": info2.get("model"),
                   "classes": chain.stage2_classes},
        "route": chain.route, "classes": chain.classes,
        "images": len(paths), "routed_to_stage2": routed, "excluded": int((~keep).sum()),
        "accuracy": metrics["accuracy"],
    }
    out.write_config({
        "model": f"{info1.get('model')} → {info2.get('model')}",
        "task": f"{info1.get('task')} → {info2.get('task')}",
        "data": str(data), "classes": chain.classes, "seed": info1.get("seed"),
        "split_protocol": f"two-stage chain on the test split of {stage1.path}",
        "device_name": info1.get("device_name"), "btc_version": info1.get("btc_version"),
        "stages": [str(stage1.path), str(stage2.path)],
    })
    atomic_write_json(out.two_stage_path, summary)
    return {**summary, "metrics": metrics}


def two_stage(stage1: Path, stage2: Path, out: Path, *, device: str = "cpu",
              batch_size: int = 64) -> dict[str, Any]:
    """Chain two train runs, or every fold two CVs have both finished; returns the summary
    (`kind`: train or cv; `folder`: the output RunFolder or CVFolder)."""
    kind, pairs = run_pairs(Path(stage1), Path(stage2))
    if kind == "train":
        result = chain_pair(pairs[0][1], pairs[0][2], RunFolder(out), device=device, batch_size=batch_size)
        return {**result, "kind": "train", "folder": RunFolder(out)}
    dataset = load_dataset(_same_dataset(_run_info(pairs[0][1]), _run_info(pairs[0][2])))
    cv = CVFolder(out)
    folds = [chain_pair(d1, d2, cv.fold(k), device=device, batch_size=batch_size, dataset=dataset)
             for k, d1, d2 in pairs]
    n_folds = CVFolder(stage1).read_folds().n_folds
    result = collect(cv, n_folds, f"two-stage chain over the folds of {stage1} and {stage2}")
    cv.write_summary(result)
    summary = {key: folds[0][key] for key in ("stage1", "stage2", "route", "classes")}
    summary.update({
        "stage1": {**summary["stage1"], "run": str(stage1)}, "stage2": {**summary["stage2"], "run": str(stage2)},
        "folds": [k for k, _, _ in pairs], "complete": result.complete,
        "images": sum(f["images"] for f in folds), "routed_to_stage2": sum(f["routed_to_stage2"] for f in folds),
        "excluded": sum(f["excluded"] for f in folds),
        "accuracy_mean": result.mean.get("accuracy"), "accuracy_std": result.std.get("accuracy"),
    })
    atomic_write_json(cv.two_stage_path, summary)
    return {**summary, "mean": result.mean, "std": result.std, "fold_results": folds, "kind": "cv", "folder": cv}
