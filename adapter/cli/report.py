"""`sip-fhir report`: the indicator reports of a period, stored on the FHIR server and fed to the
registry: `--post` as one transaction to SIP_FHIR_REGISTRY_BASE_URL, `--ndjson DIR` as FHIR bulk
NDJSON files. The registry gets summary reports only (see adapter/indicators/registry.py).

Exit codes: 0 done; 1 a server failed; 2 bad arguments or settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapter.cli.app import app
from adapter.cli.indicators import (
    EXIT_FAILED,
    EXIT_USAGE,
    AsOfOption,
    PeriodOption,
    UnitOption,
    fail,
    load_rules,
    resolve_period,
    start,
)
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.scope import ScopeError
from adapter.indicators.measures import load_measures
from adapter.indicators.registry import ndjson_resources, post_to_registry, write_ndjson
from adapter.indicators.store import indicators_from_server, loaded_reference, store_reports
from adapter.mapping import load_mappings


@app.command("report")
def report_command(
    unit: UnitOption = None,
    as_of: AsOfOption = None,
    period: PeriodOption = None,
    post: Annotated[
        bool,
        typer.Option("--post", help="Skicka rapporterna till registret (en transaktion)."),
    ] = False,
    ndjson: Annotated[
        Path | None,
        typer.Option("--ndjson", help="Skriv rapporterna som FHIR bulk NDJSON i katalogen."),
    ] = None,
    with_measures: Annotated[
        bool,
        typer.Option("--with-measures", help="Skicka också indikatorernas definitioner (Measure)."),
    ] = False,
) -> None:
    """Beräkna indikatorrapporterna för enheterna (standard: alla listningsenheter), spara dem på
    FHIR-servern och skicka sammanfattningarna (utan patientuppgifter) till registret med --post
    och/eller som NDJSON-filer med --ndjson. Kan köras om: samma enhet och period uppdaterar."""
    settings = start()
    rules = load_rules(settings)
    chosen = resolve_period(as_of, period)
    registry = None
    if post:
        try:
            registry = settings.registry_endpoint()
        except ValueError as error:
            raise fail(str(error), EXIT_USAGE) from None
    measures = list(load_measures(settings.profiles_dir).values()) if with_measures else []
    out = Console(stderr=True)
    try:
        with FhirClient(settings.endpoint()) as client:
            mappings = load_mappings(settings.mappings_dir)
            results, references = indicators_from_server(
                client, unit, chosen, rules, mappings=mappings
            )
            store_reports(client, results, loaded_reference(references))
    except (FhirError, ScopeError) as error:
        raise fail(f"FHIR-servern: {error}", EXIT_FAILED) from None
    units = sorted({r.unit_hsa_id for r in results})
    out.print(
        f"{len(results)} rapporter för {len(units)} enheter, {chosen.start} – {chosen.end}, "
        f"sparade på {settings.base_url}.",
        highlight=False,
    )
    if registry is not None:
        try:
            with FhirClient(registry) as client:
                written = post_to_registry(client, results, measures)
        except FhirError as error:
            raise fail(f"Registret: {error}", EXIT_FAILED) from None
        created = sum(1 for w in written if w.created)
        out.print(
            f"Registret ({registry.base_url}): {created} nya, {len(written) - created} "
            "uppdaterade eller oförändrade.",
            highlight=False,
        )
    if ndjson is not None:
        try:
            files = write_ndjson(ndjson, ndjson_resources(results, measures))
        except OSError as error:
            message = f"Kan inte skriva NDJSON till {ndjson}: {error.strerror}"
            raise fail(message, EXIT_FAILED) from None
        for path in files.values():
            out.print(f"NDJSON: {path}", highlight=False)
