"""`btc fetch figshare DIR | kaggle DIR`: the public datasets, checked and laid out for
`btc prepare` (issue 14; the work is in `btc.data.fetch`).

The final line says what is in DIR and the `btc prepare` command to run next; `--json` prints the
`FetchResult` (dataset, folder, files with size, md5, status) instead.
"""

from __future__ import annotations

from pathlib import Path

from btc.commands.ui import out, print_json, progress_for
from btc.data.fetch import FetchResult, fetch_figshare, fetch_kaggle


def _report(result: FetchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    got = sum(f.status != "present" for f in result.files)
    members = sum(f.members for f in result.files)
    out.print(f"{result.dataset}: {len(result.files)} items in {result.folder} ({got} fetched now, "
              f"{members} files unpacked or listed); next: {result.next_command}")


def run_figshare(folder: Path, *, offline: bool = False, keep_archives: bool = False,
                 quiet: bool = False, as_json: bool = False) -> None:
    with progress_for(quiet) as progress:
        result = fetch_figshare(folder, offline=offline, keep_archives=keep_archives,
                                progress=progress)
    _report(result, as_json)


def run_kaggle(folder: Path, *, offline: bool = False, quiet: bool = False,
               as_json: bool = False) -> None:
    with progress_for(quiet) as progress:
        result = fetch_kaggle(folder, offline=offline, progress=progress)
    _report(result, as_json)
