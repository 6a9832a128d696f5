"""What the worklist, patient, task, indicator, ingest and page routes share: the app's Clinic,
the path and query parameters they take, and FHIR server faults as HTTP answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from pydantic import AfterValidator

from adapter import hsa
from adapter.api.clinic import Clinic
from adapter.api.principal import Principal, Role
from adapter.fhirclient import AuthError, FhirError, NotFound, TemporaryError
from adapter.followup.scope import ScopeError
from adapter.followup.service import FollowupService
from adapter.logs import get_logger
from adapter.worklist import PlanLabel
from adapter.worklist.listing import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MAX_PAGE_SIZE,
    SORT_KEYS,
    SORT_PATTERN,
    WorklistQuery,
)

_log = get_logger("adapter.api")

HSA_ID_PATTERN = f"^{hsa.PATTERN}$"
# A FHIR logical id ([A-Za-z0-9\-.]{1,64}) that is not only dots: never a path step.
ID_PATTERN = r"^[A-Za-z0-9\-.]*[A-Za-z0-9\-][A-Za-z0-9\-.]*$"

UnitPath = Annotated[
    str,
    Path(
        pattern=HSA_ID_PATTERN,
        description=f"Enhetens HSA-id, t.ex. {hsa.EXAMPLE}",
        examples=[hsa.EXAMPLE],
    ),
    AfterValidator(hsa.parse_hsa_id),  # normalised: the form the sources and the server hold
]
PatientPath = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        max_length=64,
        description="Patientens id på FHIR-servern (Patient.id): en ogenomskinlig referens, "
        "aldrig personnumret",
    ),
]
TaskPath = Annotated[
    str, Path(pattern=ID_PATTERN, max_length=64, description="Uppgiftens id (Task.id)")
]
AsOfQuery = Annotated[
    date | None,
    Query(description="Dagen listan avser, ÅÅÅÅ-MM-DD (standard: i dag, svensk tid)"),
]


def worklist_query(
    q: Annotated[
        str,
        Query(
            max_length=64,
            description="Namn eller födelsedatum (ÅÅÅÅMMDD), eller en del av något av dem; "
            "ett personnummer matchas på sitt datum (skicka bara datumet)",
        ),
    ] = "",
    plan: Annotated[
        str, Query(pattern="^(|SIP|patientkontrakt|ingen)$", description="Bara den planen")
    ] = "",
    overdue: Annotated[bool, Query(description="Bara patienter med något försenat")] = False,
    with_tasks: Annotated[bool, Query(description="Bara patienter med öppna uppgifter")] = False,
    sort: Annotated[
        str,
        Query(
            pattern=SORT_PATTERN,
            description=f"Kolumnen listan sorteras på ({', '.join(SORT_KEYS)}); `-` före för "
            "fallande. Standard: försenade först, sedan förfallodag",
        ),
    ] = DEFAULT_SORT,
    page: Annotated[int, Query(ge=1, description="Sidan, från 1")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Rader per sida")
    ] = DEFAULT_PAGE_SIZE,
) -> WorklistQuery:
    """The worklist's filters, order and page (adapter/worklist/listing.py), the API's and the
    page's alike."""
    return WorklistQuery(
        text=q,
        plan=PlanLabel(plan) if plan else None,
        overdue_only=overdue,
        with_tasks_only=with_tasks,
        sort=sort,
        page=page,
        page_size=page_size,
    )


WorklistQueryDep = Annotated[WorklistQuery, Depends(worklist_query)]


def followup_service(request: Request) -> FollowupService:
    """The app's one FollowupService (its notification worker), made on first use."""
    service = getattr(request.app.state, "followup_service", None)
    if service is None:
        service = FollowupService(request.app.state.settings)
        request.app.state.followup_service = service
    return service


def get_clinic(request: Request) -> Clinic:
    """The app's one Clinic, made on first use (with the app's follow-up engine)."""
    clinic = getattr(request.app.state, "clinic", None)
    if clinic is None:
        clinic = Clinic(request.app.state.settings, followup_service(request))
        request.app.state.clinic = clinic
    return clinic


ClinicDep = Annotated[Clinic, Depends(get_clinic)]

NOT_FOUND_PATIENT = "Patienten finns inte bland de patienter du har behörighet till."
NOT_FOUND_TASK = "Uppgiften finns inte bland de uppgifter du har behörighet till."


def may_see(principal: Principal, units: Iterable[str]) -> bool:
    """Patient data belonging to `units`: an admin always, a vårdsamordnare of one of them."""
    return principal.has_role(Role.ADMIN) or any(principal.can_read_unit(u) for u in units)


def audit_unit(principal: Principal, units: Iterable[str]) -> str | None:
    """The caller's unit an access is logged under: the first of `units` granted to the caller
    (None for an admin without units: the detail says what was shown)."""
    return next((u for u in sorted(units) if u in principal.units), None)


def fhir_problem(error: Exception) -> tuple[int, str]:
    """The HTTP status and Swedish message for a fault of the FHIR server (or its setup)."""
    if isinstance(error, ScopeError):
        return status.HTTP_503_SERVICE_UNAVAILABLE, str(error)
    if isinstance(error, TemporaryError):
        return (
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "FHIR-servern svarar inte just nu; försök igen om en stund.",
        )
    if isinstance(error, NotFound):
        return status.HTTP_404_NOT_FOUND, "Finns inte på FHIR-servern."
    if isinstance(error, AuthError):
        return status.HTTP_502_BAD_GATEWAY, "Adaptern får inte logga in på FHIR-servern."
    message = error.message if isinstance(error, FhirError) else str(error)
    return status.HTTP_502_BAD_GATEWAY, f"FHIR-servern svarade med ett fel: {message}"


@contextmanager
def fhir_errors() -> Iterator[None]:
    """FHIR server faults as HTTP errors with a Swedish reason (the server's, masked)."""
    try:
        yield
    except (FhirError, ScopeError) as error:
        code, message = fhir_problem(error)
        _log.warning("fhir server fault", status=code, error=message)
        raise HTTPException(code, detail=message) from None
