"""deploy/k8s, checked without a cluster (none on these machines or in CI).

`deploy/k8s/validate.sh` renders the base and every overlay with kustomize and validates them with
kubeconform -strict against the Kubernetes API schemas; these tests run it (the first run on a fresh
machine installs the pinned tools, ~1 min) and then check what a schema cannot: replicas, probes,
non-root pods, pinned images, no secret values, the network paths (HAPI only from the adapter, the
database only from HAPI and the adapter), and that HAPI gets the settings docker-compose gives it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapter.settings import REPO_ROOT
from tests.support.postgres import free_port

K8S = REPO_ROOT / "deploy" / "k8s"
VALIDATE = K8S / "validate.sh"
COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yml"
DEPLOY_README = REPO_ROOT / "deploy" / "README.md"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
RENDERINGS = ("base", "overlay-example")
SECRET_WORDS = re.compile(r"password|secret|token|database_url|datasource\.url", re.IGNORECASE)
# The only pods that may open connections to the region's PostgreSQL, and to HAPI.
DATABASE_CLIENTS = {"hapi", "adapter"}
HAPI_CLIENTS = {"adapter", "adapter-setup"}

Manifest = dict[str, Any]
# The first run on a fresh machine builds kustomize and kubeconform (4 min at load 15, measured).
pytestmark = pytest.mark.timeout(1500)


def run_validate(k8s_dir: Path, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    if out is not None:
        env["SIP_FHIR_K8S_OUT"] = str(out)
    return subprocess.run(
        ["bash", str(VALIDATE), str(k8s_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    out = tmp_path_factory.mktemp("k8s-rendered")
    result = run_validate(K8S, out)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every rendering, on both Kubernetes versions, validated without an invalid or skipped object.
    summaries = re.findall(r"Summary: (\d+) resources? found .* Valid: (\d+), .*", result.stdout)
    assert len(summaries) == 2, result.stdout  # Kubernetes 1.31 and 1.37
    assert all(found == valid and int(found) > 0 for found, valid in summaries), result.stdout
    return {
        name: [doc for doc in yaml.safe_load_all((out / f"{name}.yaml").read_text("utf-8")) if doc]
        for name in RENDERINGS
    }


def objects(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_templates(docs: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for doc in docs:
        if doc["kind"] == "Deployment":
            yield f"Deployment/{doc['metadata']['name']}", doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield (
                f"CronJob/{doc['metadata']['name']}",
                doc["spec"]["jobTemplate"]["spec"]["template"],
            )


def containers(pod: Manifest) -> list[Manifest]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


def config_map_data(docs: list[Manifest], name: str) -> dict[str, str]:
    """A generated ConfigMap's data: its name is `name-<hash of the content>`."""
    matches: list[dict[str, str]] = [
        config["data"]
        for full_name, config in objects(docs, "ConfigMap").items()
        if re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", full_name)
    ]
    (data,) = matches
    return data


@pytest.mark.parametrize("name", RENDERINGS)
def test_a_changed_setting_rolls_the_pods_that_use_it(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    """Every ConfigMap a pod reads is generated with a hash of its content in its name, so a new
    setting means a new pod template (a rollout), and a rollback returns to the old settings."""
    docs = rendered[name]
    config_maps = objects(docs, "ConfigMap")
    used = {
        source["configMapRef"]["name"]
        for _, pod in pod_templates(docs)
        for container in containers(pod)
        for source in container.get("envFrom", [])
    }
    assert used == set(config_maps)
    assert all(re.fullmatch(r"(hapi|adapter)-config-[a-z0-9]{10}", n) for n in used), used


@pytest.mark.parametrize("name", RENDERINGS)
def test_each_deployment_has_two_replicas_probes_a_service_and_a_disruption_budget(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    docs = rendered[name]
    deployments = objects(docs, "Deployment")
    assert set(deployments) == {"hapi", "adapter"}
    for deployment in deployments.values():
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["replicas"] >= 2, deployment["metadata"]["name"]
        for container in spec["template"]["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                assert container[probe]["httpGet"]["path"], (container["name"], probe)

        services = [s["spec"]["selector"] for s in objects(docs, "Service").values()]
        budgets = [
            p["spec"]["selector"]["matchLabels"]
            for p in objects(docs, "PodDisruptionBudget").values()
        ]
        assert any(s and s.items() <= labels.items() for s in services)
        assert any(b and b.items() <= labels.items() for b in budgets)
    probes = deployments["adapter"]["spec"]["template"]["spec"]["containers"][0]
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    hapi = deployments["hapi"]["spec"]["template"]["spec"]["containers"][0]
    assert hapi["readinessProbe"]["httpGet"]["path"] == "/fhir/metadata"


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_pod_runs_restricted(rendered: dict[str, list[Manifest]], name: str) -> None:
    templates = dict(pod_templates(rendered[name]))
    assert set(templates) == {"Deployment/hapi", "Deployment/adapter", "CronJob/setup"}
    for where, pod in templates.items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        for container in containers(pod):
            context = container["securityContext"]
            label = f"{where}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["capabilities"]["drop"] == ["ALL"], label
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), label
            assert "memory" in resources["limits"], label
    namespace = objects(rendered[name], "Namespace")["sip-fhir"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_image_is_pinned_and_hapi_is_the_compose_image(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    images = {
        container["image"]
        for _, pod in pod_templates(rendered[name])
        for container in containers(pod)
    }
    for image in images:
        repository, _, tag = image.rpartition(":")
        assert "@sha256:" in image or (repository and tag and tag != "latest"), image
    compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert compose["services"]["hapi"]["image"] in images


def test_hapi_gets_the_settings_compose_gives_it(rendered: dict[str, list[Manifest]]) -> None:
    compose_env = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]["hapi"]["environment"]
    config = config_map_data(rendered["overlay-example"], "hapi-config")
    ours = [key for key in compose_env if key.startswith(("hapi.", "spring.jpa.", "server."))]
    assert "hapi.fhir.subscription.resthook_enabled" in ours
    for key in ours:
        assert config.get(key) == compose_env[key], key
    assert config["hapi.fhir.reuse_cached_search_results_millis"] == "0"


@pytest.mark.parametrize("name", RENDERINGS)
def test_no_secret_value_is_in_the_manifests(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    docs = rendered[name]
    assert not objects(docs, "Secret"), "Secrets are made by the region, never shipped"
    for config in objects(docs, "ConfigMap").values():
        for key in config["data"]:
            assert not SECRET_WORDS.search(key), f"{config['metadata']['name']}: {key}"
    for where, pod in pod_templates(docs):
        for container in containers(pod):
            for variable in container.get("env", []):
                if SECRET_WORDS.search(variable["name"]):
                    source = variable.get("valueFrom", {})
                    assert "secretKeyRef" in source, f"{where}: {variable['name']} not a Secret"


def referenced_secrets(docs: list[Manifest]) -> set[str]:
    names = {
        tls["secretName"]
        for ingress in objects(docs, "Ingress").values()
        for tls in ingress["spec"]["tls"]
    }
    for _, pod in pod_templates(docs):
        volumes = pod["spec"].get("volumes", [])
        names |= {v["secret"]["secretName"] for v in volumes if "secret" in v}
        for container in containers(pod):
            names |= {
                v["valueFrom"]["secretKeyRef"]["name"]
                for v in container.get("env", [])
                if "secretKeyRef" in v.get("valueFrom", {})
            }
    return names


def test_every_secret_a_region_must_create_is_documented(
    rendered: dict[str, list[Manifest]],
) -> None:
    names = referenced_secrets(rendered["overlay-example"])
    assert {"hapi-db", "adapter-db", "adapter-hook", "adapter-api-keys", "worklist-tls"} <= names
    readme = DEPLOY_README.read_text("utf-8")
    for name in names:
        assert f"`{name}`" in readme, f"deploy/README.md does not say how to create {name}"


def test_every_adapter_setting_is_a_real_setting(rendered: dict[str, list[Manifest]]) -> None:
    listed = set(re.findall(r"^#?\s*(SIP_FHIR_\w+)=", ENV_EXAMPLE.read_text("utf-8"), re.M))
    docs = rendered["overlay-example"]
    names = set(config_map_data(docs, "adapter-config"))
    for _, pod in pod_templates(docs):
        for container in containers(pod):
            names |= {v["name"] for v in container.get("env", [])}
    adapter_names = {name for name in names if name.startswith("SIP_FHIR_")}
    assert adapter_names - listed == set(), "misspelt or unknown settings"
    # Several replicas share one state: the database URL (from its Secret) and the scheduler's
    # leader lock are what make that safe.
    adapter = objects(docs, "Deployment")["adapter"]["spec"]["template"]["spec"]["containers"][0]
    env = {v["name"]: v for v in adapter["env"]}
    assert env["SIP_FHIR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "adapter-db"
    assert config_map_data(docs, "adapter-config")["SIP_FHIR_SCHEDULER"] == "on"


def test_the_addresses_the_pods_use_are_the_services(rendered: dict[str, list[Manifest]]) -> None:
    """The adapter's FHIR base URL and the hook endpoint the setup job registers name Services
    that exist, on their ports."""
    docs = rendered["overlay-example"]
    ports = {
        (name, port["port"])
        for name, service in objects(docs, "Service").items()
        for port in service["spec"]["ports"]
    }
    base_url = httpx.URL(config_map_data(docs, "adapter-config")["SIP_FHIR_BASE_URL"])
    assert (base_url.host, base_url.port) in ports
    assert base_url.path == "/fhir"
    setup = dict(pod_templates(docs))["CronJob/setup"]["spec"]["containers"][0]["command"]
    endpoint = httpx.URL(setup[setup.index("--endpoint") + 1])
    assert (endpoint.host, endpoint.port) in ports
    assert (endpoint.host, endpoint.port) == ("adapter", 8000)


def peers_of(rule: Manifest, direction: str) -> list[Manifest]:
    peers: list[Manifest] = rule.get(direction, [])
    return peers


def names_selected(peer: Manifest) -> set[str]:
    selector = peer["podSelector"]
    if "matchLabels" in selector:
        return {selector["matchLabels"]["app.kubernetes.io/name"]}
    (expression,) = selector["matchExpressions"]
    assert expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In"
    return set(expression["values"])


@pytest.mark.parametrize("name", RENDERINGS)
def test_network_policies_deny_by_default_and_open_only_the_paths_needed(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    policies = objects(rendered[name], "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    # HAPI (no log-in in the official image): from the adapter's pods in this namespace only.
    hapi_ingress = [
        peer
        for policy in policies.values()
        if policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == "hapi"
        for rule in policy["spec"].get("ingress", [])
        for peer in peers_of(rule, "from")
    ]
    assert hapi_ingress
    for peer in hapi_ingress:
        assert set(peer) == {"podSelector"}, f"HAPI reachable from {peer}"
        assert names_selected(peer) <= HAPI_CLIENTS

    # The database port: only HAPI's and the adapter's policies open it, towards one address.
    openers = set()
    for policy_name, policy in policies.items():
        for rule in policy["spec"].get("egress", []):
            if any(port.get("port") == 5432 for port in rule.get("ports", [])):
                openers.add(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
                (peer,) = peers_of(rule, "to")
                assert peer["ipBlock"]["cidr"].endswith("/32"), policy_name
    assert openers == DATABASE_CLIENTS


def test_the_example_overlay_replaces_every_placeholder(
    rendered: dict[str, list[Manifest]],
) -> None:
    base = yaml.safe_dump_all(rendered["base"])
    overlay = yaml.safe_dump_all(rendered["overlay-example"])
    for placeholder in ("192.0.2.", ".invalid"):
        assert placeholder in base
        assert placeholder not in overlay, placeholder
    docs = rendered["overlay-example"]
    ingress = objects(docs, "Ingress")["adapter"]["spec"]
    hosts = {rule["host"] for rule in ingress["rules"]}
    assert hosts <= {host for tls in ingress["tls"] for host in tls["hosts"]}, "a host without TLS"
    origins = yaml.safe_load(config_map_data(docs, "adapter-config")["SIP_FHIR_UI_ORIGINS"])
    assert {f"https://{host}" for host in hosts} <= set(origins)


@pytest.mark.parametrize(
    ("original", "broken", "reason"),
    [
        ("readinessProbe:", "readinesProbe:", "additional properties 'readinesProbe'"),
        ("maxUnavailable: 1", "maxUnavailable: [1]", "maxUnavailable"),
    ],
)
def test_validation_fails_on_a_broken_manifest(
    rendered: dict[str, list[Manifest]], tmp_path: Path, original: str, broken: str, reason: str
) -> None:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    changed = copy / "base" / "adapter.yaml"
    text = changed.read_text("utf-8")
    assert original in text
    changed.write_text(text.replace(original, broken, 1), "utf-8")
    result = run_validate(copy)
    assert result.returncode != 0
    assert reason in result.stdout, result.stdout


def first_cookie_after_the_ingress(config: dict[str, str], tmp_path: Path) -> str:
    """The survey page's cookie, asked for through a stand-in for the ingress controller: a client
    on another loopback address (not the 127.0.0.1 uvicorn trusts by default) that says the
    user's connection was HTTPS, as ingress-nginx does after ending TLS."""
    port = free_port()
    tmp_path.mkdir()
    (tmp_path / "keys.json").write_text("{}", "utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIP_FHIR_")}
    env.pop("FORWARDED_ALLOW_IPS", None)
    env |= config | {
        "SIP_FHIR_API_HOST": "127.0.0.1",  # a test listens on loopback only
        "SIP_FHIR_API_PORT": str(port),
        "SIP_FHIR_DATA_DIR": str(tmp_path / "data"),
        "SIP_FHIR_API_KEYS_FILE": str(tmp_path / "keys.json"),
        "SIP_FHIR_SCHEDULER": "off",
        "SIP_FHIR_MAPPINGS_DIR": str(REPO_ROOT / "mappings"),
        "SIP_FHIR_PROFILES_DIR": str(REPO_ROOT / "profiles"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "from adapter.cli import app; app()", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as ingress:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, "sip-fhir serve stopped"
                try:
                    if ingress.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "sip-fhir serve did not start"
                time.sleep(0.3)
            answer = ingress.get(f"{base}/enkat", headers={"X-Forwarded-Proto": "https"})
            assert answer.status_code == 200
            return answer.headers["set-cookie"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_behind_the_ingress_the_adapters_cookies_are_secure(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    """TLS ends at the ingress controller, so the adapter must believe its X-Forwarded-Proto;
    otherwise the login and survey cookies go out without `Secure`."""
    config = config_map_data(rendered["overlay-example"], "adapter-config")
    assert "secure" in first_cookie_after_the_ingress(config, tmp_path / "a").lower()
    without = {key: value for key, value in config.items() if key != "FORWARDED_ALLOW_IPS"}
    assert "secure" not in first_cookie_after_the_ingress(without, tmp_path / "b").lower()
