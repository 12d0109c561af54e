"""Paper 001's CV wall time from measured rates (`benchmarks/cv_walltime.py`'s worker and formula).

`measure_fold` runs in a spawned process: it trains fold k of the dataset with the real engine
for a few steps, started together with the other processes of the measurement (a barrier), and
times an evaluation pass over the fold's test images. `fold_seconds` turns the rates into the
time of one fold of the protocol.
"""

from __future__ import annotations

import time

import torch


def fold_seconds(epochs: int, n_train: float, n_test: float, train_img_s: float, eval_img_s: float) -> float:
    """`epochs` passes over the training images and one evaluation of the test images."""
    return epochs * n_train / train_img_s + n_test / eval_img_s


def measure_fold(job: tuple) -> dict:
    """In a worker process: train and eval images/s, n_train and n_test of fold k."""
    data_dir, model, recipe, overrides, folds, k, steps, warmup, threads, start = job
    from btc.bench.training import engine_rate
    from btc.data.manifest import load_dataset
    from btc.engine.config import resolve_config
    from btc.engine.cv import make_folds
    from btc.engine.runs import TaskData
    from btc.engine.train import Trainer, resolve_device
    from btc.models import create_model

    torch.set_num_threads(threads)
    config = resolve_config(model, recipe, overrides=overrides)
    device = resolve_device(config.device)
    data = TaskData.from_dataset(load_dataset(data_dir), config.task)
    fold_of, _ = make_folds(data, folds, seed=config.seed)  # the folds `btc cv` would use
    train = data.split(fold_of != k, config, quiet=True).to(device)
    test = data.split(fold_of == k, config, quiet=True).to(device)
    torch.manual_seed(config.seed)
    trainer = Trainer(create_model(model, len(data.classes), input_size=config.image_size), config, device)
    start.wait()  # every process measures at the same time: the sharing of `btc cv --parallel-folds`
    train_rate = engine_rate(trainer, train, steps, warmup)
    began = time.perf_counter()
    trainer.predict(test)
    eval_rate = len(test) / (time.perf_counter() - began)
    return {"fold": k, "train_img_s": train_rate, "eval_img_s": eval_rate, "n_train": len(train), "n_test": len(test)}
