"""Honest runs (issue 14): pretrained recipes never fall back silently to random weights, and
every run records its provenance and its deviations from the paper's protocol."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from btc.runfolder import RunFolder
from tests.conftest import run_cli

ARGS = ["--epochs", "1", "--image-size", "32", "--batch-size", "16", "--device", "cpu", "-q"]


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    hub = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("BTC_OFFLINE", "1")
    return hub


def provenance(run) -> dict:
    return RunFolder(run).read_config()["provenance"]


def test_a_pretrained_recipe_without_weights_stops_with_the_fetch_command(phantom_dir, empty_hub, tmp_path, capsys):
    code, out, err = run_cli(["train", "--model", "resnet18_transfer", "--data", phantom_dir, *ARGS,
                              "--out", tmp_path / "r"], capsys)
    assert code == 1 and "btc weights fetch resnet18_transfer" in err and "--no-pretrained" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_no_pretrained_runs_and_is_recorded_as_a_deviation(phantom_dir, empty_hub, tmp_path, capsys):
    code, out, err = run_cli(["train", "--model", "resnet18_transfer", "--data", phantom_dir, *ARGS,
                              "--no-pretrained", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    record = provenance(tmp_path / "r")
    assert record["initial_weights"] == {"source": "random"}
    assert "random initialisation (paper: ImageNet weights)" in record["deviations"]
    assert "image size 32 (paper: 224)" in record["deviations"]
    assert "NOT the paper's protocol" in out
    assert record["dataset"]["manifest_sha256"] == hashlib.sha256(
        (phantom_dir / "manifest.csv").read_bytes()).hexdigest()
    assert record["seed"] == 0 and record["versions"]["torch"] == torch.__version__
    code, report, err = run_cli(["report", tmp_path / "r", "--paper", "004"], capsys)
    assert code == 0, err
    assert "not the paper's protocol" in report and "random initialisation (paper: ImageNet weights)" in report


def test_weights_in_the_torch_hub_cache_are_used_and_named(phantom_dir, empty_hub, tmp_path, capsys):
    checkpoints = empty_hub / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(123)
    state = torchvision.models.resnet18().state_dict()
    path = checkpoints / "resnet18-f37072fd.pth"  # torchvision's file name for IMAGENET1K_V1
    torch.save(state, path)
    code, out, err = run_cli(["train", "--model", "resnet18_transfer", "--data", phantom_dir, *ARGS,
                              "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    weights = provenance(tmp_path / "r")["initial_weights"]
    assert weights["source"] == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    assert weights["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights["verified"] is False  # not the published file: accepted on its shapes only
    assert "random initialisation" not in " ".join(provenance(tmp_path / "r")["deviations"])
    best = torch.load(tmp_path / "r" / "checkpoint-best.pt", weights_only=True)["model"]
    frozen = [k for k in best if k.endswith("layer1.0.conv1.weight")][0]
    assert torch.equal(best[frozen], state["layer1.0.conv1.weight"])  # the frozen backbone is the file's
    assert "NOT the paper's protocol" in out  # -q keeps the final line and its verdict
    code, report, err = run_cli(["report", tmp_path / "r", "--paper", "004"], capsys)
    assert code == 0, err
    assert "torchvision:ResNet18_Weights.IMAGENET1K_V1" in report and weights["sha256"][:12] in report


def test_from_scratch_models_say_nothing_about_weights(phantom_dir, empty_hub, tmp_path, capsys):
    # paper 002's recipe says pretrained, but the paper trains its MLP from scratch
    code, out, err = run_cli(["train", "--model", "mlp", "--data", phantom_dir, *ARGS, "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    assert "weights" not in err.lower()
    record = provenance(tmp_path / "r")
    assert record["initial_weights"] == {"source": "random"}
    assert not any("initialisation" in d for d in record["deviations"])


def test_the_papers_protocol_has_no_deviation(phantom_dir, tmp_path):
    from btc.data.manifest import load_dataset
    from btc.engine.config import resolve_config
    from btc.engine.provenance import dataset_fingerprint, deviations

    config = resolve_config("dsconv_cbam", task="multiclass", overrides={"device": "cpu", "seed": 3})
    fingerprint = dataset_fingerprint(phantom_dir, load_dataset(phantom_dir).info)
    assert fingerprint["size"] == 64  # the phantom is prepared at 64 px: enlarged to the paper's 224
    assert deviations(config, {"source": "random"}, fingerprint) == [
        "images prepared at 64 px, enlarged to 224 px (paper: 224 px images)"]
    fingerprint["size"] = 224
    assert deviations(config, {"source": "random"}, fingerprint) == []
    changed = resolve_config("dsconv_cbam", task="multiclass", overrides={"epochs": 2, "lr": 0.01})
    assert deviations(changed, {"source": "random"}, fingerprint) == ["lr 0.01 (paper: 0.001)", "epochs 2 (paper: 35)"]
