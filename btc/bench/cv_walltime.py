"""Paper 001's CV wall time from measured rates (used by `benchmarks/cv_walltime.py`).

Paper 001 (Tables III–IV) trains ResNeSAt for 100 epochs on each of ten folds; a GPU lease is
shorter than that, so the protocol's time is measured on a few steps and extrapolated:

- `measure_parallel_folds(n, …)`: n spawned processes (`measure_fold`) train folds 1…n of the
  dataset with the real engine for a few steps, all started together (a barrier: the sharing of
  `btc cv --parallel-folds n`), and time an evaluation pass over their fold's test images;
- `protocol_row`: one fold takes `fold_seconds` = `epochs × n_train / train_rate + n_test /
  eval_rate` at that sharing (the means over the n processes), and the protocol
  `ceil(folds / n)` such rounds (data decoding and checkpoint writes aside).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def fold_seconds(epochs: int, n_train: float, n_test: float, train_img_s: float, eval_img_s: float) -> float:
    """`epochs` passes over the training images and one evaluation of the test images."""
    return epochs * n_train / train_img_s + n_test / eval_img_s


def measure_fold(job: tuple) -> dict[str, Any]:
    """In a worker process: train and eval images/s, n_train and n_test of fold k (1…K)."""
    data_dir, model, recipe, overrides, folds, k, steps, warmup, threads, start = job
    from btc.bench.training import engine_rate
    from btc.data.manifest import load_dataset
    from btc.engine.config import resolve_config
    from btc.engine.devices import resolve_device
    from btc.engine.protocols import make_folds
    from btc.engine.runs import TaskData
    from btc.engine.train import Trainer
    from btc.models import create_model

    torch.set_num_threads(threads)
    config = resolve_config(model, recipe, overrides=overrides)
    device = resolve_device(config.device)
    data = TaskData.from_dataset(load_dataset(data_dir), config.task)
    fold_of, _ = make_folds(data, dataclasses.replace(config, folds=folds))  # the folds `btc cv` would use
    train = data.split(fold_of != k, config).to(device)
    test = data.split(fold_of == k, config).to(device)
    torch.manual_seed(config.seed)
    trainer = Trainer(create_model(model, len(data.classes), input_size=config.image_size), config, device)
    start.wait()  # every process measures at the same time: the sharing of `btc cv --parallel-folds`
    train_rate = engine_rate(trainer, train, steps, warmup)
    began = time.perf_counter()
    trainer.predict(test)
    eval_rate = len(test) / (time.perf_counter() - began)
    return {"fold": k, "train_img_s": train_rate, "eval_img_s": eval_rate, "n_train": len(train), "n_test": len(test)}


def measure_parallel_folds(n: int, data_dir: Path, model: str, recipe: str, overrides: dict[str, Any],
                           folds: int, steps: int, warmup: int, device_type: str) -> list[dict[str, Any]]:
    """`measure_fold` of folds 1…n in n spawned processes at once (CPU cores shared out)."""
    threads = max(1, multiprocessing.cpu_count() // n) if device_type == "cpu" else 1
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(n)
        jobs = [(str(data_dir), model, recipe, overrides, folds, k, steps, warmup, threads, start)
                for k in range(1, n + 1)]
        with context.Pool(n) as pool:
            return pool.map(measure_fold, jobs)


def protocol_row(measured: list[dict[str, Any]], epochs: int, folds: int) -> dict[str, Any]:
    """Rates of n processes measured together → one fold's and the whole protocol's seconds."""
    n = len(measured)

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in measured]))

    train_rate, eval_rate = mean("train_img_s"), mean("eval_img_s")  # per process
    fold_s = fold_seconds(epochs, mean("n_train"), mean("n_test"), train_rate, eval_rate)
    return {"parallel_folds": n, "train_img_s_per_process": train_rate, "train_img_s_total": train_rate * n,
            "eval_img_s_per_process": eval_rate, "fold_s": fold_s, "protocol_s": math.ceil(folds / n) * fold_s,
            "measured": measured}
