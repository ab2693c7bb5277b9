"""Text similarity between examples: word shingles, MinHash signatures and LSH (``datasketch``).

Near-duplicates are found the usual way for large collections: MinHash signatures of each text's word
shingles, locality-sensitive hashing for candidate pairs, then the exact Jaccard similarity of the
shingle sets to confirm a pair (so the LSH's false positives never merge two examples).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH

_TOKEN = re.compile(r"[a-z0-9]+")
NUM_PERM = 128
MAX_PAIRS = 200_000  # pairwise summaries above this many pairs use a seeded sample of pairs


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def shingles(text: str, n: int = 3) -> set[str]:
    """Word n-grams; a text shorter than n words is one shingle of all its words."""
    words = tokens(text)
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def signature(shingle_set: set[str], num_perm: int = NUM_PERM) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch(s.encode("utf-8") for s in sorted(shingle_set))
    return m


@dataclass(frozen=True, slots=True)
class Pair:
    a: int
    b: int
    similarity: float


def near_duplicate_pairs(texts: Sequence[str], *, threshold: float = 0.7, n: int = 3) -> list[Pair]:
    """Pairs (i < j) whose shingle sets have Jaccard similarity >= threshold."""
    sets = [shingles(t, n) for t in texts]
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    pairs: list[Pair] = []
    for i, s in enumerate(sets):
        sig = signature(s)
        for key in lsh.query(sig):
            j = int(key)
            sim = jaccard(sets[j], s)
            if sim >= threshold:
                pairs.append(Pair(j, i, sim))
        lsh.insert(str(i), sig)
    return sorted(pairs, key=lambda p: (p.a, p.b))


def clusters(n_items: int, pairs: Sequence[Pair]) -> list[list[int]]:
    """Connected components of the near-duplicate graph, each sorted; singletons left out."""
    parent = list(range(n_items))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n_items):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def pairwise_summary(texts: Sequence[str], *, n: int = 3, seed: int = 0) -> dict[str, float | int] | None:
    """Mean, median, 95th percentile and max Jaccard similarity over pairs (a seeded sample if many)."""
    if len(texts) < 2:
        return None
    sets = [shingles(t, n) for t in texts]
    total = len(sets) * (len(sets) - 1) // 2
    if total <= MAX_PAIRS:
        idx = [(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))]
    else:
        rng = random.Random(seed)
        idx = []
        while len(idx) < MAX_PAIRS:
            i, j = rng.randrange(len(sets)), rng.randrange(len(sets))
            if i != j:
                idx.append((min(i, j), max(i, j)))
    sims = np.array([jaccard(sets[i], sets[j]) for i, j in idx])
    return {
        "pairs": len(idx),
        "sampled": total > MAX_PAIRS,
        "mean": float(sims.mean()),
        "median": float(np.median(sims)),
        "p95": float(np.percentile(sims, 95)),
        "max": float(sims.max()),
    }
