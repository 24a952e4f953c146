"""Password hashing (argon2id) and client secrets.

Passwords are hashed with argon2-cffi's defaults (argon2id, RFC 9106 low-memory profile).
Client secrets are 256-bit random values made by the node, so a SHA-256 digest is enough
to store them (no dictionary to guess from) and keeps the token endpoint fast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_hasher = PasswordHasher()


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"the password must be at most {MAX_PASSWORD} characters")
    if not password.strip():
        raise WeakPassword("the password must not be blank")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one uses outdated parameters).

    ``stored=None`` (no such account) still runs one verification against a dummy hash, so
    an unknown username takes about as long as a wrong password. Blocking: run it in a thread.
    """
    if len(password) > MAX_PASSWORD:
        password = password[:MAX_PASSWORD]
        stored = None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None


def new_client_secret() -> tuple[str, str]:
    """(secret shown once, hash to store)."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_client_secret(secret)


def hash_client_secret(secret: str) -> str:
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def verify_client_secret(stored: str, secret: str) -> bool:
    return hmac.compare_digest(stored.encode(), hash_client_secret(secret).encode())
