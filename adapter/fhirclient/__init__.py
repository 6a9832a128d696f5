"""The FHIR client: the only code in sip-fhir that talks HTTP to a FHIR server."""

from adapter.fhirclient.client import FhirClient
from adapter.fhirclient.errors import (
    AuthError,
    Conflict,
    FatalError,
    FhirError,
    NotFound,
    Rejected,
    TemporaryError,
    entry_error,
    is_error_outcome,
)
from adapter.fhirclient.results import WriteResult, as_dict

__all__ = [
    "AuthError",
    "Conflict",
    "FatalError",
    "FhirClient",
    "FhirError",
    "NotFound",
    "Rejected",
    "TemporaryError",
    "WriteResult",
    "as_dict",
    "entry_error",
    "is_error_outcome",
]
