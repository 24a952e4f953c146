"""Database server connection settings, with passwords kept out of the registry.

The registry row stores the DSN without its password. The password comes from the
environment (``OH_DB_PASSWORD_<ALIAS>``) or from ``<data_dir>/secrets/db_servers.json``
(mode 0600), written by ``oneheart server add`` when the DSN it was given held one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from core.errors import InvalidInput
from core.settings import Settings


def split_password(dsn: str) -> tuple[str, str | None]:
    try:
        url = make_url(dsn)
    except Exception as exc:
        raise InvalidInput(f"not a database URL: {type(exc).__name__}") from None
    if url.get_backend_name() != "postgresql" or not url.host or not url.database:
        raise InvalidInput("DSN must look like postgresql://user@host:port/database")
    password = url.password
    # URL.set(password=None) keeps the old password: build the bare URL explicitly.
    bare = URL.create(
        "postgresql", username=url.username, host=url.host, port=url.port, database=url.database, query=url.query
    ).render_as_string(hide_password=False)
    return bare, (str(password) if password is not None else None)


def _secrets_file(settings: Settings) -> Path:
    return settings.secrets_dir / "db_servers.json"


def _read(settings: Settings) -> dict[str, str]:
    path = _secrets_file(settings)
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def store_password(settings: Settings, alias: str, password: str) -> None:
    path = _secrets_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read(settings)
    data[alias] = password
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def full_dsn(settings: Settings, alias: str, bare_dsn: str) -> str:
    """The DSN with its password put back, for opening a pool. Never log the result."""
    password = os.environ.get(f"OH_DB_PASSWORD_{alias.upper().replace('-', '_')}") or _read(settings).get(alias)
    if not password:
        return bare_dsn
    return make_url(bare_dsn).set(password=password).render_as_string(hide_password=False)
