"""The evidence store: photo and video bytes kept on IPFS by CID, checked on the way in and out.

The node's IPFS daemon (Kubo in production, js-ipfs in development) is reached over its RPC
API with ipfshttpclient. That client is synchronous, so every call runs on a small thread pool
of its own and the event loop never blocks. Every call has a timeout: a CID the daemon lacks
would otherwise be searched for forever.

A CID is never taken on the daemon's word: ``put`` recomputes it from the bytes
(:func:`core.cid.cid_of`) and ``get`` checks the bytes it reads back against it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ipfshttpclient
import structlog
from ipfshttpclient import exceptions as ipfs_errors
from multiformats import CID

from core.cid import cid_of
from core.errors import AppError, InvalidInput, NotFound, Unavailable
from core.settings import Settings

log = structlog.get_logger(__name__)
# ipfshttpclient 0.7 still passes urllib3 an argument it ignores; the warning says nothing to us.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)
T = TypeVar("T")

# Daemon calls that may run at once; more wait for a free thread.
WORKERS = 8
READY_TIMEOUT = 2.0
_ADD_OPTS = {"cid-version": 1, "raw-leaves": True, "cid-base": "base32", "pin": True}


class EvidenceMissing(NotFound):
    """The daemon answers but does not have (or cannot find in time) the CID's bytes."""

    code = "evidence_not_found"


class EvidenceTooLarge(AppError):
    status, code = 413, "payload_too_large"


class EvidenceMismatch(AppError):
    """The daemon's CID or bytes do not match what was computed locally: never trusted."""

    status, code = 502, "evidence_mismatch"


def api_multiaddr(url: str) -> str:
    """``http://host:port`` (or a multiaddr) as the multiaddr ipfshttpclient wants."""
    if url.startswith("/"):
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"OH_IPFS_URL must look like http://host:port, not {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"OH_IPFS_URL must not have a path (the client adds /api/v0): {url!r}")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if ":" in host:
        proto = "ip6"
    elif host.replace(".", "").isdigit():
        proto = "ip4"
    else:
        proto = "dns"
    return f"/{proto}/{host}/tcp/{port}/{parts.scheme}"


def allowed_types(settings: Settings) -> frozenset[str]:
    """The MIME types accepted as evidence (``OH_EVIDENCE_TYPES``)."""
    return frozenset(t.strip().lower() for t in settings.evidence.evidence_types.split(",") if t.strip())


def _parse_cid(text: str) -> CID:
    try:
        cid = CID.decode(text.strip())
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"not a CID: {text[:100]!r}") from None
    if cid.version != 1 or cid.codec.name not in ("raw", "dag-pb") or cid.hashfun.name != "sha2-256":
        raise InvalidInput("evidence CIDs are CIDv1 (raw or dag-pb) with sha2-256")
    return cid


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value * 1000))}ms"


class EvidenceStore:
    """Evidence bytes on the node's IPFS daemon; one per process (``app.state.evidence``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.addr = api_multiaddr(settings.evidence.ipfs_url)
        self._client: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ipfs")

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                # Client(addr), not connect(): connect() checks the daemon's version and rejects
                # js-ipfs and every Kubo >= 0.8. Connect quickly; reads may take the whole timeout.
                timeout = self.settings.evidence.ipfs_timeout
                self._client = ipfshttpclient.Client(self.addr, session=True, timeout=(min(timeout, 3.0), timeout + 5))
            return self._client

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _unavailable(self) -> Unavailable:
        return Unavailable(
            "evidence store (IPFS) unavailable",
            headers={"Retry-After": str(self.settings.db.retry_after_seconds)},
        )

    async def put(self, data: bytes) -> str:
        """Add and pin ``data``; its base32 CIDv1, checked against the one computed here."""
        if len(data) > self.settings.evidence.evidence_max_bytes:
            raise EvidenceTooLarge(f"evidence is larger than {self.settings.evidence.evidence_max_bytes} bytes")
        opts = {**_ADD_OPTS, "timeout": _seconds(self.settings.evidence.ipfs_timeout)}

        def add() -> str:
            return str(self._get_client().add_bytes(data, opts=opts))

        try:
            expected, got = await asyncio.gather(self._call(cid_of, data), self._call(add))
        except ipfs_errors.Error as exc:
            log.warning("ipfs add failed", error=f"{type(exc).__name__}: {exc}", addr=self.addr)
            raise self._unavailable() from None
        if got != expected:
            log.error("ipfs returned a CID that does not match the bytes", got=got, expected=expected)
            raise EvidenceMismatch("the evidence store returned a CID that does not match the bytes")
        return expected

    async def get(self, cid: str, max_bytes: int | None = None) -> bytes:
        """The bytes of ``cid``, at most ``max_bytes`` (default OH_EVIDENCE_MAX_BYTES), checked."""
        parsed = _parse_cid(cid)
        want = str(parsed.set(base="base32"))
        limit = self.settings.evidence.evidence_max_bytes if max_bytes is None else max_bytes
        # One byte more than allowed tells "too large" from "exactly at the limit".
        opts = {"timeout": _seconds(self.settings.evidence.ipfs_timeout), "length": str(limit + 1)}

        def cat() -> bytes:
            chunks: list[bytes] = []
            size = 0
            stream = self._get_client().cat(want, opts=opts, stream=True)
            try:
                for chunk in stream:
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:  # a daemon that ignores "length" is still cut short
                        break
            finally:
                stream.close()
            return b"".join(chunks)

        try:
            data = await self._call(cat)
        except ipfs_errors.ErrorResponse as exc:
            # The daemon answered with an error: a timeout looking for the CID, or no such file.
            # Tell that apart from a daemon that has just gone away.
            if not await self.ready():
                raise self._unavailable() from None
            log.info("evidence not found", cid=want, error=str(exc)[:200])
            raise EvidenceMissing(f"evidence {want} is not in the store") from None
        except ipfs_errors.Error as exc:
            log.warning("ipfs cat failed", error=f"{type(exc).__name__}: {exc}", addr=self.addr)
            raise self._unavailable() from None
        if len(data) > limit:
            raise EvidenceTooLarge(f"evidence {want} is larger than {limit} bytes")
        actual = await self._call(cid_of, data)
        if actual != want:
            log.error("ipfs returned bytes that do not match their CID", cid=want, actual=actual)
            raise EvidenceMismatch(f"the evidence store returned bytes that do not match {want}")
        return data

    async def ready(self) -> bool:
        """True when the daemon answers ``version`` within a short time."""

        def version() -> bool:
            answer = self._get_client().version(timeout=READY_TIMEOUT)
            return "Version" in answer

        try:
            return await asyncio.wait_for(self._call(version), READY_TIMEOUT + 1)
        except (ipfs_errors.Error, TimeoutError):
            return False

    async def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        self._pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()
