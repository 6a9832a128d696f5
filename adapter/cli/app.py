"""The typer application; command groups register themselves from their own modules.

A command's module is imported only when that command runs or shows its own help: `sip-fhir
--help` lists the commands from `COMMANDS` and so starts without fastapi, matplotlib,
fhir.resources, sqlalchemy or apscheduler (0.2 s instead of 2-3 s).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

# Every command: the module that registers it, and the summary `sip-fhir --help` shows (its
# help's first paragraph; tests/unit/test_cli_lazy.py keeps the two equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "followups": (
        "adapter.cli.followups",
        "Skapa, uppdatera, klarmarkera och makulera uppföljningsuppgifter (Task) utifrån vad\n"
        "FHIR-servern vet. Kan köras om: utan ändringar skrivs inget.",
    ),
    "indicators": (
        "adapter.cli.indicators",
        "Indikatorer för en listningsenhet, beräknade ur FHIR-servern: andel med SIP eller\n"
        "patientkontrakt, andel uppföljda inom 90 dagar, andel kallade till SIP i tid (LUS) och\n"
        "antal KVÅ AU124, AU125 och AW010. Med --trend: utvecklingen vecka för vecka.",
    ),
    "map": (
        "adapter.cli.map",
        "Mappa källfiler till FHIR-transaktioner på disk, utan att skriva till servern.",
    ),
    "report": (
        "adapter.cli.report",
        "Beräkna indikatorrapporterna för enheterna (standard: alla listningsenheter), spara dem "
        "på\nFHIR-servern och skicka sammanfattningarna (utan patientuppgifter) till registret "
        "med --post\noch/eller som NDJSON-filer med --ndjson. Kan köras om: samma enhet och "
        "period uppdaterar.",
    ),
    "serve": (
        "adapter.cli.serve",
        "Starta API-tjänsten (FastAPI). API-beskrivningen finns på /docs.",
    ),
    "api-key": (
        "adapter.cli.serve",
        "Skapa en API-nyckel. Nyckeln skrivs ut en gång; filen sparar bara dess sha256-summa.",
    ),
    "import": (
        "adapter.cli.sync",
        "Läs källfiler, mappa till FHIR och skriv till FHIR-servern (via utkorgen).",
    ),
    "sync": (
        "adapter.cli.sync",
        "Skicka det som väntar i utkorgen till FHIR-servern (återupptar en avbruten import).",
    ),
    "synth": (
        "adapter.cli.synth",
        "Skriv syntetiska källfiler (Prea60, planer, händelser, utskrivningsklar) för en\n"
        "påhittad region. Personnumren är påhittade men giltiga; samma --seed ger samma filer.",
    ),
    "subscriptions": (
        "adapter.cli.followups",
        "Prenumerationer: FHIR-servern meddelar adaptern när något som rör en uppgift skrivs.",
    ),
    "scheduler": (
        "adapter.cli.followups",
        "Schemaläggaren: full genomgång varje måndag, förfallokontroll varje dag.",
    ),
    "prea60": (
        "adapter.cli.prea60",
        "Prea60-körningar som lagrats som obekräftade: visa, bekräfta eller avvisa.",
    ),
    "profiles": ("adapter.cli.profiles", "FHIR-profiler, kodverk och värdemängder (profiles/)."),
    "server": ("adapter.cli.server", "FHIR-servern som adaptern skriver till."),
    "purge": (
        "adapter.cli.purge",
        "Ta bort från FHIR-servern exakt det som körningar med taggen skrev (och inget annat).",
    ),
    "survey": ("adapter.cli.survey", "Patientens enkät om SIP-mötet (anonym, engångskod)."),
}


def load_command(name: str) -> Any:
    """The real click command `name`, its module imported (and so registered on `app`)."""
    importlib.import_module(COMMANDS[name][0])
    return typer.main.get_group(app).commands[name]


class _Listed(TyperCommand):
    """A command in the listing; used for anything more, it hands over to the real one."""

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        return load_command(str(self.name)).make_context(info_name, args, parent=parent, **extra)


class _LazyGroup(TyperGroup):
    """The top-level group: every command listed, in `COMMANDS` order, loaded or not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listed = {
            name: self.commands.get(name) or _Listed(name=name, help=summary)
            for name, (_, summary) in COMMANDS.items()
        }
        self.commands = {**listed, **self.commands}


app = typer.Typer(
    name="sip-fhir",
    help="sip-fhir: SIP, patientkontrakt och Prea60-uppföljning som FHIR R4.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personnummer
    cls=_LazyGroup,
)


@app.callback()
def main() -> None:
    """sip-fhir: SIP, patientkontrakt och Prea60-uppföljning som FHIR R4."""
    from rich.console import Console

    from adapter import logs  # here, not at the top: `--help` needs neither
    from adapter.settings import get_settings

    settings = get_settings()
    logs.configure(level=settings.log_level, json=settings.log_json)
    if settings.run_tag:
        Console(stderr=True).print(
            f"Körningens tagg: [bold]{settings.run_tag}[/] (allt som skrivs märks med den; "
            f"ta bort det med sip-fhir purge --tag {settings.run_tag})",
            highlight=False,
        )
