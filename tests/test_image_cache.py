"""Decode once, share between processes (issue 17 point 3): btc.engine.image_cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from btc.data import dataset as dataset_module
from btc.engine import image_cache


def test_second_process_reads_the_cache_instead_of_decoding(phantom_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_CACHE", str(tmp_path / "cache"))
    import pandas as pd

    paths = pd.read_csv(phantom_dir / "manifest.csv")["path"].tolist()[:10]
    first = image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    assert first.dtype == torch.uint8 and first.shape == (10, 1, 32, 32)
    assert len(list((tmp_path / "cache" / "images").glob("*.npy"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_cache, "load_images", no_decoding)
    again = image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    assert torch.equal(first, again)
    expected = dataset_module.load_images([phantom_dir / p for p in paths], 32, "area")
    assert torch.equal(again, expected)  # the cache holds exactly what decoding gives


def test_a_changed_dataset_or_size_never_reads_a_stale_array(phantom_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_CACHE", str(tmp_path / "cache"))
    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(phantom_dir, data)
    paths = pd.read_csv(data / "manifest.csv")["path"].tolist()[:4]
    key = image_cache.cache_key(data / "manifest.csv", paths, 32, "area")
    assert key != image_cache.cache_key(data / "manifest.csv", paths, 48, "area")
    assert key != image_cache.cache_key(data / "manifest.csv", paths[:3], 32, "area")
    with open(data / "manifest.csv", "a") as f:
        f.write("\n")
    assert key != image_cache.cache_key(data / "manifest.csv", paths, 32, "area")


def test_a_damaged_cache_file_is_decoded_again(phantom_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BTC_CACHE", str(tmp_path / "cache"))
    import pandas as pd

    paths = pd.read_csv(phantom_dir / "manifest.csv")["path"].tolist()[:3]
    good = image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    (file,) = (tmp_path / "cache" / "images").glob("*.npy")
    file.write_bytes(b"garbage")
    again = image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    assert torch.equal(good, again) and np.load(file).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("writable", [True])
def test_cached_tensor_is_writable_copy_on_write(phantom_dir, tmp_path, monkeypatch, writable):
    monkeypatch.setenv("BTC_CACHE", str(tmp_path / "cache"))
    import pandas as pd

    paths = pd.read_csv(phantom_dir / "manifest.csv")["path"].tolist()[:3]
    image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    mapped = image_cache.cached_images(phantom_dir, phantom_dir / "manifest.csv", paths, 32, "area")
    mapped[0].zero_()  # writing the mapped copy never changes the cache file
    (file,) = (tmp_path / "cache" / "images").glob("*.npy")
    assert np.load(file)[0].any()
