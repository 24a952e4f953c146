"""Synapse homeservers for development and tests: one per territory, federating on loopback.

Federation always runs over TLS, so the stack makes a small certificate authority of its own
(``<data_dir>/synapse/ca``) and a server certificate for ``localhost``/``127.0.0.1`` that every
homeserver trusts through ``federation_custom_ca_list``. Each homeserver is named
``localhost:<federation port>`` (its TLS federation listener) and serves the client-server API
on a second, plain-HTTP loopback port. Data (SQLite, media, signing key, log) lives under
``<data_dir>/synapse/<name>``. See ``shared/notes/synapse-federation.md`` for the checked facts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devstack.system import pid_alive, port_open, read_pid, stop_pid, wait_for

START_TIMEOUT = 60.0
PROGRAM = "synapse.app.homeserver"
ADMIN_USER = "oneheart-admin"


# --- TLS ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_tls(folder: Path, names: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)) -> Tls:
    """A local CA and one server certificate with SANs for ``names`` and ``ips`` (made once).

    A wildcard such as ``*.localhost`` is refused by Synapse's verifier: every name is listed."""
    tls = Tls(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    if tls.ca.exists() and tls.cert.exists() and tls.key.exists():
        return tls
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OneHeart local federation CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "ca.key", _pem_key(ca_key), 0o600)
    _write(tls.key, _pem_key(key), 0o600)
    _write(tls.cert, cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(tls.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
    return tls


# --- configuration --------------------------------------------------------------------------
@dataclass
class Homeserver:
    """One homeserver: its folder, ports and the secrets its configuration needs."""

    folder: Path
    federation_port: int
    client_port: int

    @property
    def registration_shared_secret(self) -> str:
        """Made once per homeserver folder: admin tools register users with it."""
        return _stable_secret(self.folder, "registration")

    @property
    def server_name(self) -> str:
        return f"localhost:{self.federation_port}"

    @property
    def url(self) -> str:
        """The client-server API (plain HTTP on loopback)."""
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def config_path(self) -> Path:
        return self.folder / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.folder / "homeserver.log"

    @property
    def pid_path(self) -> Path:
        return self.folder / "homeserver.pid"


def oidc_provider(*, issuer: str, client_id: str, client_secret: str) -> dict[str, Any]:
    """Single sign-on through the node's built-in OIDC provider (``<public_url>/oidc``).

    The Matrix localpart is the account's username; the gateway links the Matrix user to the
    player through the SSO identity Synapse records (``external_ids``), not through the name."""
    return {
        "idp_id": "oneheart",
        "idp_name": "OneHeart",
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": client_secret,
        "client_auth_method": "client_secret_post",
        "scopes": ["openid", "profile"],
        "pkce_method": "always",
        # The development provider is plain HTTP on loopback; production issuers are HTTPS.
        "skip_verification": issuer.startswith("http://127.0.0.1") or issuer.startswith("http://localhost"),
        "user_mapping_provider": {
            "config": {
                "localpart_template": "{{ user.preferred_username }}",
                "display_name_template": "{{ user.name or user.preferred_username }}",
            }
        },
    }


# Raised limits: the defaults (0.2 messages/s) throttle tests and demos on purpose-built servers.
_GENEROUS = {"per_second": 1000, "burst_count": 1000}
RELAXED_LIMITS: dict[str, Any] = {
    "rc_message": _GENEROUS,
    "rc_registration": _GENEROUS,
    "rc_login": {"address": _GENEROUS, "account": _GENEROUS, "failed_attempts": _GENEROUS},
    "rc_joins": {"local": _GENEROUS, "remote": _GENEROUS},
    "rc_joins_per_room": _GENEROUS,
    "rc_invites": {"per_room": _GENEROUS, "per_user": _GENEROUS, "per_issuer": _GENEROUS},
    "rc_admin_redaction": _GENEROUS,
    "rc_room_creation": _GENEROUS,
    "rc_media_create": _GENEROUS,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 1000,
        "sleep_delay": 1,
        "reject_limit": 1000,
        "concurrent": 100,
    },
}


def write_config(
    hs: Homeserver,
    tls: Tls,
    *,
    appservices: list[Path] = (),  # type: ignore[assignment]
    oidc: dict[str, Any] | None = None,
    sso_client_whitelist: list[str] = (),  # type: ignore[assignment]
    limits: dict[str, Any] | None = None,
) -> Path:
    """Write ``homeserver.yaml`` (JSON is YAML) and its log config; returns the config path."""
    hs.folder.mkdir(parents=True, exist_ok=True)
    log_config = hs.folder / "log.yaml"
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(request)s %(message)s"}},
                "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}},
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "filename": str(hs.log_path),
                        "formatter": "plain",
                        "filters": ["context"],
                        "encoding": "utf8",
                    }
                },
                "loggers": {"synapse.storage.SQL": {"level": "WARNING"}, "twisted": {"level": "WARNING"}},
                "root": {"level": "INFO", "handlers": ["file"]},
                "disable_existing_loggers": False,
            },
            indent=1,
        )
    )
    loopback = ["127.0.0.1"]
    config: dict[str, Any] = {
        "server_name": hs.server_name,
        "public_baseurl": hs.url + "/",
        "report_stats": False,
        "listeners": [
            {
                "port": hs.federation_port,
                "bind_addresses": loopback,
                "type": "http",
                "tls": True,
                "resources": [{"names": ["federation"], "compress": False}],
            },
            {
                "port": hs.client_port,
                "bind_addresses": loopback,
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client", "media"], "compress": False}],
            },
        ],
        "tls_certificate_path": str(tls.cert),
        "tls_private_key_path": str(tls.key),
        "federation_custom_ca_list": [str(tls.ca)],
        # Loopback peers: the default blocklist holds 127.0.0.0/8 (and ::1).
        "ip_range_blacklist": [],
        "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
        "federation_ip_range_blacklist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        # A peer that was down is tried again within seconds, not after ten minutes.
        "federation": {
            "destination_min_retry_interval": "1s",
            "destination_retry_multiplier": 2,
            "destination_max_retry_interval": "10s",
        },
        "database": {"name": "sqlite3", "args": {"database": str(hs.folder / "homeserver.db")}},
        "log_config": str(log_config),
        "media_store_path": str(hs.folder / "media"),
        "signing_key_path": str(hs.folder / "signing.key"),
        "registration_shared_secret": hs.registration_shared_secret,
        "macaroon_secret_key": _stable_secret(hs.folder, "macaroon"),
        "form_secret": _stable_secret(hs.folder, "form"),
        "enable_registration": False,
        "app_service_config_files": [str(p) for p in appservices],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "enable_metrics": False,
        "max_upload_size": "50M",
        "allow_public_rooms_over_federation": True,
        **(limits or {}),
    }
    if oidc is not None:
        config["oidc_providers"] = [oidc]
        config["sso"] = {"client_whitelist": list(sso_client_whitelist)}
    _write(hs.config_path, json.dumps(config, indent=1).encode(), 0o600)
    return hs.config_path


def _stable_secret(folder: Path, name: str) -> str:
    path = folder / f".{name}_secret"
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _write(path, secrets.token_urlsafe(32).encode(), 0o600)
    return path.read_text().strip()


# --- processes --------------------------------------------------------------------------------
def our_pid(hs: Homeserver) -> int | None:
    return read_pid(hs.pid_path, PROGRAM)


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when a homeserver's client API answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/_matrix/client/versions", timeout=timeout) as resp:  # noqa: S310
            return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def start_synapse(hs: Homeserver, *, python: str = sys.executable) -> int:
    """Start Synapse for ``hs`` (its config must be written) and wait until both listeners
    answer; returns its pid. A server of ours that already runs is reused."""
    running = our_pid(hs)
    if running is not None and answers(hs.url):
        return running
    for port in (hs.federation_port, hs.client_port):
        if port_open("127.0.0.1", port):
            raise RuntimeError(f"port {port} is taken by another program; cannot start Synapse in {hs.folder}")
    with (hs.folder / "stdout.log").open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [python, "-m", PROGRAM, "-c", str(hs.config_path)],
            cwd=hs.folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    # Synapse writes its own pid file only when it daemonizes itself: we keep it.
    hs.pid_path.write_text(f"{proc.pid}\n")

    def ready() -> bool:
        if proc.poll() is not None:
            tail = (hs.folder / "stdout.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Synapse exited with code {proc.returncode}; see {hs.log_path}\n{tail}")
        return answers(hs.url, 0.5) and port_open("127.0.0.1", hs.federation_port)

    wait_for(ready, START_TIMEOUT, f"Synapse {hs.server_name} (log: {hs.log_path})", interval=0.1)
    return proc.pid


def stop_synapse(hs: Homeserver, timeout: float = 20.0) -> None:
    pid = our_pid(hs)
    if pid is not None:
        stop_pid(pid, "synapse", timeout)
    hs.pid_path.unlink(missing_ok=True)


def kill_synapse(hs: Homeserver) -> None:
    """SIGKILL (a crash, for tests)."""
    import os
    import signal

    pid = our_pid(hs)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, "synapse to die")


# --- users ----------------------------------------------------------------------------------
def _http(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback URLs we built
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return dict(json.loads(resp.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None


def register_user(hs: Homeserver, username: str, password: str, *, admin: bool = False) -> dict[str, Any]:
    """Create a user with the shared registration secret; returns ``{user_id, access_token, ...}``."""
    endpoint = f"{hs.url}/_synapse/admin/v1/register"
    nonce = _http("GET", endpoint)["nonce"]
    mac_hex = hmac.new(
        hs.registration_shared_secret.encode(),
        b"\x00".join(p.encode() for p in (nonce, username, password, "admin" if admin else "notadmin")),
        hashlib.sha1,
    ).hexdigest()
    body = {"nonce": nonce, "username": username, "password": password, "admin": admin, "mac": mac_hex}
    return _http("POST", endpoint, body)
