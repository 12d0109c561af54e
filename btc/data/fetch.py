"""`btc fetch`: the public datasets, downloaded, checked and laid out for `btc prepare`.

- Figshare (Cheng et al., "brain tumor dataset", doi 10.6084/m9.figshare.1512427; paper 003's
  tumour classes, paper 001's tumour-type task): the figshare API
  (`https://api.figshare.com/v2/articles/1512427`) lists the article's files with their size and
  md5 (`computed_md5`): four zip parts of `<id>.mat` slices (MATLAB v7.3) and `cvind.mat`, the
  author's patient-wise 5-fold split. Each file is downloaded resumably (`btc.download`), checked
  against its md5, and the zips are unpacked into the folder, so that `btc prepare figshare DIR`
  finds every `.mat` and `cvind.mat` under it. A zip is deleted once unpacked (unless
  `keep_archives`); `.btc-fetch.json` records what was fetched (names, sizes, md5, members) and
  lets a second run skip what is complete.
- Kaggle ("Brain Tumor MRI Dataset", M. Nickparvar; papers 002 and 004): through the `kaggle`
  package's API when it is installed and configured (`pip install 'btc[kaggle]'`, a token in
  `~/.kaggle/kaggle.json`), else a one-line error saying where to get it and the layout
  `btc prepare kaggle` expects (`Training/`, `Testing/` × `glioma`, `meningioma`, `notumor`,
  `pituitary`).

Offline (`--offline`, `BTC_OFFLINE=1`) both refuse with one line. `BTC_MIRROR` replaces the host
of the figshare API and file URLs (see `btc.download`).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from btc.download import Checksum, DownloadError, download, fetch_json, file_digest, offline_reason
from btc.errors import BtcError
from btc.io import atomic_write, atomic_write_json
from btc.progress import SILENT, Progress

FIGSHARE_DOI = "10.6084/m9.figshare.1512427"
FIGSHARE_API = "https://api.figshare.com/v2/articles/1512427"
KAGGLE_DATASET = "masoudnickparvar/brain-tumor-mri-dataset"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}"
KAGGLE_SPLITS = ("Training", "Testing")
KAGGLE_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
RECORD = ".btc-fetch.json"
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class FetchedFile:
    """One file of a dataset: its published size and md5, and what this run did with it
    (`downloaded`, `present`: already there and checked, `unpacked`: a zip, now unpacked)."""

    name: str
    size: int
    md5: str
    status: str
    members: int = 0  # files unpacked from it (zips)


@dataclass
class FetchResult:
    """What `fetch_figshare` / `fetch_kaggle` left in `folder`, and the next command."""

    dataset: str
    folder: Path
    files: list[FetchedFile] = field(default_factory=list)
    next_command: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        return d


def _refuse_offline(what: str, offline: bool, hint: str) -> None:
    if reason := offline_reason(offline):
        raise BtcError(f"btc fetch {what} needs the network ({reason}): {hint}")


# --------------------------------------------------------------------------- figshare


@dataclass(frozen=True)
class _Listed:
    name: str
    url: str
    size: int
    md5: str


def figshare_files(api_url: str = FIGSHARE_API) -> list[_Listed]:
    """The article's files as the figshare API lists them (name, download URL, size, md5)."""
    answer = fetch_json(api_url)
    files = answer.get("files") if isinstance(answer, dict) else None
    if not isinstance(files, list) or not files:
        raise BtcError(f"{api_url}: the answer lists no files")
    listed = []
    for f in files:
        entry = f if isinstance(f, dict) else {}
        name, url, size = entry.get("name"), entry.get("download_url"), entry.get("size")
        md5 = str(entry.get("computed_md5") or entry.get("supplied_md5") or "").lower()
        plain_name = isinstance(name, str) and re.fullmatch(r"[\w][\w.\-]*", name) is not None
        if not (plain_name and isinstance(url, str) and _MD5.match(md5) and isinstance(size, int)):
            raise BtcError(f"{api_url}: unexpected file entry {json.dumps(f)[:200]}")
        listed.append(_Listed(name, url, size, md5))
    return listed


def _read_record(folder: Path) -> dict[str, Any]:
    path = folder / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _safe_member(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath | None:
    """The member's relative path, None for folders and macOS metadata; refuses paths that
    would leave the folder."""
    path = PurePosixPath(info.filename)
    if info.is_dir() or not path.parts or path.parts[0] == "__MACOSX":
        return None
    if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        raise BtcError(f"{archive.name}: unsafe path {info.filename!r} in the archive")
    return path


def unpack(archive: Path, folder: Path, progress: Progress = SILENT) -> list[str]:
    """Unpack `archive` into `folder` (each member written atomically; a member already there
    with its size is kept), return the members' relative paths."""
    members: list[str] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = [(i, p) for i in zf.infolist() if (p := _safe_member(i, archive)) is not None]
            with progress.bar(f"unpacking {archive.name}", len(infos)) as advance:
                for info, rel in infos:
                    target = folder.joinpath(*rel.parts)
                    if not (target.is_file() and target.stat().st_size == info.file_size):
                        def write(tmp: Path, info: zipfile.ZipInfo = info) -> None:
                            with zf.open(info) as src, open(tmp, "wb") as dst:
                                shutil.copyfileobj(src, dst, 1 << 20)

                        atomic_write(target, write)
                    members.append(rel.as_posix())
                    advance()
    except zipfile.BadZipFile as e:
        raise BtcError(f"{archive}: not a valid zip archive ({e})") from None
    return members


def fetch_figshare(folder: str | Path, *, offline: bool = False, keep_archives: bool = False,
                   progress: Progress = SILENT) -> FetchResult:
    """Download Cheng's Figshare dataset into `folder`, check every md5 and unpack the zips."""
    folder = Path(folder)
    _refuse_offline("figshare", offline, f"download the files of https://doi.org/{FIGSHARE_DOI} "
                    f"elsewhere, unpack the zips into {folder} and copy it here")
    if folder.exists() and not folder.is_dir():
        raise BtcError(f"{folder} is not a folder")
    listed = figshare_files()
    folder.mkdir(parents=True, exist_ok=True)
    record = _read_record(folder)
    done: dict[str, Any] = record.get("files", {}) if isinstance(record.get("files"), dict) else {}
    result = FetchResult("figshare", folder, next_command=f"btc prepare figshare {folder} OUT")
    for item in listed:
        path = folder / item.name
        is_zip = item.name.lower().endswith(".zip")
        previous = done.get(item.name, {})
        if (is_zip and previous.get("md5") == item.md5 and previous.get("members")
                and all((folder / m).is_file() for m in previous["members"])):
            result.files.append(FetchedFile(item.name, item.size, item.md5, "present",
                                            len(previous["members"])))
            continue
        if path.is_file() and path.stat().st_size == item.size and file_digest(path, "md5") == item.md5:
            status = "present"
        else:
            try:
                download(item.url, path, checksum=Checksum("md5", item.md5), size=item.size,
                         progress=progress, description=f"downloading {item.name}")
            except DownloadError as e:
                raise BtcError(f"{e} (figshare file {item.name})") from None
            status = "downloaded"
        fetched = FetchedFile(item.name, item.size, item.md5, status)
        entry: dict[str, Any] = {"size": item.size, "md5": item.md5}
        if is_zip:
            members = unpack(path, folder, progress)
            entry["members"] = members
            fetched.members, fetched.status = len(members), "unpacked"
            if not keep_archives:
                path.unlink()
        done[item.name] = entry
        atomic_write_json(folder / RECORD, {"dataset": "figshare", "doi": FIGSHARE_DOI,
                                            "api": FIGSHARE_API, "files": done})
        result.files.append(fetched)
    return result


# --------------------------------------------------------------------------- kaggle


KAGGLE_LAYOUT = (f"get it from {KAGGLE_URL} and unpack it as DIR/Training/ and DIR/Testing/, each "
                 f"with {'/ '.join(KAGGLE_CLASSES)}/ (the layout `btc prepare kaggle DIR OUT` reads)")


def kaggle_layout_problems(folder: Path) -> list[str]:
    """The `Split/class` folders of the Kaggle layout that `folder` lacks."""
    return [f"{s}/{c}" for s in KAGGLE_SPLITS for c in KAGGLE_CLASSES
            if not (folder / s / c).is_dir()]


def fetch_kaggle(folder: str | Path, *, offline: bool = False,
                 progress: Progress = SILENT) -> FetchResult:
    """Download the Kaggle dataset into `folder` with the `kaggle` package's API."""
    folder = Path(folder)
    _refuse_offline("kaggle", offline, KAGGLE_LAYOUT)
    try:
        import kaggle  # authenticates on import (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KEY)
        api = kaggle.api
        api.authenticate()
    except ImportError:
        raise BtcError(f"the kaggle package is not installed (pip install kaggle, and put "
                       f"your API token in ~/.kaggle/kaggle.json); or {KAGGLE_LAYOUT}") from None
    except (OSError, ValueError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BtcError(f"the kaggle package is not configured ({reason}); or {KAGGLE_LAYOUT}") from None
    folder.mkdir(parents=True, exist_ok=True)
    with progress.bar(f"downloading {KAGGLE_DATASET} from Kaggle", None):
        try:
            api.dataset_download_files(KAGGLE_DATASET, path=str(folder), unzip=True, quiet=True)
        except (OSError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BtcError(f"Kaggle download of {KAGGLE_DATASET} failed: {reason}") from None
    if missing := kaggle_layout_problems(folder):
        raise BtcError(f"{folder}: the Kaggle download lacks {', '.join(missing[:4])}"
                       f"{', …' if len(missing) > 4 else ''}; {KAGGLE_LAYOUT}")
    files = []
    for split in KAGGLE_SPLITS:
        for name in KAGGLE_CLASSES:
            images = [f for f in (folder / split / name).iterdir() if f.is_file()]
            files.append(FetchedFile(f"{split}/{name}", sum(f.stat().st_size for f in images), "",
                                     "downloaded", members=len(images)))
    return FetchResult("kaggle", folder, files, next_command=f"btc prepare kaggle {folder} OUT")
