"""Prometheus metrics of sip-fhir: one registry, shared by the CLI, the sync engine and the API.

Record through the functions below, not the metric objects: they guard the label values so no
personal data reaches a label. A unit label must be an HSA-id (an organisation, not a person);
any other label is a short token and never anything shaped like a personnummer.

Gauges that are cheapest to compute at scrape time (the outbox depth, open Tasks) can register a
refresher; `/metrics` calls the refreshers before it renders the registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from adapter.hsa import is_hsa_id
from adapter.logs import get_logger, mask_personnummer

NAMESPACE = "sip_fhir"
INVALID_LABEL = "ogiltig"

_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

ROWS_IN = Counter(
    "rows_in",
    "Rader lästa från källor (filer och API-anrop), per slag av källa",
    ["kind"],
    namespace=NAMESPACE,
    registry=REGISTRY,
)
RESOURCES_WRITTEN = Counter(
    "resources_written",
    "FHIR-resurser skrivna till servern, per resurstyp och utfall",
    ["type", "outcome"],
    namespace=NAMESPACE,
    registry=REGISTRY,
)
RETRIES = Counter(
    "retries",
    "Omförsök mot FHIR-servern",
    namespace=NAMESPACE,
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "outbox_depth",
    "Poster i utkorgen som väntar på att skickas",
    namespace=NAMESPACE,
    registry=REGISTRY,
)
TASKS_OPEN = Gauge(
    "tasks_open",
    "Öppna uppföljningsuppgifter (Task), per enhet (HSA-id) och typ",
    ["unit", "type"],
    namespace=NAMESPACE,
    registry=REGISTRY,
)
TASKS_OVERDUE = Gauge(
    "tasks_overdue",
    "Försenade uppföljningsuppgifter (Task), per enhet (HSA-id) och typ",
    ["unit", "type"],
    namespace=NAMESPACE,
    registry=REGISTRY,
)
SCHEDULER_LEADER = Gauge(
    "scheduler_leader",
    "1 om denna process leder schemaläggaren (kör de schemalagda jobben), annars 0",
    namespace=NAMESPACE,
    registry=REGISTRY,
)

Refresher = Callable[[], None]
_refreshers: list[Refresher] = []
_log = get_logger("adapter.metrics")


def token_label(value: str) -> str:
    """A label value that is a short token and not shaped like a personnummer."""
    if _TOKEN.fullmatch(value) and mask_personnummer(value) == value:
        return value
    return INVALID_LABEL


def unit_label(hsa_id: str) -> str:
    """A unit label: an HSA-id, else `ogiltig`."""
    return hsa_id if is_hsa_id(hsa_id) else INVALID_LABEL


def count_rows_in(kind: str, n: int = 1) -> None:
    ROWS_IN.labels(kind=token_label(kind)).inc(n)


def count_resource_written(resource_type: str, outcome: str) -> None:
    RESOURCES_WRITTEN.labels(type=token_label(resource_type), outcome=token_label(outcome)).inc()


def count_retry() -> None:
    RETRIES.inc()


def set_outbox_depth(depth: int) -> None:
    OUTBOX_DEPTH.set(depth)


def set_scheduler_leader(leader: bool) -> None:
    SCHEDULER_LEADER.set(1 if leader else 0)


TaskCounts = Mapping[tuple[str, str], int]  # (unit HSA-id, task type) -> count


def set_task_counts(open_tasks: TaskCounts, overdue_tasks: TaskCounts) -> None:
    """Replace the Task gauges: a unit or type that no longer has Tasks disappears."""
    for gauge, counts in ((TASKS_OPEN, open_tasks), (TASKS_OVERDUE, overdue_tasks)):
        gauge.clear()
        for (unit, task_type), count in counts.items():
            gauge.labels(unit=unit_label(unit), type=token_label(task_type)).inc(count)


def register_refresher(refresher: Refresher) -> None:
    """Call `refresher` before each rendering of the metrics (once per refresher)."""
    if refresher not in _refreshers:
        _refreshers.append(refresher)


def render() -> tuple[bytes, str]:
    """Refresh what registered to be refreshed, then the text exposition and its content type."""
    for refresher in list(_refreshers):
        try:
            refresher()
        except Exception as error:  # a failing source must not take the other metrics down
            _log.warning("metrics refresher failed", refresher=repr(refresher), error=str(error))
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
