"""Database server connection settings, with passwords kept out of the registry.

The registry row stores the DSN without its password. The password comes from the
environment (``OH_DB_PASSWORD_<ALIAS>``) or from ``<data_dir>/secrets/db_servers.json``
(mode 0600, see ``core.secrets``), written by ``oneheart server add`` when the DSN held one.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from core.errors import InvalidInput
from core.secrets import read_secret, store_secret
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


def store_password(settings: Settings, alias: str, password: str) -> None:
    store_secret(settings, "db_servers", alias, password)


def full_dsn(settings: Settings, alias: str, bare_dsn: str) -> str:
    """The DSN with its password put back, for opening a pool. Never log the result."""
    password = read_secret(settings, "db_servers", alias, "DB_PASSWORD")
    if not password:
        return bare_dsn
    return make_url(bare_dsn).set(password=password).render_as_string(hide_password=False)
