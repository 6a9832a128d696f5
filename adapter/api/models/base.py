"""What the answers share: answers read straight from the read model's views, personnummer and
numbers as the API writes them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict

from adapter.domain import PersonId
from adapter.personnummer import written


def formatted(person: PersonId) -> str:
    """ÅÅÅÅMMDD-NNNN."""
    return written(person.digits)


def number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _formatted_person(value: object) -> object:
    return formatted(value) if isinstance(value, PersonId) else value


# A view's `person`, written ÅÅÅÅMMDD-NNNN in the answer.
Personnummer = Annotated[str, BeforeValidator(_formatted_person)]


class ViewOut(BaseModel):
    """An answer read from a view's attributes (adapter/worklist, adapter/api/clinic.py): a field
    of the same name is copied, `validation_alias` names the view's attribute where the answer
    calls it otherwise (the answer's JSON keeps the field's own name)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, view: object) -> Self:
        return cls.model_validate(view)
