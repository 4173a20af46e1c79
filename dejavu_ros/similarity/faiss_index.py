"""The shortlist of a city-scale map: a FAISS IVF-PQ index over the global descriptors.

Below ``engine.faiss_min_keyframes`` the shortlist is an exact torch matmul (≈ 1 ms over 10k
keyframes, no index to keep). Above it, an inverted file over ``nlist`` k-means cells with
product-quantised codes (``pq_bytes`` bytes a keyframe instead of 4·D) answers in a few
milliseconds whatever the map's size: ``nprobe`` cells are scanned and their codes compared
approximately. The index is trained on the map's own descriptors, stored in the map (the
``search_index`` table) and rebuilt when the map has grown by more than ``REBUILD_GROWTH`` since;
keyframes appended since the last build are searched exactly and merged.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import DejavuError

log = logging.getLogger(__name__)

#: rebuild when the map holds this much more than the index covers
REBUILD_GROWTH = 0.1


class FaissError(DejavuError):
    """FAISS is missing, or a stored index does not fit the map."""


def _faiss():
    try:
        import faiss
    except ImportError:
        raise FaissError("a map of this size uses a FAISS shortlist: pip install faiss-cpu "
                         "(or raise engine.faiss_min_keyframes)") from None
    return faiss


class ShortlistIndex:
    """IVF-PQ over L2-normalised descriptors; inner product = cosine."""

    def __init__(self, index, covers: int) -> None:
        self.index = index
        self.covers = int(covers)  # rows 0..covers-1 of the map are in the index

    @classmethod
    def build(cls, descriptors: np.ndarray, pq_bytes: int = 16, nlist: int | None = None,
              seed: int = 0) -> "ShortlistIndex":
        faiss = _faiss()
        x = np.ascontiguousarray(descriptors, np.float32)
        n, d = x.shape
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))  # FAISS wants ≥ 39 points a cell
        m = pq_bytes
        while d % m:  # the sub-quantisers must split the dimensions evenly
            m -= 1
        quantiser = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantiser, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = x[rng.choice(n, min(n, max(256 * nlist, 40 * 256)), replace=False)]
        index.train(train)
        index.add(x)
        return cls(index, n)

    def search(self, query: np.ndarray, k: int, nprobe: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(scores (k,), rows (k,)) of the best ``k`` indexed rows, best first (approximate scores)."""
        self.index.nprobe = int(nprobe)
        scores, rows = self.index.search(np.ascontiguousarray(query, np.float32).reshape(1, -1), int(k))
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def to_bytes(self) -> bytes:
        return bytes(_faiss().serialize_index(self.index))

    @classmethod
    def from_bytes(cls, data: bytes, covers: int) -> "ShortlistIndex":
        faiss = _faiss()
        return cls(faiss.deserialize_index(np.frombuffer(data, np.uint8)), covers)

    def stale(self, map_size: int) -> bool:
        return map_size > self.covers * (1.0 + REBUILD_GROWTH)

    @property
    def bytes_per_keyframe(self) -> float:
        return len(self.to_bytes()) / max(self.covers, 1)


#: the index proposes this many times ``k`` candidates; the exact cosine picks the ``k``
REFINE = 8


def shortlist_rows(index: ShortlistIndex, database: np.ndarray, query: np.ndarray, k: int,
                   nprobe: int = 16, refine: int = REFINE) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of the whole map: ``refine``·k candidates of the index and the rows added since
    it was built, re-scored exactly (cosine: the codes only approximate it) and merged.
    Returns (scores, rows), best first."""
    _, rows = index.search(query, k * refine, nprobe)
    tail = np.arange(index.covers, len(database))
    rows = np.concatenate([rows, tail]).astype(np.int64)
    scores = database[rows] @ np.asarray(query, np.float32)
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], rows[order]


def map_index(keyframe_map, database: np.ndarray) -> ShortlistIndex:
    """The index of a map's global descriptors ``database``: the one stored with the map while it still
    covers it, else built (and stored when the map is writable)."""
    size = len(database)
    stored = keyframe_map.load_search_index()
    if stored is not None and stored[0] <= size:
        index = ShortlistIndex.from_bytes(stored[1], stored[0])
        if not index.stale(size):
            return index
    log.info("building the FAISS shortlist of %d keyframes", size)
    index = ShortlistIndex.build(database)
    if not keyframe_map.read_only:
        keyframe_map.store_search_index(index.covers, index.to_bytes())
    return index
