"""Each territory's Ed25519 checkpoint-signing keys, and the signed message.

Private keys are files ``<data_dir>/secrets/ledger/<territory>/<key_id>.json`` (mode 0600;
share the folder between the node's API and worker replicas, like the token keys). The first
checkpoint of a territory creates its key; ``oneheart ledger rotate-key`` adds a newer one.
Old keys stay published forever: checkpoints they signed must keep verifying.

``key_id`` is the first 16 hex digits of SHA-256(raw 32-byte public key). Public keys are
served as a JWK set (``kty OKP``, ``crv Ed25519``, RFC 8037) at ``GET /api/ledger/keys``.

A checkpoint's signature covers the UTF-8 bytes of::

    oneheart-ledger-checkpoint-v1|<territory>|<tree_size>|<root, lowercase hex>|<created_at>

with ``created_at`` formatted as in the entries (``YYYY-MM-DDTHH:MM:SS.ffffffZ``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.codes import check_code
from core.settings import Settings
from services.ledger.canonical import format_time

PREFIX = "oneheart-ledger-checkpoint-v1"


def checkpoint_message(territory: str, tree_size: int, root: bytes, created_at: datetime) -> bytes:
    return f"{PREFIX}|{territory}|{tree_size}|{root.hex()}|{format_time(created_at)}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_of(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    created: float
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def _folder(settings: Settings, territory: str) -> Path:
    return settings.secrets_dir / "ledger" / check_code(territory)


def load_keys(settings: Settings, territory: str) -> list[SigningKey]:
    """The territory's keys, oldest first."""
    folder = _folder(settings, territory)
    keys = []
    for path in folder.glob("*.json") if folder.exists() else []:
        doc = json.loads(path.read_text())
        private = Ed25519PrivateKey.from_private_bytes(_unb64(doc["d"]))
        key = SigningKey(path.stem, float(doc["created"]), private)
        if key_id_of(key.public) != key.key_id:
            raise ValueError(f"{path}: file name does not match its key")
        keys.append(key)
    return sorted(keys, key=lambda k: (k.created, k.key_id))


def new_key(settings: Settings, territory: str) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    key = SigningKey("", time.time(), private)
    key = SigningKey(key_id_of(key.public), key.created, private)
    folder = _folder(settings, territory)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = private.private_bytes_raw()
    fd = os.open(folder / f"{key.key_id}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"created": key.created, "d": _b64(raw), "x": _b64(key.public)}, fh)
    return key


def signing_key(settings: Settings, territory: str) -> SigningKey:
    """The newest key; made on first use."""
    keys = load_keys(settings, territory)
    return keys[-1] if keys else new_key(settings, territory)


def public_jwks(keys: list[SigningKey]) -> dict[str, Any]:
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": _b64(k.public),
                "kid": k.key_id,
                "alg": "EdDSA",
                "use": "sig",
                "created_at": format_time(datetime.fromtimestamp(k.created).astimezone()),
            }
            for k in keys
        ]
    }


def parse_jwks(doc: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """``{key_id: public key}`` from a JWK set as :func:`public_jwks` writes it.

    A key whose ``kid`` is not the hash of its bytes is refused (``ValueError``).
    """
    out: dict[str, Ed25519PublicKey] = {}
    for jwk in doc.get("keys", []):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        raw = _unb64(str(jwk["x"]))
        if len(raw) != 32 or key_id_of(raw) != jwk.get("kid"):
            raise ValueError(f"key {jwk.get('kid')!r}: kid is not the SHA-256 of its public key")
        out[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
    return out


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True
