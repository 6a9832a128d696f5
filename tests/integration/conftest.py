"""Fixtures shared by the integration tests: a unit of the test alone, the project's profiles on the
server, a Chromium page for the end-to-end tests (on the module's own `served` app)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from adapter.conformance import install_conformance
from adapter.fhirclient import FhirClient
from adapter.followup import subscriptions
from tests.support.api import Clinic, Service
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.profiles import PROFILES_DIR

if TYPE_CHECKING:  # Playwright is loaded by the browser tests only
    from playwright.sync_api import Page


@pytest.fixture
def unit() -> str:
    """A unit of this test alone."""
    return f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"  # HSA-ids are upper case


@pytest.fixture(scope="session")
def profiles_installed(fhir_client: FhirClient) -> None:
    install_conformance(fhir_client, PROFILES_DIR)


@pytest.fixture
def page(served: tuple[str, Service, Clinic]) -> Iterator[Page]:
    """A Chromium page; the requesting module provides the `served` app."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} saknas: kör deploy/setup.sh (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="sv-SE")
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def own_subscriptions(monkeypatch: pytest.MonkeyPatch) -> str:
    """The adapter's follow-up Subscriptions under ids and a tag of this test alone.

    An installation has one fixed id per watched type (`sip-fhir-followup-<type>`) and removes
    what carries its tag; on a shared test server two runs would overwrite each other's endpoint
    and delete each other's Subscriptions. The suffix keeps them apart; the code is unchanged."""
    run = uuid.uuid4().hex[:12]
    original = subscriptions.subscription_id
    monkeypatch.setattr(subscriptions, "subscription_id", lambda t: f"{original(t)}-{run}")
    monkeypatch.setattr(subscriptions, "TAG_CODE", f"{subscriptions.TAG_CODE}-{run}")
    return run
