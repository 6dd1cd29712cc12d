"""All-pairs near-duplicate search over variant hashes, and union-find grouping.

`near_pairs` compares every image with every other one, vectorised: for a block of rows
it XORs each of the 20 views against all plain hashes (and the plain hashes against all
views: the distance is symmetric by construction), counts bits with `np.bitwise_count`
and keeps the minimum, block by block through preallocated scratch buffers.
"""

from __future__ import annotations

import numpy as np

_BLOCK_ELEMS = 262_144  # elements per block: a 2 MB uint64 scratch buffer stays in cache


def near_pairs(h: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of rows of `h` (m, V) uint64 within `threshold`: (i, j, distance)."""
    m = h.shape[0]
    if m < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    base = np.ascontiguousarray(h[:, 0])
    views = np.ascontiguousarray(h.T)  # (V, m)
    block = int(max(1, min(m, _BLOCK_ELEMS // m)))
    xor_buf = np.empty(block * m, dtype=np.uint64)
    cnt_buf = np.empty(block * m, dtype=np.uint8)
    out_i, out_j, out_d = [], [], []
    for a in range(0, m, block):
        b = min(a + block, m)
        shape = (b - a, m - a)  # rows a..b against columns a..m: only j >= a can have j > i
        x = xor_buf[: shape[0] * shape[1]].reshape(shape)
        c = cnt_buf[: shape[0] * shape[1]].reshape(shape)
        d = np.full(shape, 255, dtype=np.uint8)
        for v in range(views.shape[0]):
            np.bitwise_xor(views[v, a:b, None], base[None, a:], out=x)  # view v of i vs plain j
            np.minimum(d, np.bitwise_count(x, out=c), out=d)
            np.bitwise_xor(base[a:b, None], views[v, None, a:], out=x)  # plain i vs view v of j
            np.minimum(d, np.bitwise_count(x, out=c), out=d)
        ii, jj = np.nonzero(d <= threshold)
        keep = jj > ii
        ii, jj = ii[keep], jj[keep]
        out_i.append(ii + a)
        out_j.append(jj + a)
        out_d.append(d[ii, jj].astype(np.int64))
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        """Components of 2+ elements, each sorted, in order of their smallest element."""
        comp: dict[int, list[int]] = {}
        for x in range(len(self.parent)):
            comp.setdefault(self.find(x), []).append(x)
        return [g for _, g in sorted(comp.items()) if len(g) > 1]
