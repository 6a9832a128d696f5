"""The project rule (adapter/personnummer.py): every valid personnummer or samordningsnummer in
the fixtures — tests/, tests/data/, deploy/examples/, mappings/ — is fictional (födelsenummer
980–999). Deliberately invalid ones (wrong check digit, impossible date) cannot belong to anyone
and are left alone. `python -m tests.fixture_personnummer --fix` rewrites offenders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import fixture_personnummer as fixtures

# A valid number outside the fictional series, written in parts so this file passes its own scan.
DATE, SHORT_DATE, SERIAL = "19380313", "380313", "7664"


def test_no_fixture_holds_a_number_a_real_person_could_have() -> None:
    found = fixtures.offenders()
    listed = [f"{f.path.relative_to(fixtures.REPO)}:{f.line}: {f.text}" for f in found]
    assert not listed, "kör python -m tests.fixture_personnummer --fix\n" + "\n".join(listed)


def test_the_scan_sees_every_form_and_skips_invalid_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tests").mkdir()
    sample = tmp_path / "tests" / "sample.csv"
    forms = [f"{DATE}-{SERIAL}", DATE + SERIAL, f"{SHORT_DATE}-{SERIAL}", f"{SHORT_DATE}+{SERIAL}"]
    sample.write_text(
        ";".join(forms) + "\n"  # one real-looking number in its four forms
        "19380313-7665;19381313-7664\n"  # wrong check digit, impossible month: left alone
        "19310214-9824;x193803137664;1938031376645\n",  # fictional; inside a word or number
        "utf-8",
    )
    monkeypatch.setattr(fixtures, "REPO", tmp_path)
    monkeypatch.setattr(fixtures, "SCANNED", ("tests",))
    assert [(f.line, f.text) for f in fixtures.offenders()] == [(1, form) for form in forms]
    copy = tmp_path / "before.csv"
    shutil.copy(sample, copy)
    assert fixtures.fix() == {sample: 4}
    assert fixtures.offenders() == []
    first, second, third = sample.read_text("utf-8").splitlines()
    new = first.split(";")
    assert {n[-4:] for n in new} == {new[0][-4:]}  # the same number everywhere
    assert new[0].startswith("19380313-9") and int(new[0][-2]) % 2 == 0  # date, sex kept
    assert new[2].startswith("380313-") and new[3].startswith("380313+")
    assert (second, third) == tuple(copy.read_text("utf-8").splitlines()[1:])
