"""Batched preprocessing (btc.data.dataset) against torchvision's reference transforms on real
MRI images: crops, flips, brightness and normalisation give the same tensors."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from btc.data.dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocess,
    crop_batch,
    decode_resized,
    load_images,
)
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def batch():
    root = shared_data("kaggle-original-sample")
    paths = sorted(root.glob("Training/*/*.jpg"))[:6]
    return load_images(paths, 72, "area")


def test_decode_is_grayscale_uint8_of_requested_size(batch):
    assert batch.shape == (6, 1, 72, 72) and batch.dtype == torch.uint8
    assert batch.float().std() > 10  # real content, not blank


def test_crop_matches_torchvision(batch):
    top, left = torch.tensor([0, 3, 8, 1, 5, 2]), torch.tensor([8, 0, 4, 7, 2, 6])
    ours = crop_batch(batch, top, left, 64)
    for i in range(len(batch)):
        assert torch.equal(ours[i], TF.crop(batch[i], int(top[i]), int(left[i]), 64, 64))
    centre = Preprocess(64, 72, crop="random", normalize="unit")(batch, train=False)
    assert torch.allclose(centre, TF.center_crop(batch, [64, 64]).float().div(255).expand(-1, 3, -1, -1))


def test_flips_and_brightness_match_torchvision(batch):
    x = batch.float() / 255
    always = Preprocess(72, 72, normalize="unit", hflip=1.0, vflip=1.0)
    out = always(batch, train=True, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, TF.vflip(TF.hflip(x)).expand(-1, 3, -1, -1))
    bright = Preprocess(72, 72, normalize="unit", brightness=0.3)
    out = bright(batch, train=True, generator=torch.Generator().manual_seed(5))
    factors = torch.empty(len(batch)).uniform_(0.7, 1.3, generator=torch.Generator().manual_seed(5))
    for i, f in enumerate(factors):
        assert torch.allclose(out[i], TF.adjust_brightness(x[i], float(f)).expand(3, -1, -1), atol=1e-6)


def test_normalisations(batch):
    x = batch.float() / 255
    imagenet = Preprocess(72, 72, normalize="imagenet")(batch)
    assert torch.allclose(imagenet, TF.normalize(x.expand(-1, 3, -1, -1), IMAGENET_MEAN, IMAGENET_STD), atol=1e-6)
    std = Preprocess(72, 72, normalize="standardize")(batch)
    flat = std.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(6), atol=1e-5)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(6), atol=1e-4)


def test_augmentation_is_seeded_and_varies(batch):
    p = Preprocess(64, 72, crop="random", hflip=0.5, vflip=0.5, brightness=0.2)
    a = p(batch, train=True, generator=torch.Generator().manual_seed(1))
    b = p(batch, train=True, generator=torch.Generator().manual_seed(1))
    c = p(batch, train=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_decode_resized_handles_rgba_png_named_jpg():
    root = shared_data("kaggle-original-sample")
    for path in sorted(root.rglob("*.jpg")):
        arr = decode_resized(path, 32)
        assert arr.shape == (32, 32) and arr.dtype == np.uint8
