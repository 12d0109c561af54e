"""`btc.data.png` writes OpenCV's PNG bytes (issue 17.1: prepare's largest per-image cost).

- for 2-D uint8 images of every shape tried (one pixel, one row or column, small images whose
  zlib window libpng narrows, 1024 × 1024), flat or noisy or real: the same bytes as
  `cv2.imencode(".png", image)`;
- on the real Kaggle files at their size and at 256 px, the size prepare writes: the same bytes;
- another decoder (Pillow) reads the same pixels;
- without zlib-ng, and for what is not 2-D uint8, OpenCV's encoder is used.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from btc.data import png
from btc.data.images import ImageReadError, encode_png

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SHAPES = [(1, 1), (1, 2), (2, 1), (3, 3), (8, 8), (17, 31), (31, 17), (64, 64), (100, 7), (7, 100), (90, 90),
          (127, 129), (128, 128), (224, 224), (256, 256), (300, 1000), (1, 5000), (5000, 1), (1024, 1024)]


def opencv_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def images_of(shape: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    h, w = shape
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = ((np.sin(xx / 9.0) + np.cos(yy / 13.0)) * 60 + 128).astype(np.uint8)  # long runs, as an MRI's background
    return [np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8), noise, smooth]


@pytest.mark.skipif(png.zlib_ng is None, reason="zlib-ng is not installed: encode_png is OpenCV's encoder itself")
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{h}x{w}" for h, w in SHAPES])
def test_gray_png_is_opencvs_bytes(shape):
    for image in images_of(shape, np.random.default_rng(shape[0] * 7919 + shape[1])):
        data = png.encode_gray_png(image)
        assert data == opencv_png(image)
        assert encode_png(image) == data


def test_another_decoder_reads_the_same_pixels():
    for image in images_of((90, 130), np.random.default_rng(0)):
        decoded = Image.open(io.BytesIO(encode_png(image)))
        assert decoded.mode == "L" and np.array_equal(np.asarray(decoded), image)


@pytest.mark.skipif(png.zlib_ng is None, reason="zlib-ng is not installed")
def test_real_kaggle_images_give_opencvs_bytes():
    folder = DATA / "kaggle-224"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (see ../shared/data/README.md)")
    files = sorted(folder.rglob("*.jpg"))[::35]  # 200 files over every split and class
    originals = sorted((DATA / "kaggle-original-sample").rglob("*.jpg"))[::4]
    assert len(files) >= 190
    for path in files + originals:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        for image in (gray, cv2.resize(gray, (256, 256))):
            assert png.encode_gray_png(image) == opencv_png(image), path


def test_without_zlib_ng_and_for_other_images_opencv_encodes(monkeypatch):
    calls = []
    real = png.encode_gray_png
    monkeypatch.setattr(png, "encode_gray_png", lambda image: calls.append(image.shape) or real(image))
    colour = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    deep = np.random.default_rng(2).integers(0, 65536, (20, 30), dtype=np.uint16)
    for image in (colour, deep):
        assert encode_png(image) == opencv_png(image)
    assert calls == []  # never the gray fast path
    gray = np.arange(600, dtype=np.uint8).reshape(20, 30)
    monkeypatch.setattr(png, "zlib_ng", None)
    assert encode_png(gray) == opencv_png(gray) and calls == []


def test_an_image_opencv_cannot_encode_is_one_error(monkeypatch):
    monkeypatch.setattr(png.cv2, "imencode", lambda ext, image: (False, None))
    with pytest.raises(ImageReadError, match="PNG encoding failed"):
        encode_png(np.zeros((4, 4, 3), np.uint8))


def test_what_opencv_refuses_is_refused_in_one_line():
    """Past libpng's limit of 1,000,000 px a side OpenCV writes nothing: neither does btc (it wrote
    a PNG no OpenCV could read). Empty images and 2-channel ones: one line, no OpenCV source path."""
    too_wide = np.zeros((1, 1_000_001), np.uint8)
    assert not cv2.imencode(".png", too_wide)[0]
    for image in (too_wide, np.zeros((0, 5), np.uint8), np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(ImageReadError, match="^PNG encoding failed: OpenCV cannot write") as e:
            encode_png(image)
        assert "\n" not in str(e.value) and ".cpp" not in str(e.value)
    limit = np.zeros((1, png.LIBPNG_MAX_SIDE), np.uint8)
    assert encode_png(limit) == opencv_png(limit)


def test_gray_encoder_refuses_what_it_does_not_write():
    for image in (np.zeros((0, 5), np.uint8), np.array([[256, 257, 511]], np.uint16), np.zeros((3, 3, 1), np.uint8)):
        with pytest.raises(png.EncodeError, match="takes a non-empty 2-D uint8 image"):
            png.encode_gray_png(image)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, on purpose
def test_array_subclasses_and_views_give_opencvs_bytes():
    base = np.random.default_rng(3).integers(0, 256, (60, 80), dtype=np.uint8)
    for image in (np.matrix(base), base.T, base[::-2, 1::3], np.asfortranarray(base)):
        assert encode_png(image) == opencv_png(np.asarray(image))
