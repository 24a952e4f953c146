"""Territory codes and the names built from them.

Every schema name, subject and cache key derives from a code that passed :func:`check_code`,
so no identifier reaches SQL or NATS unchecked.
"""

from __future__ import annotations

import re

from core.errors import InvalidInput

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
# Codes that would collide with names the platform uses itself.
RESERVED = frozenset({"global", "public", "registry", "admin", "system"})
GLOBAL = "global"


def check_code(code: str) -> str:
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise InvalidInput(
            "territory code must match ^[a-z][a-z0-9_]{1,30}$ (lowercase letter, then letters, digits, _)"
        )
    if code in RESERVED:
        raise InvalidInput(f"territory code {code!r} is reserved")
    return code


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise InvalidInput("server alias must match ^[a-z][a-z0-9_-]{0,30}$")
    return alias


def schema_for(code: str) -> str:
    """The Postgres schema of a territory (``global`` for the registry itself)."""
    if code == GLOBAL:
        return GLOBAL
    return f"territory_{check_code(code)}"


def quoted_schema(code: str) -> str:
    """The schema as a quoted SQL identifier; safe because the code was checked."""
    return f'"{schema_for(code)}"'
