"""The same model under the paper's protocol and the leak-free protocol, side by side (issue 15).

Which runs are paired: two runs given to `btc report`, one under each protocol (`config.yaml`'s
`protocol`: `paper` or `leak-free`), both train runs or both CVs, whose `config.yaml` settings
are equal but for `IGNORED`: the protocol itself, its description and the provenance, and what
changes how a run is computed but not what it measures (device, mixed precision, memory format,
compilation, determinism, snapshots, versions). Everything else counts, the training settings
(epochs, lr, batch size, optimiser, augmentation, seed, …), the data and the initial weights,
so the difference a row shows is the protocol's alone. Several runs of the same settings under
one protocol (copies of a run) are each paired, the i-th with the i-th of the other protocol;
seeds are settings, so seed k pairs with seed k. Runs of both protocols left without a partner
get one note naming the settings in which each differs from its closest run of the other
protocol.

One row per pair: the accuracy under each with its 95 % bootstrap CI, the difference paper −
leak-free with its 95 % CI, and McNemar's exact test on the test images both runs predicted.
When the two runs have the same test images (two CVs pooled over one dataset) the difference's
CI is a paired bootstrap: the images are resampled once for both runs. When the sets differ
(under leak-free an official split loses the test images that have a twin in training) the two
are resampled independently, and the pair's note says how they differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from btc.report.model import Cell, Row, Table
from btc.report.runs import Run
from btc.report.stats import McNemar, bootstrap_accuracy_ci, mcnemar

PROTOCOLS = ("paper", "leak-free")
IGNORED = frozenset({
    # TrainConfig fields: the protocol, and how a run is computed rather than what it measures
    "protocol", "device", "amp", "channels_last", "compile", "deterministic", "snapshot_every",
    # written next to the settings by the engine: the protocol's description, provenance, machine, versions
    "split_protocol", "provenance", "device_name", "btc_version", "torch_version", "versions",
    # timestamps, should a run record them
    "created", "started", "finished", "timestamp",
})
N_BOOT = 2000
_CHUNK = 256  # bootstrap replicates drawn at a time (bounds memory for large test sets)
_SHOWN = 30   # characters of a setting's value quoted in a note


# --------------------------------------------------------------------------- pairing


def protocol_of(run: Run) -> str:
    """`paper` or `leak-free` when all the run's members were trained under it, else "" (a run
    without the field was trained under `paper`, TrainConfig's default)."""
    values = {str(c.get("protocol", "paper")) for c in run.configs}
    return values.pop() if len(values) == 1 and values <= set(PROTOCOLS) else ""


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def setting_differences(a: Run, b: Run) -> list[str]:
    """The settings in which two runs differ beyond the protocol, as `name (a's vs b's)`."""
    out = [] if a.kind == b.kind else [f"kind ({a.kind} vs {b.kind})"]
    for key in dict.fromkeys([*a.config, *b.config]):
        if key not in IGNORED and a.config.get(key) != b.config.get(key):
            out.append(f"{key} ({_short(a.config.get(key, '–'))} vs {_short(b.config.get(key, '–'))})")
    return out


def _groups(runs: list[Run]) -> list[dict[str, list[Run]]]:
    """The runs of a known protocol, grouped by equal settings: per group, its runs per protocol."""
    groups: list[tuple[Run, dict[str, list[Run]]]] = []
    for run in runs:
        protocol = protocol_of(run)
        if not protocol:
            continue
        group = next((g for first, g in groups if not setting_differences(first, run)), None)
        if group is None:
            group = {p: [] for p in PROTOCOLS}
            groups.append((run, group))
        group[protocol].append(run)
    return [group for _, group in groups]


def protocol_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """(paper run, leak-free run) pairs of equal settings; every run of a group that has both
    protocols is in a pair (the i-th paper run with the i-th leak-free one, the shorter list
    taken again from its start)."""
    pairs = []
    for group in _groups(runs):
        papers, frees = group["paper"], group["leak-free"]
        if papers and frees:
            pairs += [(papers[i % len(papers)], frees[i % len(frees)]) for i in range(max(len(papers), len(frees)))]
    return pairs


def unpaired_note(runs: list[Run]) -> str:
    """One line naming the runs of either protocol that found no partner, and in which settings
    each differs from its closest run of the other protocol ("" when none, or when the runs given
    are not of both protocols)."""
    by_protocol = {p: [r for r in runs if protocol_of(r) == p] for p in PROTOCOLS}
    if not all(by_protocol.values()):
        return ""
    paired = {id(r) for pair in protocol_pairs(runs) for r in pair}
    parts, seen = [], set()
    for run in runs:
        protocol = protocol_of(run)
        if not protocol or id(run) in paired:
            continue
        other = PROTOCOLS[1 - PROTOCOLS.index(protocol)]
        closest = min(by_protocol[other], key=lambda o, run=run: len(setting_differences(run, o)))
        if frozenset((id(run), id(closest))) not in seen:
            seen.add(frozenset((id(run), id(closest))))
            parts.append(f"{run.name} ({protocol}) and {closest.name} ({other}) differ in "
                         + ", ".join(setting_differences(run, closest)))
    if not parts:
        return ""
    return "Paper and leak-free runs not paired side by side, their settings differ beyond the protocol: " \
        + "; ".join(parts) + "."


# --------------------------------------------------------------------------- statistics


def _bootstrap_differences(a: np.ndarray, b: np.ndarray, paired: bool, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        index_a = rng.integers(0, len(a), (size, len(a)))
        index_b = index_a if paired else rng.integers(0, len(b), (size, len(b)))
        diffs[start:start + size] = a[index_a].mean(1) - b[index_b].mean(1)
    return diffs


def _ci(diffs: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


def difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of mean(a) − mean(b), resampling a and b independently
    (two different test sets)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return _ci(_bootstrap_differences(a, b, paired=False, n_boot=n_boot, seed=seed))


def paired_difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of mean(a) − mean(b) where a[i] and b[i] are the same test
    image: the images are resampled once for both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a paired bootstrap needs aligned vectors (got {a.shape} and {b.shape})")
    return _ci(_bootstrap_differences(a, b, paired=True, n_boot=n_boot, seed=seed))


# --------------------------------------------------------------------------- one pair


def _aligned(run: Run, paths: list[str]) -> np.ndarray:
    """The run's per-image correctness in the order of `paths`."""
    index = {p: i for i, p in enumerate(run.predictions.paths)}
    return run.correct[[index[p] for p in paths]]


@dataclass
class PairResult:
    """A paper run and a leak-free run compared: accuracies, difference, McNemar, test sets."""

    paper: Run
    free: Run
    a: np.ndarray                       # paper run: per test image, right (1) or wrong (0)
    b: np.ndarray                       # leak-free run: the same
    shared: list[str]                   # test images both runs predicted
    same_images: bool                   # the two test sets are one (paired bootstrap)
    ci: tuple[float, float]             # of the difference, fractions
    test: McNemar | None                # on the shared images; None: none shared

    @property
    def removed(self) -> int:
        """Paper test images missing from the leak-free test set, when that set is a part of the paper's."""
        return len(self.a) - len(self.b) if set(self.free.predictions.paths) < set(self.paper.predictions.paths) else 0


def compare_pair(paper: Run, free: Run) -> PairResult:
    pa, pb = paper.predictions.paths, free.predictions.paths
    shared = sorted(set(pa) & set(pb))
    same = len(pa) == len(pb) == len(set(pa)) == len(shared)
    test = mcnemar(_aligned(paper, shared), _aligned(free, shared)) if shared else None
    if same:
        a, b = _aligned(paper, shared).astype(float), _aligned(free, shared).astype(float)
        ci = paired_difference_ci(a, b)
    else:
        a, b = paper.correct.astype(float), free.correct.astype(float)
        ci = difference_ci(a, b)
    return PairResult(paper, free, a, b, shared, same, ci, test)


def _test_sets_text(r: PairResult) -> str:
    if r.same_images:
        return (f"the same {len(r.a)} test images, so the difference's 95 % CI is a paired bootstrap (the images "
                "resampled once for both runs)")
    if r.removed:
        what = (f"the leak-free test set lacks {r.removed} of the paper protocol's {len(r.a)} test images (leak-free "
                "removes the test images that have a twin in training: an image of the same patient, an exact or a "
                "pixel-confirmed near duplicate)")
    else:
        what = f"different test sets ({len(r.a)} and {len(r.b)} test images, {len(r.shared)} shared)"
    return what + ", so the difference's 95 % CI resamples the two test sets independently"


def _mcnemar_text(r: PairResult) -> str:
    if r.test is None:
        return "no shared test image, no McNemar test"
    t = r.test
    return (f"McNemar on the {t.n} shared test images: right under the paper's protocol only {t.b}, under "
            f"leak-free only {t.c} (exact p {t.p_value:.4g})")


def pair_note(r: PairResult) -> str:
    return f"{r.paper.name} vs {r.free.name}: {_test_sets_text(r)}; {_mcnemar_text(r)}."


def _percent_cell(correct: np.ndarray) -> Cell:
    return Cell(value=100 * correct.mean(), ci=tuple(100 * v for v in bootstrap_accuracy_ci(correct)), compare=False)


def pair_row(r: PairResult) -> Row:
    cells = [
        _percent_cell(r.a),
        _percent_cell(r.b),
        Cell(value=100 * (r.a.mean() - r.b.mean()), ci=(100 * r.ci[0], 100 * r.ci[1]), compare=False),
        Cell(value=None if r.test is None else r.test.p_value, kind="number", compare=False,
             status="" if r.test is not None else "no shared test image"),
    ]
    return Row([r.paper.model, r.paper.task, f"{r.paper.name} / {r.free.name}"], cells, run=r.paper.name)


# --------------------------------------------------------------------------- the table


def protocol_table(runs: list[Run]) -> Table | None:
    """The side-by-side table, or None when no two runs differ only in their protocol (then
    `unpaired_note` says why, if runs of both protocols were given)."""
    pairs = protocol_pairs(runs)
    if not pairs:
        return None
    table = Table(key="protocols", title="The paper's protocol and the leak-free protocol, side by side",
                  source="", label_columns=["model", "task", "runs"],
                  columns=["Accuracy, paper's protocol", "Accuracy, leak-free", "Paper − leak-free",
                           "McNemar p (shared test images)"])
    for paper, free in pairs:
        result = compare_pair(paper, free)
        table.rows.append(pair_row(result))
        table.notes.append(pair_note(result))
    note = unpaired_note(runs)
    if note:
        table.notes.append(note)
    return table
