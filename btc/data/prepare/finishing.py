"""The end of a prepare: manifest, audit, dataset.yaml, the swap into OUT, and its summary.

dataset.yaml (DESIGN.md, Data contracts) gets the classes in index order, the tasks, provenance,
the command and its parameters, counts per split and class, the audit summary and the inputs
that were skipped or flagged. The manifest gets each image's duplicate group (`dup_group`: exact
copies and near duplicates confirmed by their pixels, `btc.data.audit.find_duplicates`; empty
for an image with no duplicate), so the leak-free protocol reads it instead of checking pixels. The run's result is a `PrepareSummary`; the command layer
(`btc/commands/prepare.py`) shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btc import __version__
from btc.data.audit import DUP_GROUP, audit_frame, dedup_split, find_duplicates
from btc.data.manifest import split_counts, validate_manifest
from btc.data.similarity import FolderPixels
from btc.errors import BtcError
from btc.lazy import lazy_import
from btc.progress import SILENT, Progress

from .inputs import Skipped
from .staging import Stage

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")


@dataclass(frozen=True)
class PrepareSummary:
    """What one `btc prepare` did.

    `images` is the number of images in the written dataset, `reused` how many of them came
    unchanged from a previous (or interrupted) run; `skipped` the inputs that could not be used
    and `flagged` images kept with a remark, each `(path, reason)`; `audit` the audit numbers
    written to dataset.yaml (None when the source runs no audit) and `audit_headline` their
    one-line summary.
    """

    out: Path
    source: str
    images: int
    classes: list[str]
    counts: dict[str, dict[str, int]]
    seconds: float
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    flagged: list[Skipped] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    audit_headline: str = ""

    @property
    def written(self) -> int:
        """Images written by this run (not reused)."""
        return self.images - self.reused

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["skipped"] = [s.as_dict() for s in self.skipped]
        d["flagged"] = [s.as_dict() for s in self.flagged]
        return d


class NoUsableImages(BtcError):
    """A prepare that found nothing to write; `skipped` lists every input and why."""

    def __init__(self, src: Path | str, skipped: list[Skipped]) -> None:
        if skipped:
            what = f"{len(skipped)} input(s) skipped, e.g. {skipped[0].path}: {skipped[0].reason}"
        else:
            what = "no image files found"
        super().__init__(f"{src}: no usable images ({what})")
        self.skipped = skipped


def note_inputs(progress: Progress, skipped: Iterable[Skipped], flagged: Iterable[Skipped] = ()) -> None:
    """One note per unusable input (`skipped <path>: <reason>`) and per flagged image."""
    for s in skipped:
        progress.note(f"skipped {s.path}: {s.reason}", style="yellow")
    for s in flagged:
        progress.note(f"flagged {s.path}: {s.reason}", style="cyan")


def finish(stage: Stage, rows: list[dict[str, Any]], keys: list[str], *, src: Path, command: str,
           params: dict[str, Any], classes: list[str], tasks: dict[str, Any],
           skipped: Iterable[Skipped], flagged: Iterable[Skipped] = (), extra: dict[str, Any] | None = None,
           dedup: bool = False, complete: Callable[[pd.DataFrame], dict[str, Any]] | None = None,
           progress: Progress = SILENT, started: float | None = None) -> PrepareSummary:
    """Manifest, audit, dataset.yaml and swap of a finished prepare.

    `rows` are manifest rows (dicts; extra columns allowed, keys starting with '_' dropped);
    `keys` the cache keys of the inputs these rows came from. Every skipped and flagged input is
    noted on `progress` (sorted by path). `complete(manifest)`, when given, may fill columns that
    need the duplicate groups (it sees `dup_group`; Figshare's folds of the no-tumour images) and
    returns entries for dataset.yaml. Raises `NoUsableImages` when no row is usable.
    """
    skipped = sorted(skipped)
    flagged = sorted(flagged)
    note_inputs(progress, skipped, flagged)
    if not rows:
        stage.discard()
        raise NoUsableImages(src, skipped)
    df = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    df = validate_manifest(df.sort_values("path", kind="stable").reset_index(drop=True))
    audit_args = {"skipped": [s.as_dict() for s in skipped], "flagged": [s.as_dict() for s in flagged]}
    pixels = FolderPixels(stage.dir, df["path"].tolist(), thumbs=stage.thumbs)  # this run's images: not read again
    duplicates = find_duplicates(df, pixels, progress=progress)
    df[DUP_GROUP] = duplicates.labels()
    completed = complete(df) if complete is not None else {}
    report = audit_frame(df, duplicates=duplicates, **audit_args)
    info: dict[str, Any] = {
        "name": stage.out.name,
        "source": stage.source,
        "classes": classes,
        "tasks": tasks,
        "provenance": {"src": str(Path(src).resolve()), "tool": "btc", "btc_version": __version__},
        "command": command,
        "params": params,
        "counts": split_counts(df),
    }
    if dedup:
        df["split_dedup"] = dedup_split(df, duplicates)
        counts = split_counts(df.assign(split=df["split_dedup"]))
        moved = int((df["split_dedup"] != df["split"]).sum())
        info["splits"] = {
            "split": "the dataset's own Training/Testing folders (the papers' protocol)",
            "split_dedup": "leak-free: every exact / confirmed near-duplicate group kept on one side "
                           "(the side holding most of its images; ties → train)",
            "split_dedup_moved": moved,
            "counts_dedup": counts,
        }
        report = audit_frame(df, duplicates=duplicates, **audit_args)
    if extra:
        info.update(extra)
    info.update(completed)
    info["audit"] = report.summary()
    info["skipped"] = [s.as_dict() for s in skipped]
    if flagged:
        info["flagged"] = [s.as_dict() for s in flagged]
    stage.commit(df, info, keys)
    return PrepareSummary(
        out=stage.out, source=stage.source, images=int(len(df)), classes=list(classes), counts=info["counts"],
        seconds=time.monotonic() - started if started is not None else 0.0, reused=stage.reused,
        skipped=skipped, flagged=flagged, audit=info["audit"], audit_headline=report.headline(),
    )
