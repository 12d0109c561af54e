"""HTTP downloads for btc's fetchers: resumable, checksummed, mirrorable, refused offline.

Issue 14 (ImageNet weights for papers 001, 002 and 004; Cheng's Figshare dataset): every byte btc
fetches comes through `download()`, which

- writes to `<dest>.part` and resumes it with an HTTP `Range` request when a previous attempt was
  cut (within one call, a few times while data keeps arriving; across calls, by running the same
  command again);
- checks the finished file against the published checksum (`Checksum`: a sha256 prefix, as in
  torchvision's file names, or the md5 the figshare API lists) and deletes it on a mismatch, so a
  bad download never reaches a cache;
- moves it to `dest` only once it is complete and checked.

Two settings, read from the environment at call time:

- `BTC_OFFLINE=1` refuses the network, like the `--offline` option (`offline_reason`);
- `BTC_MIRROR=http://host:port[/prefix]` replaces the scheme and host of every URL btc downloads
  from directly (torchvision weights, the figshare API and its files) and keeps the path
  (`mirrored`): for mirrors on clusters without internet, and for tests against a local server.
  timm's weights come through `huggingface_hub`, which reads `HF_ENDPOINT` for the same purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit
from urllib.request import Request, urlopen

from btc import __version__
from btc.errors import BtcError
from btc.progress import SILENT, Progress

OFFLINE_ENV = "BTC_OFFLINE"
MIRROR_ENV = "BTC_MIRROR"
TIMEOUT_S = 30.0
CHUNK = 1 << 20
_ATTEMPTS = 3  # per call, while each attempt brings new bytes


class DownloadError(BtcError):
    """A download that failed or did not match its published checksum (one line)."""


def offline_reason(offline: bool = False) -> str | None:
    """Why the network is refused: `'--offline'`, `'BTC_OFFLINE=1'`, or None when it is allowed."""
    if offline:
        return "--offline"
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value and value not in ("0", "false", "no", "off"):
        return f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]}"
    return None


def mirrored(url: str) -> str:
    """`url` with its scheme and host replaced by `BTC_MIRROR` (path and query kept), if set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    base = urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise BtcError(f"{MIRROR_ENV}={mirror!r}: expected http(s)://host[:port][/prefix]")
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


@dataclass(frozen=True)
class Checksum:
    """A published checksum: `algorithm` ('sha256' or 'md5') and the hex digest or a prefix of it
    (torchvision's file names carry the first 8–10 hex digits of the sha256)."""

    algorithm: str
    expected: str

    def matches(self, digest: str) -> bool:
        return bool(self.expected) and digest.lower().startswith(self.expected.lower())


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _request(url: str, headers: dict[str, str] | None = None) -> Request:
    return Request(url, headers={"User-Agent": f"btc/{__version__}", **(headers or {})})


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def fetch_json(url: str) -> Any:
    """GET `url` (mirrored) and parse its JSON body; one-line `DownloadError` on failure."""
    url = mirrored(url)
    try:
        with urlopen(_request(url, {"Accept": "application/json"}), timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except (URLError, HTTPException, OSError) as e:
        raise DownloadError(f"cannot read {url}: {_reason(e)}") from None
    except ValueError as e:
        raise DownloadError(f"{url} did not answer JSON: {e}") from None


def _receive(url: str, part: Path, have: int, progress: Progress, task: int) -> int:
    """One GET of `url` from byte `have` on, appended to `part`; returns the new size of `part`.

    Raises what urllib raises; an answer shorter than its Content-Length is an `HTTPException`.
    """
    headers = {"Range": f"bytes={have}-"} if have else {}
    with urlopen(_request(url, headers), timeout=TIMEOUT_S) as resp:
        if have and resp.status != 206:  # the server ignored the Range: start again
            have = 0
        length = resp.headers.get("Content-Length")
        if length is not None:
            progress.update(task, completed=have, total=have + int(length))
        else:
            progress.update(task, completed=have)
        received = 0
        with open(part, "ab" if have else "wb") as f:
            while block := resp.read(CHUNK):
                f.write(block)
                received += len(block)
                progress.update(task, advance=len(block))
        if length is not None and received != int(length):
            raise HTTPException(f"connection closed after {have + received} of "
                                f"{have + int(length)} bytes")
        return have + received


def download(url: str, dest: str | Path, *, checksum: Checksum | None = None,
             size: int | None = None, progress: Progress = SILENT,
             description: str | None = None) -> str:
    """Download `url` (mirrored) to `dest`; return the file's digest (checksum's algorithm, or
    sha256 without a checksum).

    Resumes `<dest>.part` left by an interrupted attempt. A file whose digest does not match
    `checksum` is deleted and a `DownloadError` says so; so is a network failure (the `.part` file
    is kept, and running the same command again resumes it).
    """
    if reason := offline_reason():
        raise DownloadError(f"downloading {url} refused: offline ({reason})")
    url, dest = mirrored(url), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    task = progress.add(description or dest.name, size)
    have = part.stat().st_size if part.is_file() else 0
    attempts = 0
    while True:
        if size is not None and have == size:
            break
        if size is not None and have > size:
            part.unlink()
            have = 0
        before = have
        try:
            have = _receive(url, part, have, progress, task)
            break
        except HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part file is complete
                break
            raise DownloadError(f"cannot download {url}: {_reason(e)}") from None
        except (URLError, HTTPException, OSError) as e:
            have = part.stat().st_size if part.is_file() else 0
            attempts += 1
            if have > before and attempts < _ATTEMPTS:
                continue  # data kept arriving: resume at once
            if not have:
                raise DownloadError(f"cannot download {url}: {_reason(e)}") from None
            raise DownloadError(f"download of {url} interrupted after {have} bytes ({_reason(e)}); "
                                "run the same command again to resume it") from None
    algorithm = checksum.algorithm if checksum else "sha256"
    digest = file_digest(part, algorithm)
    if checksum is not None and not checksum.matches(digest):
        part.unlink()
        raise DownloadError(f"{url}: {algorithm} {digest} does not match the published "
                            f"{checksum.expected}; the download was deleted")
    os.replace(part, dest)
    return digest
