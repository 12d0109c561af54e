"""Shared fixtures: the real data beside the repository, a phantom dataset, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from btc.cli import main

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(2)


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} not present (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _image_cache(tmp_path_factory):
    """Decoded-image caches of the tests go to a temporary folder, never the user's cache."""
    import os

    os.environ["BTC_CACHE"] = str(tmp_path_factory.mktemp("btc-cache"))


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """A small phantom dataset (4 classes × 24 images, 64 px, 4 slices per patient)."""
    from btc.data.sources.phantom import prepare_phantom

    out = tmp_path_factory.mktemp("phantom") / "data"
    prepare_phantom(out, per_class=24, size=64, per_patient=4, seed=0)
    return out


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `btc ARGS` in-process; return (exit code, stdout, stderr)."""
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
