"""Settings reuses EndpointSettings: the main server's fields are inherited, and the registry's
`registry_*` login fields stay the same names, types and defaults as EndpointSettings' own."""

from __future__ import annotations

from adapter.settings import EndpointSettings, Settings

# Shared with the main server on purpose (registry_endpoint): timeouts, the retry budget and the
# sandbox run's tag and profile version (adapter/sandbox.py).
SHARED = {
    "connect_timeout",
    "read_timeout",
    "max_attempts",
    "max_retry_seconds",
    "max_retry_after",
    "run_tag",
    "profile_version",
}


def test_the_main_server_fields_are_endpoint_settings_own() -> None:
    assert issubclass(Settings, EndpointSettings)
    for name, field in EndpointSettings.model_fields.items():
        assert Settings.model_fields[name].annotation == field.annotation, name


def test_registry_fields_mirror_endpoint_settings() -> None:
    registry = {
        name.removeprefix("registry_"): field
        for name, field in Settings.model_fields.items()
        if name.startswith("registry_")
    }
    assert set(registry) == set(EndpointSettings.model_fields) - SHARED
    for name, field in registry.items():
        own = EndpointSettings.model_fields[name]
        if name == "base_url":  # required for an endpoint, optional while no registry is set
            assert field.annotation == own.annotation | None and field.default is None
            continue
        assert (field.annotation, field.default) == (own.annotation, own.default), name
