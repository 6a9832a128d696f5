"""The registry feed: indicator reports to a second FHIR server, or as bulk NDJSON files.

What goes: the summary MeasureReports only (counts and scores per unit and period) and, if asked,
the Measures that define them. No subject-list reports, no Lists, no Patient references: a
registry needs the aggregates, not who is behind them, so the registry's copy depends on nothing
of ours (our Patients need not, and must not, exist there) and carries no personal data.

Idempotent per unit and period: each report is a conditional update on its business identifier
(`PUT MeasureReport?identifier=...`), each Measure on its canonical URL, all in ONE transaction.
In NDJSON each resource gets a stable id derived from its identifier, so a registry that loads
the files by id (`$import`, PUT) also updates rather than duplicates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapter.fhirclient import FhirClient, WriteResult
from adapter.indicators.compute import IndicatorResult
from adapter.indicators.measures import MeasureInfo
from adapter.indicators.reports import summary_report
from adapter.mapping import transaction_bundle
from adapter.mapping.fhir import Json
from adapter.mapping.identifiers import stable_id, stable_urn
from adapter.mapping.resource import MappedResource

NDJSON_SUFFIX = ".ndjson"


def _measure_entry(measure: MeasureInfo) -> Json:
    resource = {k: v for k, v in measure.resource.items() if k not in ("id", "meta")}
    return {
        "fullUrl": stable_urn(f"Measure?url={measure.url}"),
        "resource": resource,
        "request": {"method": "PUT", "url": f"Measure?url={measure.url}"},
    }


def registry_reports(results: Iterable[IndicatorResult]) -> list[MappedResource]:
    return [summary_report(result) for result in results]


def registry_bundle(
    results: Iterable[IndicatorResult], measures: Sequence[MeasureInfo] = ()
) -> Json:
    """ONE transaction: the Measures (if any), then a summary report per result."""
    bundle = transaction_bundle(registry_reports(results))
    bundle["entry"] = [*(_measure_entry(m) for m in measures), *bundle["entry"]]
    return bundle


def post_to_registry(
    client: FhirClient,
    results: Iterable[IndicatorResult],
    measures: Sequence[MeasureInfo] = (),
) -> list[WriteResult]:
    """Send the feed to the registry (`client` on SIP_FHIR_REGISTRY_BASE_URL)."""
    response = client.transaction(registry_bundle(results, measures))
    return [WriteResult.from_entry(entry) for entry in response.get("entry", [])]


def ndjson_resources(
    results: Iterable[IndicatorResult], measures: Sequence[MeasureInfo] = ()
) -> list[dict[str, Any]]:
    """The feed as stand-alone resources, each with a stable id (see the module docstring)."""
    resources: list[dict[str, Any]] = []
    for measure in measures:
        resources.append({**measure.resource, "id": stable_id(f"Measure?url={measure.url}")})
    for report in registry_reports(results):
        resources.append({**report.resource, "id": stable_id(report.match_url)})
    return resources


def write_ndjson(directory: Path, resources: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """FHIR bulk NDJSON: one file per resource type (`MeasureReport.ndjson`), one resource per
    line, UTF-8. Existing files of those types are replaced. Returns the files by type."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for resource in resources:
        by_type[str(resource["resourceType"])].append(resource)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for resource_type, items in sorted(by_type.items()):
        path = directory / f"{resource_type}{NDJSON_SUFFIX}"
        lines = (json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        written[resource_type] = path
    return written
