"""`sip-fhir indicators`: one unit's indicators (table, CSV, JSON or FHIR), and `--trend`: the
stored weekly snapshots as a table and charts.

Exit codes: 0 done; 1 the FHIR server failed; 2 bad arguments or settings.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from adapter import logs
from adapter.cli.app import app
from adapter.cli.units import hsa_ids
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.params import RuleParamsError
from adapter.followup.rules import RuleSet
from adapter.followup.rulesfile import rules_of
from adapter.followup.scope import ScopeError
from adapter.indicators.chart import write_trend_chart
from adapter.indicators.compute import Period
from adapter.indicators.measures import MeasureError, load_measures
from adapter.indicators.present import (
    indicators_csv,
    indicators_table,
    trend_csv,
    trend_json,
    trend_table,
    unit_json,
)
from adapter.indicators.reports import collection_bundle, parse_period, report_resources
from adapter.indicators.store import (
    indicators_from_server,
    loaded_reference,
    read_reports,
    store_reports,
)
from adapter.indicators.trend import snapshot_period, unit_trends
from adapter.mapping import load_mappings
from adapter.settings import Settings, get_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    FHIR = "fhir"


UnitOption = Annotated[
    list[str] | None,
    typer.Option(
        "--unit",
        help="Listningsenhetens HSA-id (kan upprepas där flera går).",
        callback=hsa_ids,
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Dagen andelarna avser, ÅÅÅÅ-MM-DD (standard: i dag). Utan --period räknas "
        "antalen för veckan (7 dagar) som slutar den dagen, som den veckovisa ögonblicksbilden.",
    ),
]
PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="Period START/SLUT (ÅÅÅÅ-MM-DD/ÅÅÅÅ-MM-DD, båda dagarna ingår): antal under "
        "perioden, andelar på dess sista dag.",
    ),
]


def fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]{message}[/]", highlight=False)
    return typer.Exit(code)


def resolve_period(as_of: str | None, period: str | None) -> Period:
    """--period, else the week ending on --as-of (today if none): the snapshot period."""
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise fail(f"Ogiltigt datum för --as-of: {as_of!r}, ange ÅÅÅÅ-MM-DD", EXIT_USAGE) from None
    if period is None:
        return snapshot_period(day or date.today())
    try:
        chosen = parse_period(period)
    except ValueError as error:
        raise fail(f"--period: {error}", EXIT_USAGE) from None
    if day is not None and day != chosen.end:
        raise fail("--as-of ska vara periodens sista dag (eller utelämnas)", EXIT_USAGE)
    return chosen


def load_rules(settings: Settings) -> RuleSet:
    try:
        # The tables and the registry need them: fail before any request.
        load_measures(settings.profiles_dir)
        return rules_of(settings)
    except (RuleParamsError, MeasureError) as error:
        raise fail(str(error), EXIT_USAGE) from None


def start(settings: Settings | None = None) -> Settings:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_json)
    return settings


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


@app.command("indicators")
def indicators_command(
    unit: UnitOption = None,
    as_of: AsOfOption = None,
    period: PeriodOption = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="Utdata: table, csv, json eller fhir.")
    ] = Format.TABLE,
    store: Annotated[
        bool,
        typer.Option(
            "--store", help="Spara också rapporterna (MeasureReport och patientlistor) på servern."
        ),
    ] = False,
    trend: Annotated[
        bool,
        typer.Option(
            "--trend",
            help="Visa trenden ur de sparade veckovisa ögonblicksbilderna och rita diagram.",
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Katalog för trenddiagrammen (PNG och SVG).")
    ] = Path(),
) -> None:
    """Indikatorer för en listningsenhet, beräknade ur FHIR-servern: andel med SIP eller
    patientkontrakt, andel uppföljda inom 90 dagar, andel kallade till SIP i tid (LUS) och
    antal KVÅ AU124, AU125 och AW010. Med --trend: utvecklingen vecka för vecka."""
    settings = start()
    rules = load_rules(settings)
    if trend:
        _trend(settings, rules, unit, fmt, out)
        return
    if not unit or len(unit) != 1:
        raise fail("Ange en enhet med --unit HSA-ID", EXIT_USAGE)
    chosen = resolve_period(as_of, period)
    try:
        with FhirClient(settings.endpoint()) as client:
            mappings = load_mappings(settings.mappings_dir)
            results, references = indicators_from_server(
                client, unit, chosen, rules, mappings=mappings
            )
            if store:
                summary = store_reports(client, results, loaded_reference(references))
                Console(stderr=True).print(
                    f"Sparade på {settings.base_url}: {sum(summary.created.values())} nya, "
                    f"{sum(summary.written.values())} uppdaterade eller oförändrade resurser."
                )
    except (FhirError, ScopeError) as error:
        raise fail(f"FHIR-servern: {error}", EXIT_FAILED) from None
    if fmt is Format.JSON:
        echo_json(unit_json(unit[0], chosen, results))
    elif fmt is Format.CSV:
        typer.echo(indicators_csv(results), nl=False)
    elif fmt is Format.FHIR:
        echo_json(collection_bundle(report_resources(results, loaded_reference(references))))
    else:
        Console().print(indicators_table(unit[0], chosen, results, settings.profiles_dir))


def _trend(
    settings: Settings, rules: RuleSet, units: list[str] | None, fmt: Format, out: Path
) -> None:
    if fmt is Format.FHIR:
        raise fail("--trend ger table, csv eller json", EXIT_USAGE)
    try:
        with FhirClient(settings.endpoint()) as client:
            trends = unit_trends(read_reports(client, units), rules)
    except (FhirError, ScopeError) as error:
        raise fail(f"FHIR-servern: {error}", EXIT_FAILED) from None
    err = Console(stderr=True)
    if not trends:
        err.print("Inga veckovisa ögonblicksbilder sparade för de valda enheterna ännu.")
        return
    if fmt is Format.JSON:
        echo_json(trend_json(trends))
    elif fmt is Format.CSV:
        typer.echo(trend_csv(trends), nl=False)
    else:
        for item in trends:
            Console().print(trend_table(item, settings.profiles_dir))
    for item in trends:
        for path in write_trend_chart(item, out, settings.profiles_dir):
            err.print(f"Diagram: {path}", highlight=False)
