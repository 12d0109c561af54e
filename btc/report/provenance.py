"""What produced a reported run: data, split protocol, device, seed, btc version, epochs, size.

One row per run in every report (DESIGN.md, Data contracts: Provenance), read from the run's
`config.yaml` (a CV: every finished fold's, distinct values joined) and its test predictions.
"""

from __future__ import annotations

from btc.report.runs import Run


def protocol_text(run: Run) -> str:
    """The split protocol, saying whether it is the paper's split or the leak-free one."""
    protocol = run.protocol or "unknown"
    if "split_dedup" in protocol:
        return f"leak-free ({protocol})"
    if "'split'" in protocol:
        return f"paper's split ({protocol})"
    return protocol


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
        "test images": str(n),
        "accuracy (95 % CI)": ("–" if not n else
                               f"{run.pooled_accuracy * 100:.2f} [{low * 100:.2f}, {high * 100:.2f}]"
                               + (" pooled over folds" if run.kind == "cv" else "")),
    }
