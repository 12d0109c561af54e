"""`btc fetch figshare | kaggle` without internet: a local HTTP server stands in for the figshare
API and its file host (reached through BTC_MIRROR), a stub module for the `kaggle` package."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import types
import zipfile
from pathlib import Path

import pytest

from btc.data.fetch import FIGSHARE_API, KAGGLE_DATASET, fetch_figshare, fetch_kaggle
from btc.errors import BtcError
from btc.progress import Progress
from tests.conftest import run_cli, shared_data
from tests.localhttp import LocalServer

API_PATH = "/v2/articles/1512427"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("BTC_OFFLINE", raising=False)
    with LocalServer() as s:
        monkeypatch.setenv("BTC_MIRROR", s.url)
        yield s


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def publish(server: LocalServer, files: dict[str, bytes], md5: dict[str, str] | None = None) -> None:
    """Serve `files` as the figshare article lists them (figshare's own hosts in the URLs)."""
    entries = []
    for i, (name, data) in enumerate(files.items()):
        file_id = 3381290 + i
        entries.append({"id": file_id, "name": name, "size": len(data),
                        "computed_md5": (md5 or {}).get(name, hashlib.md5(data).hexdigest()),
                        "download_url": f"https://ndownloader.figshare.com/files/{file_id}"})
        server.files[f"/files/{file_id}"] = data
    server.files[API_PATH] = json.dumps({"id": 1512427, "files": entries}).encode()


def small_dataset() -> dict[str, bytes]:
    return {"brainTumorDataPublic_1-2.zip": zip_bytes({"1.mat": b"one" * 100, "2.mat": b"two" * 50}),
            "brainTumorDataPublic_3-3.zip": zip_bytes({"3.mat": b"three" * 70}),
            "cvind.mat": b"folds" * 20}


def test_figshare_lists_downloads_checks_and_unpacks_then_skips_what_is_complete(server, tmp_path):
    publish(server, small_dataset())
    out = tmp_path / "figshare"
    result = fetch_figshare(out)
    assert FIGSHARE_API.endswith(API_PATH)
    assert sorted(p.name for p in out.iterdir()) == [".btc-fetch.json", "1.mat", "2.mat", "3.mat",
                                                     "cvind.mat"]  # the zips are gone
    assert (out / "1.mat").read_bytes() == b"one" * 100 and (out / "3.mat").read_bytes() == b"three" * 70
    assert [(f.name, f.status, f.members) for f in result.files] == [
        ("brainTumorDataPublic_1-2.zip", "unpacked", 2), ("brainTumorDataPublic_3-3.zip", "unpacked", 1),
        ("cvind.mat", "downloaded", 0)]
    record = json.loads((out / ".btc-fetch.json").read_text())
    assert record["doi"] == "10.6084/m9.figshare.1512427"
    assert record["files"]["brainTumorDataPublic_1-2.zip"]["members"] == ["1.mat", "2.mat"]
    assert result.next_command == f"btc prepare figshare {out} OUT"
    # a second run asks the API again but downloads nothing
    downloads = len([r for r in server.requests if r[1].startswith("/files/")])
    again = fetch_figshare(out)
    assert {f.status for f in again.files} == {"present"}
    assert len([r for r in server.requests if r[1].startswith("/files/")]) == downloads
    # a member deleted by hand is fetched again
    (out / "2.mat").unlink()
    third = fetch_figshare(out, keep_archives=True)
    assert third.files[0].status == "unpacked" and (out / "2.mat").is_file()
    assert (out / "brainTumorDataPublic_1-2.zip").is_file()


class RecordingProgress(Progress):
    """Keeps each bar's description, total and the bytes it advanced by."""

    def __init__(self) -> None:
        self.bars: list[list] = []

    def add(self, description, total=None, *, transient=False):
        self.bars.append([description, total, 0])
        return len(self.bars) - 1

    def update(self, task, *, advance=0, completed=None, total=None, info=None, description=None):
        bar = self.bars[task]
        bar[2] = (completed if completed is not None else bar[2]) + advance
        bar[1] = total if total is not None else bar[1]


def test_figshare_downloads_report_their_progress_and_a_missing_file_is_one_line(server, tmp_path):
    files = small_dataset()
    publish(server, files)
    progress = RecordingProgress()
    fetch_figshare(tmp_path / "figshare", progress=progress)
    downloads = {d: (total, done) for d, total, done in progress.bars if d.startswith("downloading")}
    assert downloads["downloading cvind.mat"] == (len(files["cvind.mat"]), len(files["cvind.mat"]))
    assert ("unpacking brainTumorDataPublic_1-2.zip", 2, 2) in [tuple(b) for b in progress.bars]
    del server.files["/files/3381292"]  # cvind.mat is listed but the host has lost it
    with pytest.raises(BtcError, match=r"cannot download http://127\.0\.0\.1:\d+/files/3381292: HTTP 404"):
        fetch_figshare(tmp_path / "other")


def test_figshare_md5_mismatch_is_refused_and_nothing_is_left(server, tmp_path):
    files = small_dataset()
    publish(server, files, md5={"cvind.mat": "0" * 32})
    out = tmp_path / "figshare"
    with pytest.raises(BtcError, match=r"md5 .* does not match the published 0{32}.*deleted") as info:
        fetch_figshare(out)
    assert "\n" not in str(info.value)
    assert not (out / "cvind.mat").exists() and not (out / "cvind.mat.part").exists()


def test_figshare_interrupted_download_resumes_with_range(server, tmp_path):
    files = {"cvind.mat": bytes(range(256)) * 64}  # 16 KiB
    publish(server, files)
    path = "/files/3381290"
    server.cut[path] = (4000, 3)  # three answers cut after 4000 bytes each
    out = tmp_path / "figshare"
    with pytest.raises(BtcError, match="interrupted after 12000 bytes.*run the same command again"):
        fetch_figshare(out)
    assert server.gets(path) == [None, "bytes=4000-", "bytes=8000-"]  # resumed within the call
    assert (out / "cvind.mat.part").stat().st_size == 12000 and not (out / "cvind.mat").exists()
    result = fetch_figshare(out)  # the re-run resumes where the file stops
    assert server.gets(path)[-1] == "bytes=12000-"
    assert (out / "cvind.mat").read_bytes() == files["cvind.mat"]
    assert result.files[0].status == "downloaded" and not (out / "cvind.mat.part").exists()


def test_figshare_unsafe_archive_member_is_refused(server, tmp_path):
    publish(server, {"evil.zip": zip_bytes({"../outside.mat": b"x"})})
    with pytest.raises(BtcError, match="unsafe path '../outside.mat'"):
        fetch_figshare(tmp_path / "figshare")
    assert not (tmp_path / "outside.mat").exists()


def test_figshare_offline_is_one_line_and_touches_no_network(server, tmp_path, monkeypatch, capsys):
    publish(server, small_dataset())
    code, out, err = run_cli(["fetch", "figshare", tmp_path / "f", "--offline"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "needs the network (--offline)" in err
    monkeypatch.setenv("BTC_OFFLINE", "1")
    with pytest.raises(BtcError, match=r"needs the network \(BTC_OFFLINE=1\)"):
        fetch_figshare(tmp_path / "f")
    assert server.requests == []


def test_figshare_download_is_ready_for_prepare(server, tmp_path, capsys):
    """Real slices in the zips: `btc fetch figshare DIR` then `btc prepare figshare DIR OUT`."""
    sample = shared_data("figshare-sample")
    mats = sorted(p for p in sample.glob("*.mat") if p.name != "cvind.mat")[:3]
    publish(server, {
        "brainTumorDataPublic_a.zip": zip_bytes({p.name: p.read_bytes() for p in mats[:2]}),
        "brainTumorDataPublic_b.zip": zip_bytes({p.name: p.read_bytes() for p in mats[2:]}),
        "cvind.mat": (sample / "cvind.mat").read_bytes()})
    raw, prepared = tmp_path / "raw", tmp_path / "prepared"
    code, out, err = run_cli(["fetch", "figshare", raw, "-q", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["folder"] == str(raw)
    code, out, err = run_cli(["prepare", "figshare", raw, prepared, "--size", "64", "-q"], capsys)
    assert code == 0, err
    manifest = (prepared / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 3  # header + the three slices, each with its official fold
    assert all(line.split(",")[0].endswith(".png") for line in manifest[1:])


# --------------------------------------------------------------------------- kaggle


def kaggle_stub(monkeypatch, *, layout: bool = True, authenticate_error: str | None = None):
    calls = []

    class Api:
        def authenticate(self) -> None:
            if authenticate_error:
                raise OSError(authenticate_error)

        def dataset_download_files(self, dataset, path, unzip, quiet):
            calls.append((dataset, path, unzip))
            for split in ("Training", "Testing") if layout else ("Training",):
                for name in ("glioma", "meningioma", "notumor", "pituitary"):
                    folder = Path(path) / split / name
                    folder.mkdir(parents=True)
                    (folder / "a.jpg").write_bytes(b"jpg")

    module = types.ModuleType("kaggle")
    module.api = Api()
    monkeypatch.setitem(sys.modules, "kaggle", module)
    return calls


def test_kaggle_uses_the_kaggle_api_and_checks_the_layout(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BTC_OFFLINE", raising=False)
    calls = kaggle_stub(monkeypatch)
    result = fetch_kaggle(tmp_path / "kaggle")
    assert calls == [(KAGGLE_DATASET, str(tmp_path / "kaggle"), True)]
    assert [f.name for f in result.files][:2] == ["Training/glioma", "Training/meningioma"]
    assert len(result.files) == 8 and all(f.members == 1 for f in result.files)
    code, out, err = run_cli(["fetch", "kaggle", tmp_path / "again", "-q"], capsys)
    assert code == 0 and f"next: btc prepare kaggle {tmp_path / 'again'} OUT" in out


def test_kaggle_without_the_package_or_its_token_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BTC_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "kaggle", None)  # import kaggle → ImportError
    with pytest.raises(BtcError) as info:
        fetch_kaggle(tmp_path / "k")
    message = str(info.value)
    assert "\n" not in message and "not installed" in message
    assert "https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset" in message
    assert "DIR/Training/ and DIR/Testing/" in message and "notumor/" in message
    kaggle_stub(monkeypatch, authenticate_error="Could not find kaggle.json. Make sure it's located in ~/.kaggle")
    with pytest.raises(BtcError, match=r"not configured \(Could not find kaggle.json"):
        fetch_kaggle(tmp_path / "k")
    kaggle_stub(monkeypatch, layout=False)
    with pytest.raises(BtcError, match="lacks Testing/glioma"):
        fetch_kaggle(tmp_path / "partial")
    monkeypatch.setenv("BTC_OFFLINE", "1")
    with pytest.raises(BtcError, match=r"fetch kaggle needs the network \(BTC_OFFLINE=1\)"):
        fetch_kaggle(tmp_path / "k")
