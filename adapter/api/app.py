"""The FastAPI application: `create_app(settings)` wires settings, login, audit log and routes.

Routes stay thin (parse, authorise, call one function, shape the answer); what they share is
injected (adapter.api.security, adapter.api.access). Things that run for the life of the
service (the scheduler) plug in as hooks: context managers entered at startup and left, in
reverse order, at shutdown.

Open without login: /healthz, /readyz, /metrics (unless SIP_FHIR_METRICS_PUBLIC=false), and
the API description (/docs, /openapi.json). None of them holds personal data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager

from fastapi import FastAPI

import adapter
from adapter.api import errors
from adapter.api.middleware import BodySizeLimit, RequestContext
from adapter.api.readiness import ReadinessCheck, default_checks
from adapter.api.routes import audit, health, indicators, ingest, pages, patients, tasks, worklist
from adapter.api.routes import hook as hook_routes
from adapter.api.routes import metrics as metrics_routes
from adapter.api.routes import minplan as minplan_routes
from adapter.api.routes import prea60 as prea60_routes
from adapter.api.routes import survey as survey_routes
from adapter.api.routes import survey_report as survey_report_routes
from adapter.api.security import Authenticator, build_authenticator
from adapter.api.ui import install as ui
from adapter.audit import AuditLog
from adapter.settings import Settings, get_settings

ServiceHook = Callable[[FastAPI], AbstractContextManager[object]]

DESCRIPTION = """\
SIP, patientkontrakt och Prea60-uppföljning som FHIR R4.

Logga in med `Authorization: Bearer <JWT>` (OIDC) eller `X-API-Key: <nyckel>`.
Uppslag av patientdata kräver rubriken `X-Purpose` (vard, uppfoljning eller kvalitet)
och loggas i granskningsloggen.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    with ExitStack() as stack:
        for hook in list(app.state.service_hooks):
            stack.enter_context(hook(app))
        yield


def create_app(
    settings: Settings | None = None,
    *,
    authenticator: Authenticator | None = None,
    audit_log: AuditLog | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    hooks: Sequence[ServiceHook] = (),
) -> FastAPI:
    """The service. Keyword arguments replace what is otherwise built from `settings`."""
    settings = settings or get_settings()
    app = FastAPI(
        title="sip-fhir",
        version=adapter.__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.authenticator = authenticator or build_authenticator(settings)
    app.state.audit_log = audit_log or AuditLog.for_settings(settings)
    app.state.readiness_checks = (
        dict(readiness_checks)
        if readiness_checks is not None
        else default_checks(settings, app.state.audit_log)
    )
    app.state.service_hooks = list(hooks)

    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)  # added last = outermost: sees every error

    app.include_router(health.router)
    app.include_router(metrics_routes.build_router(public=settings.metrics_public))
    app.include_router(audit.router)
    app.include_router(hook_routes.router)  # the FHIR server's subscription notifications
    for area in (ingest, worklist, patients, tasks, indicators):
        app.include_router(area.router)
    app.include_router(prea60_routes.router)  # unconfirmed Prea60 runs: list, confirm, reject
    app.include_router(prea60_routes.pages)  # ... and the worklist banner's buttons
    app.include_router(pages.router)  # the vårdsamordnare's pages (/ui) ...
    ui.install(app)  # ... their sessions, static files and error pages
    app.include_router(minplan_routes.router)  # "Min plan" page and PDF (/ui/patients/...)
    survey_routes.install(app)  # the SIP meeting survey's anonymous answer page (/enkat)
    app.include_router(survey_report_routes.router)  # its indicator per quarter (API)
    app.include_router(survey_report_routes.pages)  # and page (/ui/units/{hsa_id}/survey)
    return app
