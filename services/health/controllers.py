"""Liveness, and readiness of every backing service (each database server, NATS, Redis, IPFS)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec

from core.routing import Router
from services.health.dto import Liveness, Readiness
from services.health.service import Probe


def provide_probe(request: Request[Any, Any, Any], router: NamedDependency[Router]) -> Probe:
    state = request.app.state
    return Probe(router, state.nats, state.redis, state.evidence)


class HealthController(Controller):
    tags = ["operations"]
    include_in_schema = True
    opt = {"rate_group": None}
    dependencies = {"probe": Provide(provide_probe, sync_to_thread=False)}

    @get("/health", summary="Liveness")
    async def health(self) -> Liveness:
        return Liveness("ok")

    @get(
        "/ready",
        summary="Readiness of every backing service",
        responses={503: ResponseSpec(data_container=Readiness, description="A backing service is down")},
    )
    async def ready(self, probe: NamedDependency[Probe]) -> Response[Readiness]:
        readiness = await probe.readiness()
        return Response(readiness, status_code=200 if readiness.status == "ready" else 503)
