"""Sandbox mode, for servers others share (the public HAPI test server): every resource the
adapter writes carries the run's tag, and our profiles can live under versioned canonicals.

Pure functions; `FhirClient` applies `decorate` to every resource it writes (create, update,
conditional update, each entry of a transaction or batch), so nothing written escapes the tag,
whichever part of the adapter writes it (import, followups' Tasks, MeasureReports, profiles).

- Run tag: `meta.tag` = `TAG_RUN|<tag>`. `SIP_FHIR_RUN_TAG` names it; `SIP_FHIR_SANDBOX=1`
  without a tag makes one per run (printed). `sip-fhir purge --tag T` removes what carries it.
  HAPI keeps a resource's tags across versions, so a resource written by two runs carries both.
- Versioned profiles (`SIP_FHIR_PROFILE_VERSION`, in sandbox mode the version of
  profiles/package.json): `meta.profile` entries under our canonical base become `url|version`,
  and `profiles install` installs that version under ids of its own (see conformance.py).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from adapter.canonical import CANONICAL_BASE, TAG_RUN

RUN_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_OUR_CANONICALS = f"{CANONICAL_BASE}/"


class RunTagError(ValueError):
    """A run tag that cannot be a FHIR code in a search URL (Swedish message)."""


def check_run_tag(tag: str) -> str:
    if not RUN_TAG.fullmatch(tag):
        raise RunTagError(
            f"Ogiltig körningstagg {tag!r}: 1–64 tecken, bokstäver a–z, siffror, '.', '_' och '-'"
        )
    return tag


def new_run_tag(now: datetime | None = None, *, suffix: str) -> str:
    """`sandbox-20250310T101500-3fa2`: sortable, and unique enough with a random suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return check_run_tag(f"sandbox-{stamp}-{suffix}")


def run_tag_coding(tag: str) -> dict[str, str]:
    return {"system": TAG_RUN, "code": tag}


def versioned(url: str, version: str) -> str:
    """`url|version` for a canonical of ours without a version; anything else unchanged."""
    if url.startswith(_OUR_CANONICALS) and "|" not in url:
        return f"{url}|{version}"
    return url


def decorate(
    resource: dict[str, Any], *, run_tag: str | None, profile_version: str | None
) -> dict[str, Any]:
    """A copy of `resource` with the run tag and versioned profiles (the input is untouched)."""
    if not run_tag and not profile_version:
        return resource
    result = dict(resource)
    meta = copy.deepcopy(resource.get("meta") or {})
    if run_tag:
        tags = meta.setdefault("tag", [])
        coding = run_tag_coding(run_tag)
        if not any(t.get("system") == TAG_RUN and t.get("code") == run_tag for t in tags):
            tags.append(coding)
    if profile_version and meta.get("profile"):
        profiles = [versioned(p, profile_version) for p in meta["profile"]]
        meta["profile"] = list(dict.fromkeys(profiles))
    result["meta"] = meta
    return result


def decorate_bundle(
    bundle: dict[str, Any], *, run_tag: str | None, profile_version: str | None
) -> dict[str, Any]:
    """A transaction or batch with every written entry (POST, PUT) decorated."""
    if not run_tag and not profile_version:
        return bundle
    entries = []
    for entry in bundle.get("entry") or []:
        request = entry.get("request") or {}
        url = str(request.get("url", ""))
        writes = request.get("method") in ("POST", "PUT") and not ("$" in url or "_search" in url)
        if writes and isinstance(entry.get("resource"), dict):
            resource = decorate(entry["resource"], run_tag=run_tag, profile_version=profile_version)
            entry = {**entry, "resource": resource}
        entries.append(entry)
    return {**bundle, "entry": entries}
