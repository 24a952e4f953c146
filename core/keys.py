"""Signing keys that rotate, and the JWKS that publishes them.

A :class:`KeyRing` keeps private JWKs as files under ``<data_dir>/secrets/<name>/`` (mode 0600;
share that folder between replicas of a node). The newest key signs; keys stay published
for a grace period after a newer one appears, so tokens they signed keep verifying until
they expire. ``ensure_current`` makes a new key when the newest is older than the rotation
period.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

Alg = Literal["ES256", "RS256"]


@dataclass(frozen=True)
class StoredKey:
    kid: str
    created: float
    key: ECKey | RSAKey


class KeyRing:
    def __init__(self, folder: Path, alg: Alg, *, rotate_after: float, grace: float) -> None:
        self.folder, self.alg, self.rotate_after, self.grace = folder, alg, rotate_after, grace
        self._keys: list[StoredKey] = []
        self._verifier: tuple[float, KeySet] | None = None

    def _generate(self) -> StoredKey:
        kid = f"{time.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
        key: ECKey | RSAKey = (
            ECKey.generate_key("P-256", private=True)
            if self.alg == "ES256"
            else RSAKey.generate_key(2048, private=True)
        )
        created = time.time()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{kid}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"created": created, "jwk": key.as_dict(private=True)}, fh)
        return StoredKey(kid, created, key)

    def load(self) -> KeyRing:
        keys = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
            doc = json.loads(path.read_text())
            cls = ECKey if doc["jwk"]["kty"] == "EC" else RSAKey
            keys.append(StoredKey(path.stem, float(doc["created"]), cls.import_key(doc["jwk"])))
        self._keys = sorted(keys, key=lambda k: k.created)
        self._verifier = None
        return self

    def ensure_current(self, now: float | None = None) -> KeyRing:
        """Load, and add a key when there is none or the newest is due for rotation."""
        now = time.time() if now is None else now
        self.load()
        if not self._keys or now - self._keys[-1].created >= self.rotate_after:
            self._keys.append(self._generate())
            self._verifier = None
        return self

    def rotate(self) -> str:
        self.load()
        self._keys.append(self._generate())
        self._verifier = None
        return self._keys[-1].kid

    @property
    def current(self) -> StoredKey:
        if not self._keys:
            self.ensure_current()
        return self._keys[-1]

    def published(self, now: float | None = None) -> list[StoredKey]:
        """The current key and older ones still within their grace period."""
        now = time.time() if now is None else now
        keys = self._keys
        live = [keys[-1]] if keys else []
        for older, newer in itertools.pairwise(keys):
            if now - newer.created < self.grace:
                live.append(older)
        return sorted(live, key=lambda k: k.created)

    def jwks(self) -> dict[str, Any]:
        out = []
        for stored in self.published():
            public = stored.key.as_dict(private=False)
            public.update(kid=stored.kid, use="sig", alg=self.alg)
            out.append(public)
        return {"keys": out}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.current
        return jwt.encode({"alg": self.alg, "kid": key.kid, "typ": "JWT"}, claims, key.key, algorithms=[self.alg])

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by one of the published keys (signature only)."""
        now = time.monotonic()
        if self._verifier is None or self._verifier[0] < now:
            # Importing keys costs more than verifying: keep the set, recheck grace once a minute.
            self._verifier = (now + 60, KeySet.import_key_set(self.jwks()))  # type: ignore[arg-type]
        return verify_with_keys(token, self._verifier[1], [self.alg])


def verify_with_jwks(token: str, jwks: dict[str, Any], algorithms: list[str]) -> dict[str, Any]:
    """Check the signature of ``token`` against a JWKS; only ``algorithms`` (never ``none``).

    Raises ``ValueError`` with a short reason. Claims (iss, aud, exp, ...) are the caller's.
    """
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed key set: {type(exc).__name__}") from None
    return verify_with_keys(token, keys, algorithms)


def verify_with_keys(token: str, keys: KeySet, algorithms: list[str]) -> dict[str, Any]:
    if "none" in [a.lower() for a in algorithms]:
        raise ValueError("alg none is never accepted")
    try:
        token_obj = jwt.decode(token, keys, algorithms=algorithms)
    except JoseError as exc:
        raise ValueError(f"invalid token: {exc.error}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed token: {type(exc).__name__}") from None
    return dict(token_obj.claims)
