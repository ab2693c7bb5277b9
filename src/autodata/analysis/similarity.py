"""Text similarity between examples: word shingles, MinHash signatures and LSH (``datasketch``).

Near-duplicates are found the usual way for large collections: MinHash signatures of each text's word
shingles, locality-sensitive hashing for candidate pairs, then the exact Jaccard similarity of the
shingle sets to confirm a pair (so the LSH's false positives never merge two examples).

Tokens work in every script (:func:`tokens`): the text is NFKC-normalised and case-folded; where words
are separated by spaces (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Hangul…) a token is a run
of letters, digits and combining marks; in scripts written without spaces (Chinese, Japanese kana,
Thai, Lao, Khmer, Myanmar) a token is a character bigram, the usual unit for n-gram overlap there.
A text with no tokens at all matches nothing (its Jaccard similarity to anything is 0).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
MAX_PAIRS = 200_000  # pairwise summaries above this many pairs use a seeded sample of pairs

# Unicode blocks of scripts written without spaces between words (code point ranges, inclusive)
UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3134F),  # CJK extensions B-G
)
_SEP, _WORD, _CHAR = 0, 1, 2


@lru_cache(maxsize=65536)
def _kind(ch: str) -> int:
    if unicodedata.category(ch)[0] not in "LNM":
        return _SEP
    cp = ord(ch)
    return _CHAR if any(lo <= cp <= hi for lo, hi in UNSPACED) else _WORD


def tokens(text: str) -> list[str]:
    """Word tokens where words are spaced, character bigrams where they are not (see the module doc).

    ``"Сколько стоит?"`` → ``["сколько", "стоит"]``; ``"光合作用"`` → ``["光合", "合作", "作用"]``;
    a run of one unspaced character is that character.
    """
    out: list[str] = []
    run: list[str] = []
    run_kind = _SEP

    def flush() -> None:
        if run_kind == _WORD:
            out.append("".join(run))
        elif len(run) == 1:
            out.append(run[0])
        else:
            out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
        run.clear()

    for ch in unicodedata.normalize("NFKC", text).casefold():
        kind = _kind(ch)
        if kind != run_kind and run:
            flush()
        run_kind = kind
        if kind != _SEP:
            run.append(ch)
    if run:
        flush()
    return out


def shingles(text: str, n: int = 3) -> set[str]:
    """Word n-grams; a text shorter than n words is one shingle of all its words."""
    words = tokens(text)
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 when either is empty (a text with no tokens is like nothing, not like another)."""
    if not a or not b:
        return 0.0
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
        if not s:
            continue  # nothing to compare: never a duplicate of anything
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
