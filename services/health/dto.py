from __future__ import annotations

import msgspec


class Check(msgspec.Struct):
    name: str
    ok: bool
    ms: float
    error: str | None = None


class Readiness(msgspec.Struct):
    status: str
    checks: list[Check]


class Liveness(msgspec.Struct):
    status: str
