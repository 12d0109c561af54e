"""Pairs of 64-bit hashes within a Hamming distance, found without comparing every pair.

The near-duplicate audit (`btc/data/audit.py`, issue 17 point 2) links images whose perceptual
hashes differ in at most `t` bits. Comparing every pair (`exhaustive_pairs`) costs n²/2 popcounts:
25 M at 7k images, 1.25 G once a user merges datasets to 50k. `near_pairs` returns exactly the
same pairs by multi-index hashing (M. Norouzi, A. Punjani, D. J. Fleet, "Fast search in Hamming
space with multi-index hashing", CVPR 2012, section 3):

- The 64 bits are split into `m` disjoint blocks. Two hashes within `t` bits differ in at most
  r = ⌊t/m⌋ bits on at least one block (pigeonhole); m = t+1 gives r = 0, an exact block match.
- Per block, the hashes are sorted by block value (buckets). A candidate pair is two hashes whose
  block values differ by a mask of at most r bits: the same bucket, or the bucket found by
  `np.searchsorted` for `value ^ mask` (one lookup per distinct value and mask).
- Each candidate is verified by the popcount of the XOR of the two hashes. A pair that is a
  candidate in several blocks is kept in the first of them only, so every pair comes out once
  and no de-duplication over all pairs is needed.
- Candidates are expanded and verified `chunk` at a time (or one hash's partners, if more), so a
  huge bucket (thousands of hashes sharing a block value, as dark images do) costs time, not memory.

Blocks are filled by entropy (the hashes' own bit frequencies), so the near-constant bits of the
DCT phash (its DC bit is always set) do not leave a block nearly useless. `m` comes from a cost
model of sorting, lookups and expected candidates (bits taken as independent), which also picks
the exhaustive search where that is cheaper (a few hundred hashes, or a large `t`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BITS = 64
CHUNK = 1 << 20  # candidate pairs verified at once: ~50 MB of temporaries

# Nanoseconds per operation, fitted on a 2-core CPU with numpy 2 (forced block counts on the hashes
# of benchmarks/audit_scale.py): a pair of the exhaustive search; a hash gathered and sorted per
# block; a bucket lookup (one distinct block value, one flip mask); a candidate pair verified.
_COST_PAIR, _COST_SORT, _COST_LOOKUP, _COST_CANDIDATE = 4.4, 80.0, 20.0, 10.0


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def _as_hashes(hashes: np.ndarray) -> np.ndarray:
    hashes = np.asarray(hashes)
    if hashes.ndim != 1:
        raise ValueError(f"hashes must be one-dimensional, got shape {hashes.shape}")
    return hashes.astype(np.uint64, copy=False)


def _no_pairs() -> np.ndarray:
    return np.zeros((0, 3), dtype=np.int64)


def _sorted_rows(i: np.ndarray, j: np.ndarray, d: np.ndarray) -> np.ndarray:
    order = np.lexsort((j, i))
    return np.stack([i[order], j[order], d[order]], axis=1).astype(np.int64, copy=False)


def exhaustive_pairs(hashes: np.ndarray, threshold: int, chunk: int = CHUNK) -> np.ndarray:
    """(i, j, distance) rows, i < j, sorted, of the uint64 `hashes` within `threshold` bits.

    Every pair compared: the reference `near_pairs` must equal. `chunk` pairs at a time.
    """
    hashes = _as_hashes(hashes)
    n = len(hashes)
    if n < 2 or threshold < 0:
        return _no_pairs()
    rows = max(1, chunk // n)
    found_i, found_j, found_d = [], [], []
    for start in range(0, n - 1, rows):
        block = hashes[start:start + rows]
        dist = popcount(block[:, None] ^ hashes[None, start:])  # columns from `start`: j ≥ i
        i, j = np.nonzero(dist <= threshold)
        keep = j > i
        i, j = i[keep], j[keep]
        found_i.append(i + start)
        found_j.append(j + start)
        found_d.append(dist[i, j])
    return _sorted_rows(np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d))


# --------------------------------------------------------------------------- the block layout


@dataclass(frozen=True)
class Plan:
    """How `near_pairs` searches: `blocks` (0 = exhaustive), bit `radius` per block, the bit
    positions of each block, and the time the cost model predicts (nanoseconds, rough)."""

    blocks: int
    radius: int
    layout: tuple[tuple[int, ...], ...]
    cost: float


def bit_frequencies(hashes: np.ndarray) -> np.ndarray:
    """Fraction of the hashes with each of the 64 bits set (bit 0 = least significant)."""
    hashes = _as_hashes(hashes)
    if len(hashes) == 0:
        return np.full(BITS, 0.5)
    shifts = np.arange(BITS, dtype=np.uint64)
    sample = hashes[:: max(1, len(hashes) // 100_000)]
    return ((sample[:, None] >> shifts) & np.uint64(1)).mean(axis=0)


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def block_layout(freq: np.ndarray, blocks: int) -> tuple[tuple[int, ...], ...]:
    """Split the 64 bit positions into `blocks` blocks of ⌊64/m⌋ or ⌈64/m⌉ bits with balanced
    entropy: bits by decreasing entropy, each into the block with the least entropy that has room."""
    sizes = [BITS // blocks + (k < BITS % blocks) for k in range(blocks)]
    members: list[list[int]] = [[] for _ in range(blocks)]
    total = [0.0] * blocks
    entropy = _entropy(np.asarray(freq, dtype=float))
    for bit in np.argsort(-entropy, kind="stable"):
        k = min((k for k in range(blocks) if len(members[k]) < sizes[k]), key=lambda k: total[k])
        members[k].append(int(bit))
        total[k] += float(entropy[bit])
    return tuple(tuple(sorted(m)) for m in members)


def _candidate_fraction(freq: np.ndarray, bits: tuple[int, ...], radius: int) -> float:
    """Probability that two independent hashes differ in at most `radius` bits of `bits`."""
    p = np.asarray(freq, dtype=float)[list(bits)]
    same, diff = p * p + (1 - p) * (1 - p), 2 * p * (1 - p)
    poly = np.zeros(radius + 1)
    poly[0] = 1.0
    for s, d in zip(same, diff, strict=True):
        poly[1:] = poly[1:] * s + poly[:-1] * d
        poly[0] *= s
    return float(poly.sum())


def _masks(width: int, radius: int) -> int:
    return sum(math.comb(width, w) for w in range(min(radius, width) + 1))


def plan(hashes: np.ndarray, threshold: int, blocks: int | None = None) -> Plan:
    """The cheapest search for these hashes (or the one with `blocks` blocks, 0 = exhaustive)."""
    hashes = _as_hashes(hashes)
    n = len(hashes)
    pairs = n * (n - 1) / 2
    exhaustive = Plan(0, threshold, (), pairs * _COST_PAIR)
    if blocks == 0:
        return exhaustive
    if blocks is not None and not 1 <= blocks <= BITS:
        raise ValueError(f"blocks must be 0 (exhaustive) or 1..{BITS}, got {blocks}")
    freq = bit_frequencies(hashes)
    best = exhaustive
    for m in [blocks] if blocks else range(1, min(threshold + 1, BITS) + 1):
        radius = threshold // m
        layout = block_layout(freq, m)
        cost = 0.0
        for bits in layout:
            masks = _masks(len(bits), radius)
            distinct = min(n, 2.0 ** len(bits))
            cost += (n * _COST_SORT + distinct * masks * _COST_LOOKUP
                     + pairs * _candidate_fraction(freq, bits, radius) * _COST_CANDIDATE)
        if blocks or cost < best.cost:
            best = Plan(m, radius, layout, cost)
    return best


# --------------------------------------------------------------------------- the index search


def _gather_bits(hashes: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    """The block value: bits `bits` of each hash packed into the low bits of a uint64."""
    value = np.zeros(len(hashes), dtype=np.uint64)
    for position, bit in enumerate(bits):
        value |= ((hashes >> np.uint64(bit)) & np.uint64(1)) << np.uint64(position)
    return value


def _flip_masks(width: int, radius: int) -> Iterator[int]:
    for weight in range(1, min(radius, width) + 1):
        for combo in itertools.combinations(range(width), weight):
            yield sum(1 << b for b in combo)


def _partner_ranges(value: np.ndarray, width: int,
                    radius: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per flip mask: `(order, p, lo, hi)`: the hash at sorted position p pairs with those at lo..hi-1.

    `value`: `width`-bit block values. Positions index `order`, the hashes sorted by block value.
    Every unordered pair of hashes whose block values differ in ≤ `radius` bits appears once: the
    same bucket as (earlier, later), two buckets from the smaller value only.
    """
    n = len(value)
    order = np.argsort(value, kind="stable")
    sorted_value = value[order]
    starts = np.flatnonzero(np.r_[True, sorted_value[1:] != sorted_value[:-1]])
    counts = np.diff(np.r_[starts, n])
    values = sorted_value[starts]
    position = np.arange(n)
    bucket_end = np.repeat(starts + counts, counts)
    shared = bucket_end > position + 1
    yield order, position[shared], position[shared] + 1, bucket_end[shared]
    for mask in _flip_masks(width, radius):
        target = values ^ np.uint64(mask)
        query = np.flatnonzero(target > values)
        found = np.searchsorted(values, target[query])
        hit = found < len(values)
        hit[hit] = values[found[hit]] == target[query[hit]]
        a, b = query[hit], found[hit]
        if len(a) == 0:
            continue
        size = counts[a]
        first = np.repeat(starts[a], size)
        p = first + (np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size))
        lo = np.repeat(starts[b], size)
        yield order, p, lo, lo + np.repeat(counts[b], size)


def _expand(p: np.ndarray, lo: np.ndarray, hi: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs (p, q) for q in lo..hi-1 of each row, about `chunk` at a time (≥ one row)."""
    size = hi - lo
    ends = np.cumsum(size)
    start = 0
    while start < len(p):
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + chunk, side="right")))
        s = size[start:stop]
        offset = np.arange(int(s.sum())) - np.repeat(ends[start:stop] - s - base, s)
        yield np.repeat(p[start:stop], s), np.repeat(lo[start:stop], s) + offset
        start = stop


def near_pairs(hashes: np.ndarray, threshold: int, *, blocks: int | None = None,
               chunk: int = CHUNK) -> np.ndarray:
    """(i, j, distance) rows, i < j, sorted, of the uint64 `hashes` within `threshold` bits.

    The same rows as `exhaustive_pairs`, by multi-index hashing (module docstring). `blocks`
    forces the number of blocks (0: exhaustive); by default `plan` chooses. `chunk`: candidate
    pairs verified at once (memory).
    """
    hashes = _as_hashes(hashes)
    if len(hashes) < 2 or threshold < 0:
        return _no_pairs()
    chosen = plan(hashes, threshold, blocks)
    if chosen.blocks == 0:
        return exhaustive_pairs(hashes, threshold, chunk)
    block_masks = [np.uint64(sum(1 << b for b in bits)) for bits in chosen.layout]
    found_i, found_j, found_d = [], [], []
    for k, bits in enumerate(chosen.layout):
        value = _gather_bits(hashes, bits)
        for order, p, lo, hi in _partner_ranges(value, len(bits), chosen.radius):
            for left, right in _expand(p, lo, hi, chunk):
                i, j = order[left], order[right]
                xor = hashes[i] ^ hashes[j]
                dist = popcount(xor)
                keep = dist <= threshold
                i, j, xor, dist = i[keep], j[keep], xor[keep], dist[keep]
                for earlier in block_masks[:k]:  # a candidate there already: reported there
                    first_here = popcount(xor & earlier) > chosen.radius
                    i, j, xor, dist = i[first_here], j[first_here], xor[first_here], dist[first_here]
                found_i.append(np.minimum(i, j))
                found_j.append(np.maximum(i, j))
                found_d.append(dist)
    if not found_i:
        return _no_pairs()
    return _sorted_rows(np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d))
