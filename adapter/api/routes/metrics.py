"""Prometheus exposition of adapter.metrics.

Open by default: by construction the metrics hold counts, resource types and unit HSA-ids
(organisations), never personal data. `SIP_FHIR_METRICS_PUBLIC=false` requires a login
(any role) instead, for deployments where even unit workloads are not to be public.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from adapter import metrics
from adapter.api.security import current_principal


def _metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


def build_router(public: bool) -> APIRouter:
    router = APIRouter(tags=["drift"])
    router.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        summary="Mätvärden för Prometheus",
        dependencies=[] if public else [Depends(current_principal)],
        response_class=Response,
    )
    return router
