"""The evidence store against a real IPFS daemon (js-ipfs): CIDs computed here equal the
daemon's, photos round-trip, limits hold, and a missing CID, a stopped daemon or a daemon
that lies each give their own error."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import ipfshttpclient
import pytest
from devstack.system import free_port
from PIL import Image
from skimage import data as skdata

from core import cid as cids
from core.errors import InvalidInput, Unavailable
from core.evidence import (
    EvidenceMismatch,
    EvidenceMissing,
    EvidenceStore,
    EvidenceTooLarge,
    allowed_types,
    api_multiaddr,
)
from core.settings import Settings
from devstack import ipfs as stack_ipfs
from tests.conftest import REPO, Node

# ipfshttpclient 0.7 passes urllib3 an argument it ignores (core.evidence silences it outside pytest).
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter is no longer needed:FutureWarning")

CHUNK = cids.CHUNK_SIZE
TWO_LEVELS = cids.MAX_LINKS * CHUNK + 1  # one leaf more than a node holds: a second level appears


def _bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed * 7919 + n).randbytes(n)


def _jpeg(side: int, quality: int) -> bytes:
    out = io.BytesIO()
    photo = Image.fromarray(skdata.astronaut()).resize((side, side), Image.Resampling.LANCZOS)
    photo.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _settings(url: str, **extra: object) -> Settings:
    return Settings().replace(evidence={"ipfs_url": url, **extra})


def _multiaddr(url: str) -> str:
    return api_multiaddr(url)


@pytest.fixture(scope="module")
def client(ipfs: str) -> Iterator[ipfshttpclient.Client]:
    """A plain client to ask the daemon directly, independent of core.evidence."""
    c = ipfshttpclient.Client(_multiaddr(ipfs), session=True, timeout=120)
    yield c
    c.close()


@pytest.fixture
async def store(ipfs: str) -> AsyncIterator[EvidenceStore]:
    s = EvidenceStore(_settings(ipfs, ipfs_timeout=2.0))
    yield s
    await s.close()


# CIDs.


def test_known_vectors() -> None:
    assert cids.cid_of(b"hello world\n") == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    assert cids.cid_of(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert cids.normalize("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o").startswith("bafybei")
    assert cids.is_cid("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
    for bad in ("", "x", "bafkrei", "Qm123", "../etc/passwd"):
        assert not cids.is_cid(bad)
        with pytest.raises(ValueError, match="not a CID"):
            cids.normalize(bad)


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5_000_000, cids.MAX_LINKS * CHUNK, TWO_LEVELS]
)
def test_local_cid_equals_the_daemons(client: ipfshttpclient.Client, size: int) -> None:
    payload = _bytes(size)
    opts = {"cid-version": 1, "raw-leaves": True, "cid-base": "base32", "only-hash": True}
    daemon = client.add_bytes(payload, opts=opts)
    assert cids.cid_of(payload) == daemon
    assert daemon.startswith("bafkrei" if size <= CHUNK else "bafybei")


def test_dag_shape_one_and_two_levels(client: ipfshttpclient.Client) -> None:
    root = cids.file_dag(_bytes(TWO_LEVELS))
    assert root.filesize == TWO_LEVELS
    opts = {"cid-version": 1, "raw-leaves": True, "cid-base": "base32", "pin": False}
    cid = client.add_bytes(_bytes(TWO_LEVELS), opts=opts)
    assert cid == str(root.cid)
    top = client.object.links(cid)["Links"]
    assert len(top) == 2  # 174 leaves under the first child, 1 under the second
    assert sum(link["Size"] for link in top) + len(client.block.get(cid)) == root.tsize
    first = client.object.links(top[0]["Hash"])["Links"]
    assert len(first) == cids.MAX_LINKS and {link["Size"] for link in first} == {CHUNK}
    assert [link["Size"] for link in client.object.links(top[1]["Hash"])["Links"]] == [1]


# The store.


async def test_photo_round_trip_pinned(store: EvidenceStore, ipfs: str) -> None:
    for photo in (_jpeg(860, 95), _jpeg(1536, 97)):  # one raw block; then a chunked file
        cid = await store.put(photo)
        assert cid == cids.cid_of(photo)
        assert cid.startswith("bafkrei" if len(photo) <= CHUNK else "bafybei")
        assert await store.get(cid, max_bytes=len(photo)) == photo
        assert await store.put(photo) == cid  # adding again is harmless
        pinned = httpx.post(f"{ipfs}/api/v0/pin/ls", params={"arg": cid, "timeout": "2s"}, timeout=5)
        assert pinned.status_code == 200, pinned.text
        assert {cids.normalize(k): v["Type"] for k, v in pinned.json()["Keys"].items()} == {cid: "recursive"}


async def test_known_vector_through_the_daemon(store: EvidenceStore) -> None:
    cid = await store.put(b"hello world\n")
    assert cid == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    # Any spelling of the same CID reads the same bytes.
    base58 = str(cids.CID.decode(cid).set(base="base58btc"))
    assert await store.get(base58, max_bytes=100) == b"hello world\n"


async def test_limits(store: EvidenceStore) -> None:
    small = _bytes(1000, seed=1)
    cid = await store.put(small)
    assert await store.get(cid, max_bytes=1000) == small
    with pytest.raises(EvidenceTooLarge) as too_large:
        await store.get(cid, max_bytes=999)
    assert too_large.value.status == 413
    big = _bytes(3 * CHUNK + 5, seed=2)
    big_cid = await store.put(big)
    with pytest.raises(EvidenceTooLarge):
        await store.get(big_cid, max_bytes=CHUNK)
    assert await store.get(big_cid) == big  # default limit: OH_EVIDENCE_MAX_BYTES
    limited = EvidenceStore(store.settings.replace(evidence={"evidence_max_bytes": 999}))
    try:
        with pytest.raises(EvidenceTooLarge):
            await limited.put(small)
    finally:
        await limited.close()


async def test_bad_cids_are_invalid_input(store: EvidenceStore) -> None:
    v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # cannot be checked: not raw leaves
    for bad in ("", "nope", "../../etc/passwd", v0):
        with pytest.raises(InvalidInput):
            await store.get(bad, max_bytes=10)


async def test_missing_cid_fails_quickly_as_not_found(store: EvidenceStore) -> None:
    absent = cids.cid_of(b"never added " + os.urandom(16))
    started = time.monotonic()
    with pytest.raises(EvidenceMissing) as missing:
        await store.get(absent, max_bytes=1000)
    elapsed = time.monotonic() - started
    assert elapsed < store.settings.evidence.ipfs_timeout + 3, elapsed
    assert missing.value.status == 404 and absent in missing.value.detail
    assert await store.ready()


def test_settings_and_addresses() -> None:
    settings = Settings()
    assert (
        settings.evidence.ipfs_url == "http://127.0.0.1:5001"
        and settings.evidence.evidence_max_bytes == 25 * 1024 * 1024
    )
    assert allowed_types(settings) == {
        "image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime", "video/webm"
    }  # fmt: skip
    assert api_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert api_multiaddr("http://kubo.internal:5001/") == "/dns/kubo.internal/tcp/5001/http"
    assert api_multiaddr("https://[::1]:5443") == "/ip6/::1/tcp/5443/https"
    assert api_multiaddr("/ip4/10.0.0.2/tcp/5001/http") == "/ip4/10.0.0.2/tcp/5001/http"
    for bad in ("127.0.0.1:5001", "ftp://x:1", "http://h:5001/api/v0"):
        with pytest.raises(ValueError, match="OH_IPFS_URL"):
            api_multiaddr(bad)


# A daemon of the test's own, to stop, kill and restart.


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


class FakeServer:
    """An HTTP server that is not an honest IPFS daemon: ``mode`` "web" (any other program on
    the port) or "liar" (speaks the RPC API but returns wrong CIDs and bytes)."""

    def __init__(self) -> None:
        self.mode = "web"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _drain(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        self.rfile.read(size + 2)
                        if size == 0:
                            return
                self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                self._drain()
                path = self.path.split("?")[0]
                if owner.mode == "web":
                    body, kind = b'{"status": "ok"}', "application/json"
                elif path == "/api/v0/version":
                    body, kind = b'{"Version": "0.0.0-liar"}', "application/json"
                elif path == "/api/v0/add":
                    wrong = cids.cid_of(b"something else")
                    body, kind = json.dumps({"Name": wrong, "Hash": wrong, "Size": "14"}).encode(), "application/json"
                else:
                    body, kind = b"not the bytes you asked for", "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def own_daemon(tmp_path_factory: pytest.TempPathFactory, fake: FakeServer) -> Iterator[tuple[Path, str]]:
    """ensure_ipfs while the default port holds a web server that is not IPFS: ours starts on
    the fallback port."""
    folder = tmp_path_factory.mktemp("own-ipfs")
    fallback = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stack_ipfs, "DEFAULT_PORT", fake.port)
        mp.setattr(stack_ipfs, "FALLBACK_PORT", fallback)
        fake.mode = "web"
        url = stack_ipfs.ensure_ipfs(folder)
    assert url == stack_ipfs.ipfs_url(fallback)
    yield folder, url
    stack_ipfs.stop_ipfs(folder)


def test_only_a_real_ipfs_api_counts(fake: FakeServer, ipfs: str) -> None:
    fake.mode = "web"
    assert not stack_ipfs.is_ipfs(fake.url)
    assert not stack_ipfs.is_ipfs(f"http://127.0.0.1:{free_port()}")
    assert stack_ipfs.is_ipfs(ipfs)


def test_install_is_cached_outside_the_clone() -> None:
    started = time.monotonic()
    binary = stack_ipfs.install_ipfs()
    assert time.monotonic() - started < 1.0
    assert binary == stack_ipfs.install_ipfs() and binary.exists()
    assert REPO not in binary.parents
    folder = stack_ipfs.install_dir()
    assert binary.is_relative_to(folder) and folder.name.startswith("js-ipfs-0.66.1-")
    manifest = json.loads((folder / "package.json").read_text())
    assert manifest["dependencies"] == {"ipfs": "0.66.1"} and manifest["overrides"] == {"mortice": "3.1.0"}


def test_install_runs_once_and_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in npm (the real install takes minutes): slow, counting its runs, failing on demand.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "npm").write_text(
        "#!/bin/sh\n"
        'echo run >> "$NPM_RUNS"\n'
        "sleep 0.5\n"
        '[ -n "$NPM_FAIL" ] && { echo "npm ERR! boom" >&2; exit 1; }\n'
        "mkdir -p node_modules/.bin && touch node_modules/.bin/jsipfs\n"
    )
    (tools / "npm").chmod(0o755)
    runs = tmp_path / "runs"
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setenv("NPM_RUNS", str(runs))
    monkeypatch.setenv("OH_IPFS_CACHE", str(tmp_path / "cache"))
    target = stack_ipfs.install_dir()
    assert target.parent == tmp_path / "cache"

    monkeypatch.setenv("NPM_FAIL", "1")
    with pytest.raises(RuntimeError, match="boom"):
        stack_ipfs.install_ipfs()
    assert not target.exists() and not stack_ipfs.installed()
    assert not list(target.parent.glob(f".{target.name}.tmp-*"))  # nothing half-done is left

    monkeypatch.delenv("NPM_FAIL")
    interrupted = target.parent / f".{target.name}.tmp-killed"  # as a kill -9 mid-install leaves it
    interrupted.mkdir()
    runs.unlink()
    with ThreadPoolExecutor(max_workers=3) as pool:
        paths = set(pool.map(lambda _: stack_ipfs.install_ipfs(), range(3)))
    assert paths == {target / "node_modules" / ".bin" / "jsipfs"}
    assert runs.read_text().count("run") == 1  # the others waited on the lock, then reused it
    assert not interrupted.exists() and stack_ipfs.installed()


async def test_daemon_down_is_unavailable_then_restart_works(own_daemon: tuple[Path, str]) -> None:
    folder, url = own_daemon
    port = int(url.rsplit(":", 1)[1])
    store = EvidenceStore(_settings(url, ipfs_timeout=2.0).replace(db={"retry_after_seconds": 7}))
    try:
        photo = _jpeg(512, 90)
        cid = await store.put(photo)
        assert stack_ipfs.ensure_ipfs(folder) == url  # ours is found again

        stack_ipfs.stop_ipfs(folder)
        assert stack_ipfs.our_port(folder) is None
        assert not await store.ready()
        for call in (store.put(b"x"), store.get(cid, max_bytes=len(photo))):
            started = time.monotonic()
            with pytest.raises(Unavailable) as down:
                await call
            assert time.monotonic() - started < 5
            assert down.value.status == 503 and down.value.headers == {"Retry-After": "7"}
            assert down.value.detail == "evidence store (IPFS) unavailable"

        assert stack_ipfs.start_ipfs(folder, port) == url
        assert await store.ready()
        assert await store.get(cid, max_bytes=len(photo)) == photo  # the repo kept it

        # kill -9 leaves js-ipfs's repo.lock behind; a restart must not be refused for it.
        pid = int((folder / "ipfs" / "jsipfs.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while stack_ipfs.our_port(folder) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (folder / "ipfs" / "repo.lock").exists()
        with pytest.raises(Unavailable):
            await store.get(cid, max_bytes=len(photo))
        assert stack_ipfs.start_ipfs(folder, port) == url
        assert await store.get(cid, max_bytes=len(photo)) == photo

        # A daemon we lost track of (no pid file) keeps its repo: no second daemon, no lock removed.
        pidfile = folder / "ipfs" / "jsipfs.pid"
        saved = pidfile.read_text()
        pidfile.unlink()
        with pytest.raises(RuntimeError, match="not started by us"):
            stack_ipfs.start_ipfs(folder, free_port())
        assert (folder / "ipfs" / "repo.lock").exists()
        pidfile.write_text(saved)
        assert stack_ipfs.our_port(folder) == port
    finally:
        await store.close()


async def test_a_lying_daemon_is_never_believed(fake: FakeServer) -> None:
    fake.mode = "liar"
    store = EvidenceStore(_settings(fake.url))
    try:
        with pytest.raises(EvidenceMismatch):
            await store.put(b"hello world\n")
        with pytest.raises(EvidenceMismatch):
            await store.get(cids.cid_of(b"hello world\n"), max_bytes=1000)
        assert await store.ready()  # it does answer "version"
    finally:
        await store.close()
        fake.mode = "web"


async def test_ready_lists_ipfs(node: Node) -> None:
    async with node.client() as c:
        ready = await c.get("/ready")
    checks = {ch["name"]: ch for ch in ready.json()["checks"]}
    assert checks["ipfs"]["ok"] is True, ready.text
