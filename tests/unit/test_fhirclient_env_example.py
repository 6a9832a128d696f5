""".env.example documents every setting, with the prefix and the name pydantic-settings reads."""

from __future__ import annotations

import re

from adapter.settings import REPO_ROOT, Settings


def test_env_example_names_every_setting() -> None:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?SIP_FHIR_([A-Z0-9_]+)=", text, flags=re.MULTILINE))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "add these to .env.example"
    assert documented - expected <= {"TEST_SERVER"}, "these are not settings (any more)"
