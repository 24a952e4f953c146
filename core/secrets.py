"""Secrets the node needs but the database must not hold (server passwords, client secrets).

Each namespace is a JSON file under ``<data_dir>/secrets/`` written with mode 0600; an
environment variable ``OH_<PREFIX>_<NAME>`` overrides a stored value (for containers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.settings import Settings


def _file(settings: Settings, namespace: str) -> Path:
    return settings.secrets_dir / f"{namespace}.json"


def _read(settings: Settings, namespace: str) -> dict[str, str]:
    path = _file(settings, namespace)
    return dict(json.loads(path.read_text())) if path.exists() else {}


def store_secret(settings: Settings, namespace: str, name: str, value: str) -> None:
    path = _file(settings, namespace)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read(settings, namespace)
    data[name] = value
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def read_secret(settings: Settings, namespace: str, name: str, env_prefix: str) -> str | None:
    env = os.environ.get(f"OH_{env_prefix}_{name.upper().replace('-', '_')}")
    return env or _read(settings, namespace).get(name)
