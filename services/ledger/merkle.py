"""Merkle trees as in RFC 6962 / RFC 9162 section 2.1 (the leaves are the entries' hashes).

``leaf = SHA-256(0x00 || entry_hash)``, ``node = SHA-256(0x01 || left || right)``, and the
tree of ``n`` leaves splits at the largest power of two below ``n``. The empty tree's hash is
``SHA-256("")``.

Proofs are built from *ranges*: every hash a proof needs is the hash of a node of the tree,
``MTH(D[lo:hi])``, and every such node is a right fold of at most log2(n) complete, aligned
subtrees. Those complete subtrees are what the database stores (see ``service.py``), so a
proof costs one indexed query whatever the tree size. In-memory versions here take the list
of leaf hashes and are used by the tests and by auditors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The hashes of the complete subtrees of a growing tree, left to right (one per set bit
    of ``size``): enough to append a leaf or compute the root in O(log n)."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of {size} leaves has {size.bit_count()} hashes, not {len(hashes)}")
        self.size, self.hashes = size, list(hashes)

    def push(self, leaf: bytes) -> list[bytes]:
        """Append a leaf hash; returns the complete subtrees it finished, by level (1, 2, ...)."""
        h, n, done = leaf, self.size, []
        hashes = self.hashes
        while n & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            done.append(h)
            n >>= 1
        hashes.append(h)
        self.size += 1
        return done

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = _sha256(b"\x01" + h + acc).digest()
        return acc


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of leaf hashes (already ``leaf_hash``-ed)."""
    f = Frontier()
    for leaf in leaves:
        f.push(leaf)
    return f.root()


# --- which ranges a proof needs -------------------------------------------------------------
def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The nodes of the audit path of leaf ``index`` in a tree of ``size`` leaves, bottom up
    (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    out = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    return out[::-1]


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The nodes of the consistency proof from tree size ``first`` to ``second``, in proof order
    (RFC 9162 2.1.4.1, SUBPROOF). Empty when ``first`` is 0 or equals ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    out = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        out.append((lo, hi))
    return out[::-1]


def complete_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` as complete aligned subtrees ``(level, index)``, left to right, such that
    ``MTH(D[lo:hi])`` is their right fold. Holds for every node of an RFC 6962 tree."""
    out = []
    while True:
        size = hi - lo
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            if lo % size:
                raise ValueError(f"[{lo}, {hi}) is not a node of a Merkle tree")
            out.append((level, lo >> level))
            return out
        k = split(size)
        if lo % k:
            raise ValueError(f"[{lo}, {hi}) is not a node of a Merkle tree")
        out.append((k.bit_length() - 1, lo // k))
        lo += k


def fold(hashes: Sequence[bytes]) -> bytes:
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def resolve(ranges: list[tuple[int, int]], subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """Hashes of ``ranges`` given ``subtree(level, index)`` for complete subtrees."""
    return [fold([subtree(level, index) for level, index in complete_subtrees(lo, hi)]) for lo, hi in ranges]


def needed_subtrees(ranges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    return {node for lo, hi in ranges for node in complete_subtrees(lo, hi)}


# --- in-memory proofs (tests, auditors holding all leaves) -------------------------------------
def _range_hash(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root_of(leaves[lo:hi])


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    size = len(leaves) if size is None else size
    return [_range_hash(leaves, lo, hi) for lo, hi in inclusion_ranges(index, size)]


def consistency_proof(leaves: Sequence[bytes], first: int, second: int | None = None) -> list[bytes]:
    second = len(leaves) if second is None else second
    return [_range_hash(leaves, lo, hi) for lo, hi in consistency_ranges(first, second)]


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ----------------------------------------------
def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """True when ``path`` proves that ``leaf`` (a leaf hash) is leaf ``index`` of the tree of
    ``size`` leaves whose hash is ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """True when ``path`` proves the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    nodes = list(path)
    if first & (first - 1) == 0:
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
