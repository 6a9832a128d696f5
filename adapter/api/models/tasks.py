"""Marking a Task done: the request and the answer."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.api.models.base import ViewOut
from adapter.sources.events import CONTACT_TYPES

ContactType = Literal[CONTACT_TYPES]  # type: ignore[valid-type]  # the events format's list


class TaskDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    performed: date | None = Field(
        default=None, description="Dagen åtgärden gjordes (standard: i dag); inte i framtiden"
    )
    contact_type: ContactType | None = Field(default=None, description="Kontakttyp")


class TaskDoneOut(ViewOut):
    task_id: str
    status: str = Field(description="Uppgiftens status efteråt (completed)")
    reason: str | None
    event_code: str = Field(description="Registrerad åtgärd: AW010, UPPF eller SIPKALL")
    event_date: date
    next_follow_up_due: date | None = Field(validation_alias="next_due")
