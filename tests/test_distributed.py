"""Data-parallel training under torchrun (gloo on the CPU) equals one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from btc.data.dataset import Preprocess
from btc.engine.distributed import Dist, shard

# mlp has neither BatchNorm (per-process statistics under gloo) nor dropout: step-for-step equal.
# A batch of 7 cuts into uneven shards (4 + 3), which the loss scaling must get right.
ARGS = ["--model", "mlp", "--image-size", "64", "--batch-size", "7", "--epochs", "2", "--folds", "2",
        "--device", "cpu", "--no-pretrained", "--set", "val_fraction=0.25", "--set", "hflip=0.5",
        "--set", "brightness=0.2"]


def test_shards_cover_a_batch_in_order():
    index = torch.arange(10, 17)
    parts = [shard(index, Dist(rank, 3)) for rank in range(3)]
    assert [len(p) for p in parts] == [3, 2, 2]
    assert torch.equal(torch.cat(parts), index)
    assert torch.equal(shard(index, Dist()), index)


def test_augmenting_shards_equals_augmenting_the_batch():
    """Each process applies its slice of the global batch's draws: the same pixels as one process."""
    pre = Preprocess(image_size=48, resize_size=64, crop="random", normalize="unit", hflip=0.5,
                     vflip=0.5, brightness=0.3)
    batch = torch.randint(0, 256, (9, 1, 64, 64), dtype=torch.uint8)
    aug = pre.draw(9, torch.Generator().manual_seed(1))
    whole = pre.apply(batch, aug)
    for rank in range(2):
        mine = shard(torch.arange(9), Dist(rank, 2))
        torch.testing.assert_close(pre.apply(batch[mine], aug.select(mine)), whole[mine])
    # and drawing then applying is what Preprocess(train=True) does
    torch.testing.assert_close(pre(batch, train=True, generator=torch.Generator().manual_seed(1)), whole)


def _btc(args: list[str], nproc: int, cwd) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                 "-m", "btc"] if nproc > 1 else [sys.executable, "-m", "btc"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
@pytest.mark.slow
def test_two_process_gloo_cv_equals_one_process(phantom_dir, tmp_path):
    one = _btc(["cv", "--data", phantom_dir, *ARGS, "--out", tmp_path / "one"], 1, tmp_path)
    assert one.returncode == 0, one.stderr
    two = _btc(["cv", "--data", phantom_dir, *ARGS, "--out", tmp_path / "two"], 2, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("cv folder:") == 1  # rank 0 alone prints (and writes)
    a, b = (json.loads((tmp_path / run / "cv.json").read_text()) for run in ("one", "two"))
    assert b["complete"] and len(b["folds"]) == 2
    for fa, fb in zip(a["folds"], b["folds"], strict=True):
        assert fa["metrics"]["confusion_matrix"] == fb["metrics"]["confusion_matrix"]
        assert fa["metrics"]["accuracy"] == fb["metrics"]["accuracy"]
        assert fa["metrics"]["auc"] == pytest.approx(fb["metrics"]["auc"], abs=1e-4)
    for k in range(1, 3):
        ha, hb = (pd.read_csv(tmp_path / run / f"fold-{k}" / "history.csv") for run in ("one", "two"))
        assert len(hb) == 2  # one row per epoch: written once, by rank 0
        columns = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
        np.testing.assert_allclose(hb[columns], ha[columns], atol=1e-5)
        pa, pb = (pd.read_csv(tmp_path / run / f"fold-{k}" / "predictions.csv") for run in ("one", "two"))
        assert pa["path"].tolist() == pb["path"].tolist()
        probs = [c for c in pa.columns if c.startswith("prob_")]
        np.testing.assert_allclose(pb[probs], pa[probs], atol=1e-5)
        assert not list((tmp_path / "two" / f"fold-{k}").glob("*.tmp*"))
