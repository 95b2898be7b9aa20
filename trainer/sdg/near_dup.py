"""Exact and near-duplicate detection for generated text (pure; no I/O).

Upstream deduplicated exactly only, so a teacher repeating itself with one word changed
filled the data with clones. Here: exact match after normalisation, then MinHash LSH over
character shingles to find candidates, confirmed with the true Jaccard similarity (so the
verdict does not depend on hash luck beyond candidate recall).
"""

from __future__ import annotations

import re
import unicodedata

from datasketch import MinHash, MinHashLSH

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Case, accents-as-typed, punctuation and spacing do not make a text new."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def shingles(text: str, k: int) -> set[str]:
    """Character k-grams of the normalised text (a short text is its own single shingle)."""
    return {text[i : i + k] for i in range(len(text) - k + 1)} or {text}


def lsh_params(threshold: float, num_perm: int, recall: float = 0.999) -> tuple[int, int]:
    """(bands, rows) with the fewest false candidates that still finds a pair at ``threshold`` with
    probability >= ``recall``: candidates are confirmed exactly, so misses cost more than extra checks."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if 1 - (1 - threshold**r) ** b >= recall:
            best = (b, r)
    return best


class NearDuplicates:
    """Remembers kept texts; ``is_duplicate`` answers and, when the text is new, keeps it."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, k: int = 5) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("dedup threshold must be in (0, 1]")
        self.threshold, self.num_perm, self.k = threshold, num_perm, k
        self._exact: set[str] = set()
        self._shingles: list[set[str]] = []
        self._lsh = MinHashLSH(num_perm=num_perm, params=lsh_params(threshold, num_perm))

    def is_duplicate(self, text: str) -> bool:
        norm = normalize(text)
        if norm in self._exact:
            return True
        sh = shingles(norm, self.k)
        mh = MinHash(num_perm=self.num_perm, seed=1)
        mh.update_batch([s.encode("utf-8") for s in sorted(sh)])
        for cand in self._lsh.query(mh):
            other = self._shingles[int(cand)]
            if len(sh & other) / len(sh | other) >= self.threshold:
                return True
        self._exact.add(norm)
        self._lsh.insert(str(len(self._shingles)), mh)
        self._shingles.append(sh)
        return False
