"""Concepts with one home (issue 15): each helper, and that the former copies now use it."""

from __future__ import annotations

import uuid
from datetime import date

from adapter.api.models import formatted
from adapter.domain import PersonId
from adapter.jsontext import canonical_json
from adapter.mapping.identifiers import stable_id, stable_urn
from adapter.personnummer import check, luhn_digit, written
from adapter.synth.people import Person

PERSON = "193102149824"  # a test number (birth number 982), not a real person's


def test_written_is_the_whole_number_with_its_dash() -> None:
    check(written(PERSON))  # a valid personnummer as written
    assert written(PERSON) == "19310214-9824"
    assert formatted(PersonId(PERSON)) == written(PERSON)
    person = Person(PERSON, "F", date(1931, 2, 14), "Test", "Testsson")
    assert (person.written(), person.written(dash=False)) == (written(PERSON), PERSON)
    assert luhn_digit(PERSON[2:11]) == int(PERSON[11])


def test_stable_ids_are_uuid5_of_the_key() -> None:
    key = "Task?identifier=https://example.org|k1"
    assert stable_id(key) == str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    assert stable_urn(key) == f"urn:uuid:{stable_id(key)}"
    assert stable_id(key) != stable_id(key + "2")


def test_canonical_json_is_one_spelling_per_content() -> None:
    a = {"b": [1, {"y": "Åsa", "x": None}], "a": True}
    b = {"a": True, "b": [1, {"x": None, "y": "Åsa"}]}
    assert canonical_json(a) == canonical_json(b) == '{"a":true,"b":[1,{"x":null,"y":"Åsa"}]}'
