"""The IPFS CID of a file's bytes, computed locally (no IO), as an IPFS node adds it.

The node is asked for CIDv1, raw leaves, base32 and its defaults otherwise (Kubo's and
js-ipfs's agree): 256 KiB fixed-size chunks, balanced layout, at most 174 links per node.

- Up to one chunk: the file is one raw block, ``bafkrei...`` = sha2-256 of the bytes.
- More: each chunk is a raw leaf; leaves are grouped 174 to a dag-pb node (UnixFS File with
  ``filesize`` and ``blocksizes``), those nodes 174 to a parent, and so on up to one root
  (``bafybei...``). A group of one below the top still gets its own node.

dag-pb is protobuf with a canonical form: PBNode's Links (field 2) come before its Data
(field 1); a PBLink is Hash (1), Name (2, here ``""``, still written), Tsize (3). A link's
Tsize is the child's whole size: a raw leaf's length, or a node's encoded length plus its
links' Tsize. UnixFS ``blocksizes`` is repeated and not packed.
"""

from __future__ import annotations

from dataclasses import dataclass

from multiformats import CID, multihash

CHUNK_SIZE = 262_144
MAX_LINKS = 174
_FILE = 2  # UnixFS Data.DataType.File


@dataclass(frozen=True)
class Block:
    """A node of the file's DAG: its CID, the file bytes below it, its whole encoded size."""

    cid: CID
    filesize: int
    tsize: int


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, value: bytes) -> bytes:
    return _key(field, 2) + _varint(len(value)) + value


def _uint_field(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _unixfs_file(filesize: int, blocksizes: list[int]) -> bytes:
    return _uint_field(1, _FILE) + _uint_field(3, filesize) + b"".join(_uint_field(4, size) for size in blocksizes)


def _pb_node(children: list[Block]) -> bytes:
    links = b"".join(
        _bytes_field(2, _bytes_field(1, bytes(c.cid)) + _bytes_field(2, b"") + _uint_field(3, c.tsize))
        for c in children
    )
    data = _unixfs_file(sum(c.filesize for c in children), [c.filesize for c in children])
    return links + _bytes_field(1, data)


def _raw(chunk: bytes) -> Block:
    return Block(CID("base32", 1, "raw", multihash.digest(chunk, "sha2-256")), len(chunk), len(chunk))


def _parent(children: list[Block]) -> Block:
    encoded = _pb_node(children)
    cid = CID("base32", 1, "dag-pb", multihash.digest(encoded, "sha2-256"))
    return Block(cid, sum(c.filesize for c in children), len(encoded) + sum(c.tsize for c in children))


def file_dag(data: bytes) -> Block:
    """The root of ``data``'s UnixFS DAG (CIDv1, raw leaves, balanced, 256 KiB chunks)."""
    if len(data) <= CHUNK_SIZE:
        return _raw(data)
    level = [_raw(data[i : i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE)]
    while len(level) > 1:
        level = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
    return level[0]


def cid_of(data: bytes) -> str:
    """The base32 CIDv1 an IPFS node gives ``data`` when added with raw leaves."""
    return str(file_dag(data).cid)


def is_cid(text: str) -> bool:
    """True when ``text`` parses as a CID (any version and base)."""
    try:
        CID.decode(text)
    except (ValueError, KeyError, TypeError):
        return False
    return True


def normalize(text: str) -> str:
    """``text`` as a base32 CIDv1 (a CIDv0 ``Qm...`` becomes its v1 form); ValueError if not a CID."""
    try:
        cid = CID.decode(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a CID: {text!r}") from exc
    return str(cid.set(base="base32", version=1))
