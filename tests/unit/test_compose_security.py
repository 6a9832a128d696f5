"""deploy/docker-compose.yml, checked without a Docker engine (none on these machines or in CI).

Replays the review's findings (issue 10.1): the database password defaulted to `hapi`, HAPI's port
was published on every interface, and the database shared a routable network. The file is loaded as
YAML and its `${...}` references are resolved the way Compose does (`:-` default, `:?` required).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from adapter.settings import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yml"
_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable syntax over a loaded file: ${V}, ${V:-default}, ${V:?error}."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op is not None and op.endswith("-") and unset:
            return arg
        return current or ""

    return _REFERENCE.sub(resolve, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return env


def test_no_database_password_without_the_environment(compose: dict[str, Any]) -> None:
    with pytest.raises(MissingVariable, match="HAPI_DB_PASSWORD"):
        interpolate(compose, {})
    with pytest.raises(MissingVariable, match="HAPI_DB_PASSWORD"):
        interpolate(compose, {"HAPI_DB_PASSWORD": ""})  # an empty secret is no secret


def test_the_password_given_is_the_password_used(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, {"HAPI_DB_PASSWORD": "s3cret-from-env"})
    services = resolved["services"]
    assert _env(services["db"])["POSTGRES_PASSWORD"] == "s3cret-from-env"
    assert _env(services["hapi"])["spring.datasource.password"] == "s3cret-from-env"


def test_no_password_is_written_in_the_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if "password" in key.lower() or "secret" in key.lower():
                assert isinstance(value, str) and re.fullmatch(r"\$\{\w+:\?[^}]+\}", value), (
                    f"{name}.{key} must be a required variable (${{VAR:?message}}), not {value!r}"
                )


def test_database_and_hapi_share_an_internal_network_only_db_has(compose: dict[str, Any]) -> None:
    networks = compose["networks"]
    services = compose["services"]
    internal = {name for name, spec in networks.items() if (spec or {}).get("internal") is True}
    assert internal, "no internal network"
    assert set(services["db"]["networks"]) <= internal, "the database is on a routable network"
    assert set(services["db"]["networks"]) & set(services["hapi"]["networks"]) & internal
    assert set(services["adapter"]["networks"]) & set(services["hapi"]["networks"]) & internal
    assert "ports" not in services["db"]


def test_hapi_is_published_on_the_host_loopback_only(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, {"HAPI_DB_PASSWORD": "x"})
    ports = resolved["services"]["hapi"]["ports"]
    assert ports
    for port in ports:
        host_ip = port["host_ip"] if isinstance(port, dict) else str(port).rsplit(":", 2)[0]
        assert host_ip == "127.0.0.1", f"HAPI published on {port!r}"
