"""Settings from the environment (prefix SIP_FHIR_) and an optional .env file; see .env.example."""

from __future__ import annotations

import hashlib
import json
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapter.sandbox import check_run_tag, new_run_tag

REPO_ROOT = Path(__file__).resolve().parent.parent


class AuthMode(StrEnum):
    NONE = "none"
    BEARER = "bearer"  # static token
    OAUTH2 = "oauth2"  # client credentials, refreshed before expiry
    # mTLS is orthogonal: a client certificate may be combined with any of the above.


class EndpointSettings(BaseModel):
    """How to reach one FHIR server: the main one, or a registry."""

    base_url: str
    auth: AuthMode = AuthMode.NONE
    token: SecretStr | None = None
    oauth2_token_url: str | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret: SecretStr | None = None
    oauth2_scope: str | None = None
    client_cert: Path | None = None  # PEM certificate (SITHS function certificate) for mutual TLS
    client_key: Path | None = None
    ca_bundle: Path | None = None  # custom CA bundle to verify the server
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 6
    max_retry_seconds: float = 120.0  # total time budget for retries of one request
    max_retry_after: float = 30.0  # cap on a server's Retry-After
    # Sandbox mode (adapter/sandbox.py): every written resource tagged, profiles versioned.
    run_tag: str | None = None
    profile_version: str | None = None


class Settings(BaseSettings, EndpointSettings):
    """Every setting. The main FHIR server's are EndpointSettings' fields (SIP_FHIR_BASE_URL...)."""

    model_config = SettingsConfigDict(
        env_prefix="SIP_FHIR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    base_url: str = "http://localhost:8080/fhir"
    # Sandbox mode for shared servers (README "Sandlåda"): SIP_FHIR_SANDBOX=1 tags every written
    # resource with a run tag made per run (or SIP_FHIR_RUN_TAG) and versions our profiles.
    sandbox: bool = False

    data_dir: Path = REPO_ROOT / ".data"
    # The adapter's own state (outbox, audit log, scheduler jobs, sessions, read model) on one
    # shared database, e.g. postgresql+psycopg://user:pw@host/db; unset: SQLite files in data_dir.
    database_url: SecretStr | None = None
    mappings_dir: Path = REPO_ROOT / "mappings"
    # HSA-id of the vårdgivare (care provider) whose plans the adapter writes: the custodian of
    # each plan's Provenance (Inera EHDS-TK, yttre spärr). Unset: no Provenance is written.
    care_provider_hsa_id: str | None = None
    profiles_dir: Path = (
        REPO_ROOT / "profiles"
    )  # conformance resources (profiles install, Measures)
    batch_size: int = 200
    log_level: str = "INFO"
    log_json: bool = False

    # --- The API service (adapter/api); see README "API" ---
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys_file: Path | None = None  # JSON: sha256(key) hex -> {name, role, units}
    oidc_issuer: str | None = None  # bearer JWTs are accepted only when this is set
    oidc_audience: str | None = None  # required together with oidc_issuer
    oidc_jwks_url: str | None = None  # default: jwks_uri of the issuer's discovery document
    oidc_algorithms: list[str] = ["RS256", "PS256", "ES256"]  # asymmetric only
    oidc_roles_claim: str = "roles"  # dotted path, e.g. "realm_access.roles" for Keycloak
    oidc_units_claim: str = "units"  # HSA-ids of the units the user may see
    oidc_leeway_seconds: int = 60  # clock skew allowed on exp/nbf/iat
    oidc_jwks_cache_seconds: int = 3600
    audit_db: Path | None = None  # default: data_dir / "audit.sqlite"
    max_body_bytes: int = 10 * 1024 * 1024
    metrics_public: bool = True  # /metrics holds no personal data; set false to require a login
    ui_origins: list[str] = []  # public origins of the pages when a proxy rewrites Host
    # --- The SIP meeting survey (adapter/survey): the answer page's address as printed on
    # "Min plan" (default: this service's own /enkat), and its rate limit per client address ---
    survey_url: str | None = None
    survey_attempts_per_10min: int = 10

    # --- Follow-up engine: the scheduler (adapter/scheduler.py) and the subscription hook ---
    scheduler: bool = True  # on|off: run the scheduled scans here (SQLite: in exactly one process)
    # Shared database only: how often a follower tries to become the scheduler's leader, and the
    # leader checks it still is (adapter/scheduler.py); a dead leader is replaced within it.
    scheduler_retry_seconds: float = 15.0
    hook_secret: SecretStr | None = None  # the FHIR server's subscriptions send it; unset: hook off

    # --- The indicator registry (`sip-fhir report --post`): a second FHIR server, its own login ---
    # EndpointSettings' login fields with a `registry_` prefix (flat, so SIP_FHIR_REGISTRY_AUTH);
    # tests/unit/test_settings_fields.py keeps names and types in step with EndpointSettings.
    registry_base_url: str | None = None
    registry_auth: AuthMode = AuthMode.NONE
    registry_token: SecretStr | None = None
    registry_oauth2_token_url: str | None = None
    registry_oauth2_client_id: str | None = None
    registry_oauth2_client_secret: SecretStr | None = None
    registry_oauth2_scope: str | None = None
    registry_client_cert: Path | None = None
    registry_client_key: Path | None = None
    registry_ca_bundle: Path | None = None

    @field_validator("run_tag")
    @classmethod
    def _valid_run_tag(cls, value: str | None) -> str | None:
        return check_run_tag(value) if value else None

    @model_validator(mode="after")
    def _sandbox_defaults(self) -> Settings:
        if self.sandbox:
            self.run_tag = self.run_tag or new_run_tag(suffix=secrets.token_hex(2))
            self.profile_version = self.profile_version or sandbox_profile_version(
                self.profiles_dir
            )
        return self

    @property
    def audit_db_path(self) -> Path:
        return self.audit_db or self.data_dir / "audit.sqlite"

    def endpoint(self) -> EndpointSettings:
        return EndpointSettings.model_validate(
            {name: getattr(self, name) for name in EndpointSettings.model_fields}
        )

    def registry_endpoint(self) -> EndpointSettings:
        """The registry: its own URL and credentials (`registry_*`); timeouts and retries as for
        the main server. ValueError (Swedish) when no registry URL is set."""
        if not self.registry_base_url:
            raise ValueError("Ingen registerserver angiven: sätt SIP_FHIR_REGISTRY_BASE_URL")
        own = {
            name: getattr(self, f"registry_{name}")
            for name in EndpointSettings.model_fields
            if f"registry_{name}" in type(self).model_fields
        }
        shared = {name: getattr(self, name) for name in EndpointSettings.model_fields}
        return EndpointSettings.model_validate(shared | own)


def sandbox_profile_version(profiles_dir: Path) -> str:
    """`0.1.0-sbx.1a2b3c4d`: package.json's version and a digest of the profiles' content.

    Not the plain version: profiles/ already declares it, and a server refuses a second
    CodeSystem with the same URL and version under another id. The digest makes the same
    content share one version (and ids: installing again changes nothing) and different content,
    anyone's, never meet under it.
    """
    try:
        package = json.loads((profiles_dir / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        package = {}
    digest = hashlib.sha256()
    for path in sorted(profiles_dir.glob("*.json")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    return f"{package.get('version') or '0'}-sbx.{digest.hexdigest()[:8]}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
