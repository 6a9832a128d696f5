"""Swedish words for the codes the views show (the vårdsamordnare's own terms)."""

from __future__ import annotations

from adapter.canonical import TaskType
from adapter.domain import EventCode

TASK_TITLES = {
    TaskType.ESTABLISH_PLAN: "Upprätta SIP eller patientkontrakt",
    TaskType.FOLLOW_UP: "Följ upp planen",
    TaskType.SIP_CALL: "Kalla till SIP",
    TaskType.RENEW_PLAN: "Förnya planen",
}

EVENT_TEXTS = {
    EventCode.AU124: "SIP upprättad",
    EventCode.AU125: "SIP upprättad vid utskrivning",
    EventCode.AW010: "SIP uppföljd",
    EventCode.UPPF: "Patientkontrakt uppföljt",
    EventCode.SIPKALL: "Kallelse till SIP",
}

NEW_PLAN = "Plan upprättad"
NEW_VERSION = "Ny version av planen"
PATIENT = "Patienten"
