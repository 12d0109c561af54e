"""What produced a reported run: data, split protocol, device, seed, btc version, epochs, size,
initial weights, dataset fingerprint and the deviations from the paper's protocol.

One row per run in every report (DESIGN.md, Data contracts: Provenance), read from the run's
`config.yaml` (a CV: every finished fold's, distinct values joined) and its test predictions.
The weights, fingerprint and deviations come from the `provenance` block btc ≥ 0.2 writes
(issue 14); a run without one says so. The protocol row says whether the run was leak-free or
followed the paper's split (`protocol_text`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.report.model import UNKNOWN_PROVENANCE
from btc.report.protocols import protocol_of
from btc.report.runs import Run

HASH_PREFIX = 12  # hex digits of a sha256 shown


def weights_text(weights: dict[str, Any]) -> str:
    """Initial weights: source, file, first hex of their sha256 and whether it is the published hash."""
    source = str(weights.get("source", "random"))
    if source == "random":
        return "random initialisation"
    parts = [source]
    if weights.get("file") and source != "file":
        parts.append(Path(str(weights["file"])).name)
    elif weights.get("file"):
        parts = [f"file {weights['file']}"]
    digest = str(weights.get("sha256") or "")
    if digest:
        parts.append(f"sha256 {digest[:HASH_PREFIX]}")
    parts.append("verified" if weights.get("verified") else "not verified against the published hash")
    return ", ".join(parts)


def dataset_text(dataset: dict[str, Any]) -> str:
    """Dataset fingerprint: manifest sha256 prefix, source, crop and size."""
    digest = str(dataset.get("manifest_sha256") or "")
    parts = [f"manifest sha256 {digest[:HASH_PREFIX]}" if digest else "no manifest hash"]
    if dataset.get("source"):
        parts.append(str(dataset["source"]))
    parts.append(f"crop {dataset.get('crop') or 'unknown'}")
    parts.append(f"size {dataset.get('size') if dataset.get('size') is not None else 'unknown'}")
    return ", ".join(parts)


def deviations_text(run: Run) -> str:
    found = run.deviations
    if found is None:
        return UNKNOWN_PROVENANCE
    return "none: the paper's protocol" if not found else "; ".join(found)


def _from_provenance(run: Run, key: str, text) -> str:
    """A provenance field over the run's folds, distinct texts joined ("unknown" without provenance)."""
    values = [text(p.get(key) or {}) if p is not None else UNKNOWN_PROVENANCE for p in run.provenances]
    return "; ".join(dict.fromkeys(values))


def _leak_free(run: Run, text: str) -> bool:
    """Trained under the leak-free protocol: config.yaml's `protocol`, the description's own
    first words ("leak-free: …"), or btc 0.1's leak-free split column `split_dedup`."""
    return protocol_of(run) == "leak-free" or text.startswith("leak-free") or "split_dedup" in text


def protocol_text(run: Run) -> str:
    """The split protocol, saying whether it is the leak-free one or the paper's split (a
    leak-free run on the manifest's official split column `split` is leak-free: its test set
    lost the images with a twin in training)."""
    text = run.protocol or "unknown"
    if _leak_free(run, text):
        return text if text.startswith("leak-free") else f"leak-free ({text})"
    if "'split'" in text:
        return f"paper's split ({text})"
    return text


def _distinct(run: Run, key: str) -> str:
    values = [v for v in dict.fromkeys(str(c.get(key, "")) for c in run.configs) if v]
    return "; ".join(values) if values else "–"


def provenance(run: Run) -> dict[str, str]:
    """The run's provenance row: field → text."""
    c = run.config
    low, high = run.ci
    n = len(run.correct)
    kind = "train"
    if run.kind == "cv":
        kind = f"CV, {len(run.folds)} of {run.n_folds} folds" + ("" if run.complete else " (incomplete)")
    return {
        "run": run.name,
        "folder": str(run.path),
        "kind": kind,
        "model": run.model or "–",
        "recipe": str(c.get("recipe", "")) or "–",
        "task": run.task or "–",
        "data": f"{c.get('dataset', '–')} ({c.get('data', '–')})",
        "protocol": protocol_text(run),
        "device": _distinct(run, "device_name"),
        "seed": _distinct(run, "seed"),
        "btc version": _distinct(run, "btc_version"),
        "epochs": _distinct(run, "epochs"),
        "image size": _distinct(run, "image_size"),
        "initial weights": _from_provenance(run, "initial_weights", weights_text),
        "dataset fingerprint": _from_provenance(run, "dataset", dataset_text),
        "deviations from the paper's protocol": deviations_text(run),
        "test images": str(n),
        "accuracy": ("–" if not n else
                     f"{run.pooled_accuracy * 100:.2f}, 95 % CI [{low * 100:.2f}, {high * 100:.2f}]"
                     + (", all folds' test images pooled" if run.kind == "cv" else "")),
    }
