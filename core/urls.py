"""URLs that come from clients: redirect URIs and adding query parameters to them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from core.errors import InvalidInput

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CUSTOM_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")  # reverse-DNS: org.oneheart.app
MAX_PARAM = 2048


def check_redirect_uri(uri: str, *, public: bool) -> str:
    """https anywhere, http only on loopback, a reverse-DNS private-use scheme for public clients."""
    if not uri or len(uri) > MAX_PARAM or any(c.isspace() for c in uri):
        raise InvalidInput(f"redirect URI {uri!r} is empty, too long or contains spaces")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise InvalidInput(f"redirect URI {uri!r} is not a valid URI") from None
    if "#" in uri:
        raise InvalidInput(f"redirect URI {uri!r} must not have a fragment")
    if parts.scheme in ("http", "https"):
        if not host or parts.username is not None or parts.password is not None:
            raise InvalidInput(f"redirect URI {uri!r} needs a host and no user information")
        if parts.scheme == "http" and host not in LOOPBACK:
            raise InvalidInput(f"redirect URI {uri!r}: http is allowed only for 127.0.0.1, localhost and [::1]")
        return uri
    if CUSTOM_SCHEME.fullmatch(parts.scheme) and (parts.path or parts.netloc):
        if not public:
            raise InvalidInput(f"redirect URI {uri!r}: private-use schemes are for public (native) clients only")
        return uri
    raise InvalidInput(
        f"redirect URI {uri!r} must be https, http on loopback, or a reverse-DNS private-use scheme "
        "(com.example.app:/callback)"
    )


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"
