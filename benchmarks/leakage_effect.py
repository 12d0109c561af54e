#!/usr/bin/env python
"""How much is leakage worth? The same models under the paper's split and the leak-free split.

Issue 15's first real result. On a `btc prepare`d Kaggle set (kaggle-224, `--crop none` as paper
002 resizes without cropping), each model × seed trains twice with paper 002's recipe at a size
this CPU can finish:

- `paper`: the dataset's own Training/Testing split, as papers 002 and 004 used it;
- `leak-free`: the same training set, and the test set without the images that have a twin
  (a patient, exact or pixel-confirmed near duplicate, `btc.data.splits.leak_free_groups`) in
  training.

For every run it reports the test accuracy with its 95 % bootstrap CI, the training accuracy
reached (history.csv), and — under `paper` — the accuracy on the test images that have a twin in
training vs those that do not. Leakage only pays when a model fits its training set, so the
snapshots kept every `--snapshot-every` epochs of the same runs are evaluated too: twin and
no-twin test accuracy against training accuracy, epoch by epoch (no extra training).

Runs are ordinary btc run folders under `--runs`: an interrupted benchmark resumes them
(background jobs end with the session; run the same command again in the next one).

    btc prepare kaggle ../shared/data/kaggle-224 /tmp/k224-128 --size 128 --crop none
    python benchmarks/leakage_effect.py --data /tmp/k224-128 --runs runs/leakage \\
        --models dsconv_cbam,mlp --seeds 0,1,2 --image-size 128 --epochs 15 --snapshot-every 3 \\
        --out benchmarks/results/leakage_effect-cpu.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.provenance import result_header  # noqa: E402
from btc.data.manifest import load_dataset  # noqa: E402
from btc.engine.checkpoint import load_checkpoint  # noqa: E402
from btc.engine.config import resolve_config  # noqa: E402
from btc.engine.devices import resolve_device  # noqa: E402
from btc.engine.predictor import Predictor  # noqa: E402
from btc.engine.protocols import add_validation, split_roles  # noqa: E402
from btc.engine.runs import TaskData, train_run  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402
from btc.report.stats import bootstrap_accuracy_ci  # noqa: E402
from btc.runfolder import RunFolder  # noqa: E402

PROTOCOLS = ("paper", "leak-free")


def run_one(data: TaskData, model: str, seed: int, protocol: str, args: argparse.Namespace) -> RunFolder:
    """Train (or resume) one run folder."""
    config = resolve_config(model, task="multiclass", overrides={
        "image_size": args.image_size, "epochs": args.epochs, "device": args.device, "seed": seed,
        "protocol": protocol, "pretrained": False, "snapshot_every": args.snapshot_every,
        **({"batch_size": args.batch_size} if args.batch_size else {})})
    run = RunFolder(Path(args.runs) / f"{model}-{protocol}-seed{seed}")
    roles, text = split_roles(data, config)
    roles = add_validation(data, roles, config)
    train_run(data, roles, config, run, protocol=text, resume=True)
    return run


def twin_mask(data: TaskData, run: RunFolder, paths: list[str]) -> np.ndarray:
    """Per test path: does a training image of this run share its leak-free group?"""
    groups = dict(zip(data.rows["path"], data.leak_free_groups()[data.positions], strict=True))
    split = run.read_split()
    train_groups = {groups[p] for p in split.loc[split["role"] == "train", "path"]}
    return np.array([groups[p] in train_groups for p in paths], dtype=bool)


def accuracy(correct: np.ndarray) -> dict[str, Any]:
    if not len(correct):
        return {"n": 0, "accuracy": None, "ci95": None}
    low, high = bootstrap_accuracy_ci(correct)
    return {"n": int(len(correct)), "accuracy": float(correct.mean()), "ci95": [float(low), float(high)]}


def evaluate_snapshots(data: TaskData, run: RunFolder, device: torch.device) -> list[dict[str, Any]]:
    """Train and test accuracy (twin / no twin) of every kept snapshot of the run."""
    split = run.read_split()
    role = dict(zip(split["path"], split["role"], strict=True))
    index = {p: i for i, p in enumerate(data.rows["path"])}
    rows = []
    for epoch, path in run.snapshots().items():
        ck = load_checkpoint(path)
        images = data.images(ck.config.resize_size, ck.config.interpolation)
        predictor = Predictor(ck.model, ck.config, device)
        out: dict[str, Any] = {"epoch": epoch}
        for name in ("train", "test"):
            paths = [p for p, r in role.items() if r == name]
            chosen = torch.tensor([index[p] for p in paths])
            probs = predictor.predict(images[chosen], batch_size=128)
            correct = probs.argmax(1) == data.targets[chosen.numpy()]
            if name == "train":
                out["train_accuracy"] = float(correct.mean())
            else:
                twins = twin_mask(data, run, paths)
                out["test_accuracy"] = float(correct.mean())
                out["twin_accuracy"] = float(correct[twins].mean()) if twins.any() else None
                out["no_twin_accuracy"] = float(correct[~twins].mean()) if (~twins).any() else None
        rows.append(out)
    return rows


def summarise(data: TaskData, run: RunFolder, protocol: str, device: torch.device) -> dict[str, Any]:
    predictions = run.read_predictions()
    correct = predictions.predicted == predictions.targets
    twins = twin_mask(data, run, predictions.paths)
    history = run.read_history()
    return {
        "protocol": protocol,
        "run": str(run.path),
        "test": accuracy(correct),
        "twin": accuracy(correct[twins]),
        "no_twin": accuracy(correct[~twins]),
        "train_accuracy": float(history["train_accuracy"].iloc[-1]),
        "epochs": int(history["epoch"].iloc[-1]),
        "deviations": (run.read_config().get("provenance") or {}).get("deviations"),
        "snapshots": evaluate_snapshots(data, run, device),
    }


def difference(paper: dict[str, Any], leak_free: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """paper − leak-free test accuracy with a 95 % CI (independent bootstrap of both test sets)."""
    rng = np.random.default_rng(seed)
    a, b = paper["correct"], leak_free["correct"]
    draws = [rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(2000)]
    return {"difference": float(a.mean() - b.mean()),
            "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="A btc-prepared Kaggle dataset.")
    parser.add_argument("--runs", default="runs/leakage", help="Folder of the run folders (resumed).")
    parser.add_argument("--models", default="dsconv_cbam,mlp")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=0, help="Default: the recipe's.")
    parser.add_argument("--snapshot-every", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", choices=("train", "analyse", "all"), default="all")
    parser.add_argument("--out", default="benchmarks/results/leakage_effect-cpu.json")
    args = parser.parse_args(argv)

    data = TaskData.from_dataset(load_dataset(args.data), "multiclass")
    device = resolve_device(args.device)
    models = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {}
    for model in models:
        for seed in seeds:
            for protocol in PROTOCOLS:
                folder = RunFolder(Path(args.runs) / f"{model}-{protocol}-seed{seed}")
                if args.only != "analyse":
                    print(f"training {model} seed {seed} {protocol} …", flush=True)
                    folder = run_one(data, model, seed, protocol, args)
                if folder.is_complete():
                    runs[(model, seed, protocol)] = folder
    if args.only == "train":
        return None
    results = []
    for model in models:
        for seed in seeds:
            pair = {p: runs.get((model, seed, p)) for p in PROTOCOLS}
            if not all(pair.values()):
                continue
            entry: dict[str, Any] = {"model": model, "seed": seed}
            scored = {}
            for protocol, folder in pair.items():
                entry[protocol] = summarise(data, folder, protocol, device)
                predictions = folder.read_predictions()
                scored[protocol] = {"correct": predictions.predicted == predictions.targets}
            entry["paper_minus_leak_free"] = difference(scored["paper"], scored["leak-free"])
            results.append(entry)
            p, lf = entry["paper"], entry["leak-free"]
            print(f"{model} seed {seed}: paper {p['test']['accuracy']:.4f} (train {p['train_accuracy']:.3f}), "
                  f"leak-free {lf['test']['accuracy']:.4f} (n {lf['test']['n']}), "
                  f"twin {p['twin']['accuracy']} (n {p['twin']['n']}) vs no twin {p['no_twin']['accuracy']:.4f}; "
                  f"Δ {entry['paper_minus_leak_free']['difference']:+.4f} "
                  f"95 % CI [{entry['paper_minus_leak_free']['ci95'][0]:+.4f}, {entry['paper_minus_leak_free']['ci95'][1]:+.4f}]")
    trained = {}  # each model as its runs were trained (the runs may come from other commands)
    for (model, _seed, _protocol), folder in sorted(runs.items()):
        config = folder.read_config()
        trained.setdefault(model, {k: config.get(k) for k in
                                   ("image_size", "epochs", "batch_size", "snapshot_every", "recipe", "pretrained")})
    report = {**result_header("leakage_effect", device),
              "settings": {"data": args.data, "models": models, "seeds": seeds, "recipe": "paper002",
                           "pretrained": False, "trained": trained},
              "results": results}
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
