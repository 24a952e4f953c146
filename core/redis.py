"""The node's Redis namespace: every key this node writes starts with :func:`prefix`.

Redis holds views and short-lived state, never the truth, and several nodes (or a node and
its predecessor on a recreated database) may share one Redis. So each node writes under its
own prefix: ``settings.redis.key_prefix`` when set, else ``oh:<node id>``, where the node id
is made once and kept in ``<data_dir>/node-id`` (the API processes and the worker of one node
share the data dir, hence the id).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.settings import Settings

NODE_ID_FILE = "node-id"
_known: dict[Path, str] = {}


def node_id(settings: Settings) -> str:
    """This node's id (12 hex digits), created on first use; every process of the node agrees."""
    path = settings.data_dir / NODE_ID_FILE
    found = _known.get(path)
    if found is not None:
        return found
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{NODE_ID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(secrets.token_hex(6) + "\n")
        try:
            os.link(draft, path)  # atomic, and fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    found = path.read_text().strip()
    if not found:
        raise RuntimeError(f"{path} is empty; delete it to make a new node id")
    _known[path] = found
    return found


def prefix(settings: Settings) -> str:
    """The start of every Redis key of this node, without a trailing colon (``oh:3f2a...``)."""
    return settings.redis.key_prefix or f"oh:{node_id(settings)}"
