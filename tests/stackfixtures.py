"""Reusable pieces for tests that need real servers of their own.

``start_second_server`` makes a second PostgreSQL cluster (initdb) on a free port under the
run's tmp dir, so tests can prove routing across two database servers. Use it in a session
fixture and stop it with ``devstack.postgres.stop_cluster(path)`` in the teardown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack.postgres import ensure_cluster
from devstack.system import free_port


def start_second_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Start a fresh cluster; return its server DSN (database ``postgres``) and its folder."""
    path = tmp_path_factory.mktemp("pg-second")
    return ensure_cluster(path, free_port()), path
