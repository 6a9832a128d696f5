"""Error answers in Swedish JSON: `{"detail": ...}`, plus `errors` for invalid input.

Validation errors name the field and the reason but never echo the value sent: it may be a
personnummer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

# Starlette's default phrases, for errors raised without a detail of our own.
_DEFAULT_DETAIL = {
    status.HTTP_400_BAD_REQUEST: "Felaktig begäran.",
    status.HTTP_401_UNAUTHORIZED: "Inloggning saknas eller är ogiltig.",
    status.HTTP_403_FORBIDDEN: "Behörighet saknas.",
    status.HTTP_404_NOT_FOUND: "Det finns ingen sådan adress.",
    status.HTTP_405_METHOD_NOT_ALLOWED: "Metoden stöds inte på den här adressen.",
    status.HTTP_406_NOT_ACCEPTABLE: "Svarsformatet stöds inte.",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "Innehållstypen stöds inte.",
}

_PHRASES = {code.value: code.phrase for code in HTTPStatus}

# pydantic error types -> Swedish reason
_REASONS = {
    "missing": "saknas",
    "extra_forbidden": "okänt fält",
    "string_type": "ska vara text",
    "string_too_short": "är för kort",
    "string_too_long": "är för långt",
    "string_pattern_mismatch": "har fel format",
    "int_type": "ska vara ett heltal",
    "int_parsing": "ska vara ett heltal",
    "float_type": "ska vara ett tal",
    "float_parsing": "ska vara ett tal",
    "bool_type": "ska vara true eller false",
    "bool_parsing": "ska vara true eller false",
    "greater_than": "är för litet",
    "greater_than_equal": "är för litet",
    "less_than": "är för stort",
    "less_than_equal": "är för stort",
    "date_type": "ska vara ett datum (ÅÅÅÅ-MM-DD)",
    "date_parsing": "ska vara ett datum (ÅÅÅÅ-MM-DD)",
    "date_from_datetime_parsing": "ska vara ett datum (ÅÅÅÅ-MM-DD)",
    "datetime_type": "ska vara en tidpunkt (ISO 8601 med tidszon)",
    "datetime_parsing": "ska vara en tidpunkt (ISO 8601 med tidszon)",
    "datetime_from_date_parsing": "ska vara en tidpunkt (ISO 8601 med tidszon)",
    "timezone_aware": "ska ha en tidszon",
    "enum": "har ett okänt värde",
    "literal_error": "har ett okänt värde",
    "list_type": "ska vara en lista",
    "dict_type": "ska vara ett objekt",
    "model_type": "ska vara ett objekt",
    "model_attributes_type": "ska vara ett objekt",
    "json_invalid": "är inte giltig JSON",
}


def _reason(error: dict[str, Any]) -> str:
    if error.get("type") == "value_error":  # our validators raise ValueError with Swedish text
        cause = (error.get("ctx") or {}).get("error")
        if cause is not None:
            return str(cause)
    return _REASONS.get(str(error.get("type")), "har ett ogiltigt värde")


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "begäran"


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            # a JSON syntax error's loc is ("body", <character offset>): name the body only
            "field": "body" if e.get("type") == "json_invalid" else _field(tuple(e["loc"])),
            "reason": _reason(e),
        }
        for e in exc.errors()
    ]
    return JSONResponse(
        {"detail": "Ogiltig begäran: se fälten nedan.", "errors": errors},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    detail: Any = exc.detail
    if not isinstance(detail, str | dict | list) or detail == _PHRASES.get(exc.status_code):
        detail = _DEFAULT_DETAIL.get(exc.status_code, "Begäran kunde inte utföras.")
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
