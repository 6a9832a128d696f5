"""Issue 10.3 without a server: one HSA-id rule wherever an HSA-id is accepted, and the check
that keeps an integration key limited to its units from sending in other units' rows.
Against the real HAPI server: tests/integration/test_api_access.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapter.api.apikeys import ApiKeyEntry
from adapter.api.ingestion import unit_admission
from adapter.api.principal import Principal, Role, parse_units
from adapter.domain import RowError, SourceRef
from adapter.fhirclient import FhirClient, TemporaryError
from adapter.hsa import InvalidHsaId, is_hsa_id, parse_hsa_id
from adapter.metrics import INVALID_LABEL, unit_label
from adapter.settings import REPO_ROOT, Settings
from adapter.sources import SourceKind, read_file
from adapter.sources.values import InvalidValue
from adapter.sources.values import parse_hsa_id as parse_cell
from adapter.sync import Importer, SyncHooks, SyncSettings, Tally, open_outbox
from tests.support.records import UNIT, discharge, event, prea60_row, sip

MAPPINGS_DIR = REPO_ROOT / "mappings"
OTHER = "SE2321000057-E00000000888"
LONGEST = "SE2321000057-" + "A" * 18  # 31 characters: Inera's maximum


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        (UNIT, UNIT),
        (" se2321000057-e00000000001 ", UNIT),  # case and blanks do not make another unit
        (LONGEST, LONGEST),
        ("SE2321000057-x", "SE2321000057-X"),
    ],
)
def test_an_hsa_id_is_normalised(text: str, normalised: str) -> None:
    assert parse_hsa_id(text) == normalised


@pytest.mark.parametrize(
    "text",
    [
        "not-an-hsa-id",
        "SE1",
        "SE2321000057-",  # at least one character after the dash
        LONGEST + "A",  # 32 characters
        "SE232100005-E1",  # nine digits
        "SE2321000057-E00Å",  # å, ä, ö are not allowed
        "SE2321000057-E@1",
        "DK2321000057-E1",
        "SE٢٣٢١٠٠٠٠٥٧-E1",  # noqa: RUF001 - another script's digits, on purpose
        "SE2321000057-ß",  # upper-cases to SS
        "",
    ],
)
def test_what_is_not_an_hsa_id_is_refused_everywhere(text: str) -> None:
    with pytest.raises(InvalidHsaId, match="Ogiltigt HSA-id"):
        parse_hsa_id(text)
    assert not is_hsa_id(text)
    with pytest.raises(InvalidValue, match="Ogiltigt HSA-id"):  # a source file's cell
        parse_cell(text)
    with pytest.raises(ValidationError, match="Ogiltigt HSA-id"):  # an API key's unit
        ApiKeyEntry(name="x", role=Role.INTEGRATION, units=[text])
    assert parse_units([text]) == frozenset()  # a token's units claim: grants nothing
    assert unit_label(text) == INVALID_LABEL  # a metric label


def test_a_tokens_units_are_normalised_and_anything_else_ignored() -> None:
    assert parse_units([UNIT.lower(), 7, None, "E1", OTHER]) == {UNIT, OTHER}
    assert parse_units("SE2321000057-E1") == frozenset()  # a string is not a list of units


@pytest.mark.parametrize(
    ("roles", "units", "ingest_units"),
    [
        ({Role.INTEGRATION}, {UNIT}, {UNIT}),
        ({Role.INTEGRATION}, set(), None),  # the region's own integration
        ({Role.ADMIN}, {UNIT}, None),
    ],
)
def test_whose_rows_a_caller_may_send(
    roles: set[Role], units: set[str], ingest_units: set[str] | None
) -> None:
    principal = Principal("k", "apikey:k", frozenset(roles), frozenset(units), "apikey")
    assert principal.ingest_units == ingest_units


def admitted(kind: SourceKind, record: object) -> RowError | None:
    admit = unit_admission(frozenset({UNIT}), kind, MAPPINGS_DIR)
    return admit(record)  # type: ignore[arg-type]


SOURCE = SourceRef("prea60-x.csv", 7)


@pytest.mark.parametrize(
    ("kind", "record", "column"),
    [
        (SourceKind.PREA60, prea60_row(unit=OTHER), "Listningsenhet HSA-id"),
        (SourceKind.PLANS, replace(sip(), unit_hsa_id=OTHER), "unit_hsa_id"),
        (SourceKind.EVENTS, event(unit=OTHER), "Utförande enhet HSA-id"),
    ],
)
def test_another_units_row_is_a_row_error_naming_the_unit(
    kind: SourceKind, record: object, column: str
) -> None:
    own = replace(record, unit_hsa_id=UNIT)  # type: ignore[type-var]
    assert admitted(kind, own) is None
    error = admitted(kind, replace(record, source=SOURCE))  # type: ignore[type-var]
    assert error is not None
    assert (error.file, error.line, error.column, error.value) == ("prea60-x.csv", 7, column, OTHER)
    assert error.reason == (
        f"Enheten {OTHER} hör inte till nyckelns enheter ({UNIT}); raden läses inte in"
    )


def test_a_discharge_notice_names_no_unit_and_needs_a_region_key() -> None:
    error = admitted(SourceKind.DISCHARGES, replace(discharge(), source=SOURCE))
    assert error is not None and error.line == 7 and error.column is None
    assert "anger ingen enhet" in error.reason and "hela regionen" in error.reason


def test_the_pipeline_counts_a_refused_row_as_rejected(tmp_path: Path) -> None:
    """The importer's check runs before the outbox: nothing of the row is mapped or queued."""
    csv = tmp_path / "prea60-blandad.csv"
    csv.write_text(
        "Personnummer;Namn;Risk (%);Beräkningsdatum;Listningsenhet HSA-id;Listningsenhet;"
        "Fast läkarkontakt HSA-id\n"
        f"19400512-9822;Test, Testa;25,0;2024-12-16;{OTHER};Vårdcentralen;\n",
        encoding="utf-8",
    )
    errors: list[RowError] = []
    tally = Tally(SyncHooks(row_error=errors.append))
    outbox = open_outbox(tmp_path)
    with FhirClient(Settings(data_dir=tmp_path).endpoint()) as client:
        importer = Importer(
            outbox,
            client,
            MAPPINGS_DIR,
            tally,
            SyncSettings(),
            admit=unit_admission(frozenset({UNIT}), SourceKind.PREA60, MAPPINGS_DIR),
        )
        result = importer.run_readings(
            [read_file(csv, SourceKind.PREA60, mappings_dir=MAPPINGS_DIR)]
        )
    assert (tally.rows_read, tally.rows_rejected) == (1, 1)
    assert [e.value for e in errors] == [OTHER]
    assert result.open_left == 0 and outbox.open_count() == 0  # nothing to send


def test_a_plan_another_unit_holds_cannot_be_sent_in_again_under_ones_own() -> None:
    def holder_of(key: str) -> str | None:
        return {"lifecare:SIP-77": OTHER}.get(key)

    def server_down(key: str) -> str | None:
        raise TemporaryError("svarar inte")

    admit = unit_admission(frozenset({UNIT}), SourceKind.PLANS, MAPPINGS_DIR, holder_of)
    error = admit(replace(sip(), source=SOURCE))  # SIP-77 under the own unit: held by OTHER
    assert error is not None and (error.column, error.value) == ("plan_id", OTHER)
    assert "lifecare:SIP-77" in error.reason and OTHER in error.reason
    assert admit(replace(sip(), plan_id="SIP-NEW")) is None  # a new plan of the own unit
    unchecked = unit_admission(frozenset({UNIT}), SourceKind.PLANS, MAPPINGS_DIR, server_down)
    held = unchecked(sip())
    assert held is not None and "kan inte kontrolleras" in held.reason
