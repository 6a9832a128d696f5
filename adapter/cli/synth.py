"""`sip-fhir synth`: write a synthetic region's source files (demo, load and reader tests)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from adapter.cli.app import app
from adapter.synth import SynthConfig, SynthError, SynthSummary, generate
from adapter.synth import generator as defaults


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"ogiltigt datum {value!r}, ange ÅÅÅÅ-MM-DD") from None


def _n(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def _report(s: SynthSummary) -> str:
    share = f"{s.risk_group / s.patients * 100:.1f}".replace(".", ",")
    lines = [
        f"Skrev till {s.out}:",
        f"  prea60-*.csv    {_n(s.prea60_files)} filer, {_n(s.prea60_rows)} rader "
        f"({_n(len(s.runs))} körningar {s.runs[0]} – {s.runs[-1]})",
        f"  plans.jsonl     {_n(s.plan_lines)} rader ({_n(s.plans)} planer)",
        f"  events.csv      {_n(s.events)} rader",
        f"  discharges.csv  {_n(s.notices)} rader ({_n(s.notices_needing_sip)} kräver SIP)",
        f"Listade patienter: {_n(s.patients)} vid {s.units} enheter. Riskgrupp (≥ 15 %) i "
        f"senaste körningen: {_n(s.risk_group)} ({share} %); "
        f"någon gång under perioden: {_n(s.risk_group_ever)}.",
    ]
    return "\n".join(lines)


@app.command("synth")
def synth(
    patients: Annotated[int, typer.Option("--patients", help="Antal listade patienter.", min=1)],
    out: Annotated[Path, typer.Option("--out", help="Katalog att skriva filerna i.")],
    seed: Annotated[int, typer.Option("--seed", help="Slumpfrö: samma frö ger samma filer.")] = 1,
    units: Annotated[
        int, typer.Option("--units", help="Antal listningsenheter (vårdcentraler).")
    ] = defaults.DEFAULT_UNITS,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Periodens första dag (standard: ett år före --end)."),
    ] = None,
    end: Annotated[
        str, typer.Option("--end", help="Periodens sista dag.")
    ] = defaults.DEFAULT_END.isoformat(),
    risk_share: Annotated[
        float, typer.Option("--risk-share", help="Andel i riskgruppen en given vecka (0–0,5).")
    ] = defaults.DEFAULT_RISK_SHARE,
    min_risk: Annotated[
        float,
        typer.Option("--min-risk", help="Lägsta risk (%) som Prea60-exporten listar."),
    ] = defaults.DEFAULT_MIN_LISTED,
) -> None:
    """Skriv syntetiska källfiler (Prea60, planer, händelser, utskrivningsklar) för en
    påhittad region. Personnumren är påhittade men giltiga; samma --seed ger samma filer."""
    config = SynthConfig(
        patients=patients,
        seed=seed,
        units=units,
        start=_date(start) if start else None,
        end=_date(end),
        risk_share=risk_share,
        min_listed=min_risk,
    )
    try:
        summary = generate(config, out)
    except SynthError as error:
        typer.echo(f"Kan inte skapa data: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(_report(summary))
