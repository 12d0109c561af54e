"""ImageNet weights without internet: torchvision's URLs reach a local HTTP server through
BTC_MIRROR, timm's through HF_ENDPOINT; TORCH_HOME and HF_HOME are temporary folders, so no test
reads or writes the real caches."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import torch
import torchvision.models as tvm

from btc.download import mirrored
from btc.errors import BtcError
from btc.models import create_model, get_spec, list_models, registry
from btc.models.weights import (
    WeightsUnavailable,
    fetch_weights,
    import_weights,
    load_weights_file,
    pretrained_source,
    resolve_pretrained,
    weights_table,
)
from tests.conftest import run_cli
from tests.localhttp import LocalServer

RESNET18 = tvm.ResNet18_Weights.IMAGENET1K_V1
CHECKPOINT = "resnet18-f37072fd.pth"  # torchvision's file name for RESNET18


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub and Hugging Face caches under tmp_path; network settings cleared."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # torch.hub.set_dir elsewhere must not win
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in ("HF_HUB_CACHE", "HF_ENDPOINT", "BTC_MIRROR", "BTC_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def server(caches, monkeypatch):
    with LocalServer() as s:
        monkeypatch.setenv("BTC_MIRROR", s.url)
        yield s


def checkpoints(root):
    folder = root / "torch" / "hub" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def state_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def random_resnet18(seed: int = 0) -> tuple[torch.nn.Module, bytes, str]:
    """A randomly initialised ImageNet ResNet18, its torch.save bytes and their sha256."""
    torch.manual_seed(seed)
    model = tvm.resnet18()
    data = state_bytes(model)
    return model, data, hashlib.sha256(data).hexdigest()


def publish_resnet18(server, monkeypatch, data: bytes, prefix: str) -> str:
    """Point torchvision's ResNet18 enum at `resnet18-<prefix>.pth`, served by `server`."""
    name = f"resnet18-{prefix}.pth"
    monkeypatch.setattr(RESNET18.value, "url", f"https://download.pytorch.org/models/{name}")
    server.files[f"/models/{name}"] = data
    return name


# --------------------------------------------------------------------------- registry


def test_the_registry_says_which_models_start_pretrained_and_from_where():
    expected = {
        "resnesat": "timm:resnest50d.in1k", "resnest50": "timm:resnest50d.in1k",
        "mobilenet_v2": "torchvision:MobileNet_V2_Weights.IMAGENET1K_V1",
        "resnet18_transfer": "torchvision:ResNet18_Weights.IMAGENET1K_V1",
        "resnet34_improved": "torchvision:ResNet34_Weights.IMAGENET1K_V1",
        "resnet34_c": "torchvision:ResNet34_Weights.IMAGENET1K_V1",
        "resnet50": "torchvision:ResNet50_Weights.IMAGENET1K_V1",
        "densenet121": "torchvision:DenseNet121_Weights.IMAGENET1K_V1",
        "dsconv_cbam": None, "mlp": None, "small_cnn": None,
    }
    assert {name: pretrained_source(name) for name in expected} == expected
    for name in list_models():  # every source names weights torchvision / timm know
        source = get_spec(name).pretrained
        if source and source.startswith("torchvision:"):
            assert tvm.get_weight(source.split(":", 1)[1]).url.endswith(".pth")
    with pytest.raises(BtcError, match="unknown model"):
        pretrained_source("resnet19")


def test_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch):
    monkeypatch.delenv("BTC_MIRROR", raising=False)
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert mirrored(url) == url
    monkeypatch.setenv("BTC_MIRROR", "http://127.0.0.1:8765/pytorch/")
    assert mirrored(url) == "http://127.0.0.1:8765/pytorch/models/resnet18-f37072fd.pth"
    monkeypatch.setenv("BTC_MIRROR", "127.0.0.1:8765")
    with pytest.raises(BtcError, match="BTC_MIRROR"):
        mirrored(url)


# --------------------------------------------------------------------------- torchvision


def test_download_checked_against_the_published_hash_then_read_from_the_cache(server, monkeypatch, caches):
    source, data, sha = random_resnet18()
    name = publish_resnet18(server, monkeypatch, data, sha[:8])
    model = create_model("resnet18_transfer", 4, pretrained=True)
    record = model.weights_record
    assert record.source == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    assert record.verified and record.sha256 == sha and record.published == sha[:8]
    assert record.file == str(caches / "torch" / "hub" / "checkpoints" / name)
    assert checkpoints(caches) == [name]  # under torchvision's own file name
    assert record.loaded == 120 and record.kept == 2  # everything but the new fc
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert model.fc.weight.shape == (4, 512) and model.fc.weight.requires_grad
    assert not model.layer1[0].conv1.weight.requires_grad  # paper 004: frozen backbone
    # the cached file serves the next run, offline too: no second download
    assert len(server.gets(f"/models/{name}")) == 1
    again = create_model("resnet18_transfer", 2, pretrained=True, offline=True).weights_record
    assert again.verified and again.sha256 == sha
    assert len(server.gets(f"/models/{name}")) == 1
    assert json.loads(json.dumps(record.to_dict()))["sha256"] == sha


def test_a_download_that_does_not_match_its_published_hash_is_refused(server, monkeypatch, caches):
    _, data, sha = random_resnet18()
    wrong = "0" * 8 if not sha.startswith("0" * 8) else "1" * 8
    publish_resnet18(server, monkeypatch, data, wrong)
    with pytest.raises(WeightsUnavailable, match=f"does not match the published {wrong}.*deleted") as info:
        resolve_pretrained("resnet18_transfer", create_model("resnet18_transfer", 4), offline=False)
    message = str(info.value)
    assert "\n" not in message and "btc weights fetch resnet18_transfer" in message
    assert checkpoints(caches) == []  # neither the file nor a .part left in the cache


def test_an_interrupted_download_resumes_with_range(server, monkeypatch, capsys, caches):
    _, data, sha = random_resnet18()
    name = publish_resnet18(server, monkeypatch, data, sha[:8])
    path = f"/models/{name}"
    part = len(data) // 10
    server.cut[path] = (part, 3)  # three answers cut after a tenth of the file each
    code, out, err = run_cli(["weights", "fetch", "resnet18_transfer", "-q"], capsys)
    assert code == 1 and err.count("\n") == 1 and "run the same command again to resume" in err
    assert checkpoints(caches) == [name + ".part"]
    code, out, err = run_cli(["weights", "fetch", "resnet18_transfer", "-q", "--json"], capsys)
    assert code == 0, err
    assert server.gets(path) == [None, f"bytes={part}-", f"bytes={2 * part}-", f"bytes={3 * part}-"]
    record = json.loads(out)["resnet18_transfer"]
    assert record["verified"] and record["sha256"] == sha and record["loaded"] is None
    assert checkpoints(caches) == [name]


def test_offline_without_cached_weights_is_one_line_naming_the_fetch_command(server, monkeypatch, caches):
    model = create_model("resnet18_transfer", 4)
    with pytest.raises(WeightsUnavailable) as info:
        resolve_pretrained("resnet18_transfer", model, offline=True)
    assert str(info.value) == (
        f"no ImageNet weights for resnet18_transfer in the torch hub cache "
        f"({caches / 'torch' / 'hub' / 'checkpoints' / CHECKPOINT}) and --offline: run "
        "`btc weights fetch resnet18_transfer` on a machine with internet, or pass --no-pretrained")
    monkeypatch.setenv("BTC_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match=r"and BTC_OFFLINE=1: run `btc weights fetch mobilenet_v2`"):
        create_model("mobilenet_v2", 4, pretrained=True)
    with pytest.raises(WeightsUnavailable, match=r"btc weights fetch needs the network \(BTC_OFFLINE=1\)"):
        fetch_weights("resnet50")
    assert server.requests == []  # nothing was asked of the network
    with pytest.raises(BtcError, match="dsconv_cbam is trained from scratch"):
        resolve_pretrained("dsconv_cbam", create_model("dsconv_cbam", 4), offline=True)


def test_no_network_is_one_line_naming_the_fetch_command(caches, monkeypatch):
    with LocalServer() as closed:
        url = closed.url  # a port nothing listens on once the server is stopped
    monkeypatch.setenv("BTC_MIRROR", url)
    with pytest.raises(WeightsUnavailable) as info:
        create_model("resnet18_transfer", 4, pretrained=True)
    message = str(info.value)
    assert message.startswith(f"cannot download {url}/models/{CHECKPOINT}: ") and "\n" not in message
    assert "run `btc weights fetch resnet18_transfer` on a machine with internet" in message
    assert checkpoints(caches) == []


def test_a_file_already_in_the_cache_is_accepted_on_its_shapes_and_recorded_unverified(caches):
    """The issue's case: a state dict placed under torchvision's file name for ResNet18."""
    source, data, sha = random_resnet18()
    folder = caches / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / CHECKPOINT).write_bytes(data)
    model = create_model("resnet18_transfer", 4, pretrained=True, offline=True)
    record = model.weights_record
    assert (record.sha256, record.verified, record.published) == (sha, False, "f37072fd")
    assert "unverified: published f37072fd" in record.summary() and sha[:12] in record.summary()
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    # a file of another network under that name is refused, with the tensors that differ
    torch.save(tvm.resnet34().state_dict(), folder / CHECKPOINT)
    with pytest.raises(BtcError, match=r"does not hold the weights of torchvision:ResNet18.*: 80 unexpected tensors \(layer1\.2\."):
        create_model("resnet18_transfer", 4, pretrained=True, offline=True)


def test_import_copies_a_checked_file_into_the_cache_under_torchvision_name(caches, capsys, monkeypatch):
    source, data, sha = random_resnet18()
    local = caches / "downloaded.pth"
    local.write_bytes(data)
    code, out, err = run_cli(["weights", "import", "resnet18_transfer", local, "--json"], capsys)
    assert code == 0, err
    record = json.loads(out)
    assert record["file"].endswith(f"checkpoints/{CHECKPOINT}") and record["sha256"] == sha
    assert record["verified"] is False  # a random file is not torchvision's published one
    assert checkpoints(caches) == [CHECKPOINT]
    # the cache now serves offline runs; the listing shows it cached
    create_model("resnet18", 3, pretrained=True, offline=True)
    rows = {r.model: r for r in weights_table()}
    assert rows["resnet18_transfer"].cached and rows["resnet18"].cached
    assert not rows["resnet50"].cached and rows["mlp"].source is None
    code, out, err = run_cli(["weights", "list", "--json"], capsys)
    listed = {r["model"]: r for r in json.loads(out)}
    assert listed["resnet18_transfer"]["cached"] is True and listed["resnesat"]["cache"] == "Hugging Face hub cache"
    # another file for the same weights is never written over the cached one
    _, other, _ = random_resnet18(seed=1)
    (caches / "other.pth").write_bytes(other)
    code, out, err = run_cli(["weights", "import", "resnet18_transfer", caches / "other.pth"], capsys)
    assert code == 1 and "already holds other weights" in err and err.count("\n") == 1
    # a file of another network is refused before it reaches the cache
    torch.save(tvm.resnet34().state_dict(), caches / "resnet34.pth")
    with pytest.raises(BtcError, match="does not hold the weights of torchvision:ResNet50"):
        import_weights("resnet50", caches / "resnet34.pth")
    assert checkpoints(caches) == [CHECKPOINT]
    # a file whose hash is the published one is imported verified
    monkeypatch.setattr(tvm.ResNet50_Weights.IMAGENET1K_V1.value, "url", "https://x/resnet50-0000.pth")
    torch.manual_seed(0)
    r50 = state_bytes(tvm.resnet50())
    name = f"resnet50-{hashlib.sha256(r50).hexdigest()[:8]}.pth"
    monkeypatch.setattr(tvm.ResNet50_Weights.IMAGENET1K_V1.value, "url", f"https://x/{name}")
    (caches / "r50.pth").write_bytes(r50)
    assert import_weights("resnet50", caches / "r50.pth").verified
    assert name in checkpoints(caches)


def test_load_weights_file_records_the_file_and_its_hash(tmp_path):
    torch.manual_seed(0)
    source = create_model("mlp", 2)
    path = tmp_path / "mine.pt"
    torch.save({"model": source.state_dict()}, path)
    target = create_model("mlp", 4)
    record = load_weights_file(target, path)
    assert record.source == "file" and record.file == str(path.resolve())
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and not record.verified
    assert (record.loaded, record.kept) == (6, 2)  # the 4-class head keeps its initialisation
    assert target.weights_report.mismatched == ["fc.weight", "fc.bias"]
    assert torch.equal(target.hidden[0].weight, source.hidden[0].weight)


# --------------------------------------------------------------------------- timm


@pytest.fixture
def tiny_timm_model(monkeypatch):
    """A registered model whose source is a tiny timm network (the ResNeSt file is 100 MB)."""
    timm = pytest.importorskip("timm")
    pytest.importorskip("huggingface_hub")
    safetensors = pytest.importorskip("safetensors.torch")

    def build(num_classes: int, pretrained: bool = False) -> torch.nn.Module:
        return timm.create_model("test_resnet", num_classes=num_classes)

    spec = registry.ModelSpec("tiny_timm", build, paper="", input_size=64, recipe="paper001",
                              cam_layer="layer4", description="test", pretrained="timm:test_resnet.r160_in1k")
    monkeypatch.setitem(registry._REGISTRY, "tiny_timm", spec)
    torch.manual_seed(0)
    source = timm.create_model("test_resnet.r160_in1k")
    return source, safetensors.save({k: v.contiguous() for k, v in source.state_dict().items()})


def serve_hub_file(server, data: bytes, etag: str, commit: str = "a" * 40) -> str:
    path = "/timm/test_resnet.r160_in1k/resolve/main/model.safetensors"
    server.files[path] = data
    server.headers[path] = {"X-Repo-Commit": commit, "ETag": f'"{etag}"'}
    return path


def test_timm_weights_come_from_hf_endpoint_into_the_hub_cache_checked(server, tiny_timm_model, monkeypatch, caches):
    source, data = tiny_timm_model
    sha = hashlib.sha256(data).hexdigest()
    path = serve_hub_file(server, data, sha)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    model = create_model("tiny_timm", 3, pretrained=True)
    record = model.weights_record
    assert record.source == "timm:test_resnet.r160_in1k" and record.verified and record.sha256 == sha
    repo = caches / "hf" / "hub" / "models--timm--test_resnet.r160_in1k"
    assert (repo / "blobs" / sha).is_file() and record.file == str(repo / "snapshots" / ("a" * 40) / "model.safetensors")
    own = model.state_dict()
    same = [k for k, v in source.state_dict().items() if own[k].shape == v.shape and torch.equal(own[k], v)]
    assert record.kept == 2 and len(same) == len(own) - 2  # all but the new head
    assert len(server.gets(path)) == 1
    offline = create_model("tiny_timm", 3, pretrained=True, offline=True).weights_record
    assert offline.verified and len(server.gets(path)) == 1


def test_timm_download_with_a_wrong_published_hash_is_deleted(server, tiny_timm_model, monkeypatch, caches):
    _, data = tiny_timm_model
    serve_hub_file(server, data, "f" * 64)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    with pytest.raises(WeightsUnavailable, match="does not match the published f{64}") as info:
        create_model("tiny_timm", 3, pretrained=True)
    assert "\n" not in str(info.value) and "btc weights fetch tiny_timm" in str(info.value)
    repo = caches / "hf" / "hub" / "models--timm--test_resnet.r160_in1k"
    assert not any((repo / "blobs").glob("*")) and not any((repo / "snapshots").rglob("*.safetensors"))
    with pytest.raises(WeightsUnavailable, match="Hugging Face hub cache"):
        create_model("tiny_timm", 3, pretrained=True, offline=True)


def test_resnesat_loads_an_imported_timm_resnest50d_file_offline_but_its_gates(caches, capsys):
    timm = pytest.importorskip("timm")
    safetensors = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    ref = timm.create_model("resnest50d", pretrained=False)
    local = caches / "resnest50d.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(local))
    code, out, err = run_cli(["weights", "import", "resnesat", local], capsys)
    assert code == 0 and "imported resnesat: timm:resnest50d.in1k" in out
    assert "unverified: no published hash" in out  # offline, the hub's hash is not known
    model = create_model("resnesat", 4, pretrained=True, offline=True)
    record = model.weights_record
    assert record.sha256 == hashlib.sha256(local.read_bytes()).hexdigest() and not record.verified
    assert torch.equal(model.layer3[2].conv2.fc1.weight, ref.layer3[2].conv2.fc1.weight)
    gates = [k for k in model.state_dict() if ".sa." in k]
    assert record.kept == len(gates) + 2  # the 16 attention gates and the new head
    assert create_model("resnest50", 4, pretrained=True, offline=True).weights_record.kept == 2
