"""Kubernetes manifests and compose.yaml: valid against the schemas of what consumes them, and naming
only settings, ports, topics and ACLs the code has."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import manifests
from deploy.validation import schemas
from shared.events import ALL_TOPICS, TOPIC_CONFIGS
from shared.settings import SERVICE_PORTS, load_settings
from shared.topology import WIRING
from tests.deploy.deploy_support import KUSTOMIZATIONS, ROOT, of_kind, rendered, settings_variables

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
# Made outside these manifests: the database credentials (by whoever runs PostgreSQL), each
# KafkaUser's password and the cluster CA (by the Strimzi operators). docs/deployment.md lists them.
EXTERNAL_SECRETS = {manifests.DATABASE_SECRET, manifests.CLUSTER_CA_SECRET, manifests.API_KEYS_SECRET} | {
    manifests.user_name(s) for s in SERVICE_PORTS
}


def _service_of(resource: dict[str, Any]) -> str:
    name: str = resource["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def _settings_configmap(resources: tuple[dict[str, Any], ...]) -> dict[str, str]:
    [configmap] = [
        c for c in of_kind(resources, "ConfigMap") if c["metadata"]["name"].startswith("exportwatch-settings")
    ]
    data: dict[str, str] = configmap.get("data", {})
    return data


def test_generated_manifests_match_the_code() -> None:
    assert manifests.drift() == [], "run `make generate` and commit deploy/k8s/base/generated"


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_rendered_resource_is_valid_against_kubernetes_strimzi_and_keda_schemas(name: str) -> None:
    resources = rendered(name)
    kinds = {r["kind"] for r in resources}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "KafkaTopic",
        "KafkaUser",
        "ScaledObject",
    } <= kinds
    assert schemas.manifest_errors(resources) == []


def test_validation_names_the_resource_and_field_of_each_mistake() -> None:
    resources = {r["kind"]: copy.deepcopy(r) for r in rendered("base")}
    resources["Deployment"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "pth"
    ] = "/"
    resources["KafkaUser"]["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    resources["ScaledObject"]["spec"]["maxReplicas"] = 3
    resources["KafkaTopic"]["spec"]["partitions"] = "three"
    resources["PodDisruptionBudget"]["apiVersion"] = "policy/v1beta7"
    errors = schemas.manifest_errors(resources.values())
    assert any("Deployment/" in e and "'pth' was unexpected" in e for e in errors)
    assert any("KafkaUser/" in e and "'Reed' is not one of" in e for e in errors)
    assert any("ScaledObject/" in e and "'maxReplicas' was unexpected" in e for e in errors)
    assert any("KafkaTopic/" in e and "spec.partitions" in e for e in errors)
    assert any("PodDisruptionBudget/" in e and "no schema" in e for e in errors)


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_deployments_use_only_settings_the_services_read_and_their_own_ports(name: str) -> None:
    resources = rendered(name)
    known = settings_variables()
    named = set(_settings_configmap(resources))
    deployments = of_kind(resources, "Deployment")
    assert {_service_of(d) for d in deployments} == set(SERVICE_PORTS)
    for deployment in deployments:
        service = _service_of(deployment)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        named |= {e["name"] for e in container.get("env", [])}
        assert container["args"] == [service]
        assert container["ports"] == [
            {"name": "http", "containerPort": SERVICE_PORTS[service], "protocol": "TCP"}
        ]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(SERVICE_PORTS[service])
    assert named - known == set(), "variables no Settings field reads"
    assert "EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS" in named and "EXPORTWATCH_DATA_DIR" in named
    for svc in of_kind(resources, "Service"):
        assert [p["port"] for p in svc["spec"]["ports"]] == [SERVICE_PORTS[_service_of(svc)]]


def test_settings_variables_exclude_what_load_settings_overrides() -> None:
    known = settings_variables()
    assert "EXPORTWATCH_DATABASE_URL" in known and "EXPORTWATCH_RECORDS_PORT" in known
    assert "EXPORTWATCH_PORT" not in known and "EXPORTWATCH_SERVICE_NAME" not in known
    assert "EXPORTWATCH_NO_SUCH_SETTING" not in known


def _mounted_secret(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str, bool]:
    """The Secret, its key and whether the mount is read-only, for a file path inside a pod."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        folder = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(folder) and "secret" in volumes[mount["name"]]:
            secret = volumes[mount["name"]]["secret"]
            relative = path.removeprefix(folder)
            keys = {i["path"]: i["key"] for i in secret.get("items", [])} or {relative: relative}
            return secret["secretName"], keys[relative], mount.get("readOnly", False)
    raise AssertionError(f"{path} is in no mounted Secret")


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_services_log_in_to_kafka_as_their_own_kafka_user_over_tls_and_read_the_mounted_api_keys(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.kafka.secure import BrokerSecurity

    resources = rendered(name)
    settings = _settings_configmap(resources)
    users = {u["metadata"]["name"] for u in of_kind(resources, "KafkaUser")}
    assert settings["EXPORTWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["EXPORTWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    # What the pod's files are here: a real CA certificate and a keys file.
    ca_file = BrokerSecurity.create(tmp_path / "tls").ca_file
    keys_file = tmp_path / "api-keys.json"
    keys_file.write_text('{"keys": []}')
    for deployment in of_kind(resources, "Deployment"):
        service = _service_of(deployment)
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        ca = _mounted_secret(pod, container, settings["EXPORTWATCH_KAFKA_SSL_CAFILE"])
        assert ca == (manifests.CLUSTER_CA_SECRET, "ca.crt", True)
        keys = _mounted_secret(pod, container, settings["EXPORTWATCH_API_KEYS_FILE"])
        assert keys == (manifests.API_KEYS_SECRET, "api-keys.json", True)
        username = env["EXPORTWATCH_KAFKA_SASL_USERNAME"]["value"]
        assert username == f"exportwatch-{service}" and username in users
        assert env["EXPORTWATCH_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": username,
            "key": "password",
        }
        # The whole set as the service reads it: Settings accepts it (a wrong name, protocol or
        # mechanism, or credentials the protocol would not send, are refused at startup).
        for variable, value in settings.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv("EXPORTWATCH_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("EXPORTWATCH_KAFKA_SSL_CAFILE", str(ca_file))
        monkeypatch.setenv("EXPORTWATCH_API_KEYS_FILE", str(keys_file))
        monkeypatch.setenv("EXPORTWATCH_KAFKA_SASL_USERNAME", username)
        monkeypatch.setenv("EXPORTWATCH_KAFKA_SASL_PASSWORD", "from-the-kafka-user-secret")
        loaded = load_settings(service)
        assert loaded.uses_tls and loaded.uses_sasl
        assert loaded.kafka_sasl_mechanism == "SCRAM-SHA-512" and loaded.kafka_sasl_username == username
        assert loaded.api_keys_file == keys_file


def test_compose_mounts_the_api_keys_file_read_only_into_every_service() -> None:
    secrets = COMPOSE["secrets"]
    for service in SERVICE_PORTS:
        definition = COMPOSE["services"][service]
        [mounted] = definition["secrets"]
        target = definition["environment"]["EXPORTWATCH_API_KEYS_FILE"]
        assert mounted["source"] in secrets and target == mounted["target"]
        assert target.startswith("/run/secrets/")  # a secret's mount: read-only in the container


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_every_referenced_configmap_secret_and_claim_exists_or_is_a_documented_dependency(name: str) -> None:
    resources = rendered(name)
    present = {(r["kind"], r["metadata"]["name"]) for r in resources}
    for deployment in of_kind(resources, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        for source in container["envFrom"]:
            assert ("ConfigMap", source["configMapRef"]["name"]) in present
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e
        }
        secrets |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets <= EXTERNAL_SECRETS
        claims = {
            v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
        }
        assert {("PersistentVolumeClaim", c) for c in claims} <= present
    for auth in of_kind(resources, "TriggerAuthentication"):
        assert {r["name"] for r in auth["spec"]["secretTargetRef"]} <= EXTERNAL_SECRETS
        assert {("ConfigMap", r["name"]) for r in auth["spec"]["configMapTargetRef"]} <= present


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kafka_topics_are_the_contracts_topics_with_their_settings(name: str) -> None:
    resources = rendered(name)
    prefix = _settings_configmap(resources)["EXPORTWATCH_TOPIC_PREFIX"]
    topics = {t["spec"]["topicName"]: t for t in of_kind(resources, "KafkaTopic")}
    assert set(topics) == {prefix + t for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        config = topics[prefix + topic]["spec"]["config"]
        for key, value in TOPIC_CONFIGS.get(topic, {}).items():
            assert config[key] == value
        assert config["min.insync.replicas"] < topics[prefix + topic]["spec"]["replicas"]
    assert topics[prefix + "screening.clearances.v1"]["spec"]["config"]["cleanup.policy"] == "compact"


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kafka_user_acls_are_exactly_what_the_topology_says(name: str) -> None:
    resources = rendered(name)
    prefix = _settings_configmap(resources)["EXPORTWATCH_TOPIC_PREFIX"]
    users = {u["metadata"]["name"]: u for u in of_kind(resources, "KafkaUser")}
    assert set(users) == {f"exportwatch-{s}" for s in WIRING}
    for wiring in WIRING.values():
        spec = users[f"exportwatch-{wiring.service}"]["spec"]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        granted: dict[tuple[str, str], set[str]] = {}
        for acl in spec["authorization"]["acls"]:
            assert acl["type"] == "allow" and acl["resource"]["patternType"] == "literal"
            key = (acl["resource"]["type"], acl["resource"]["name"])
            granted.setdefault(key, set()).update(acl["operations"])

        def topics_with(operation: str, grants: dict[tuple[str, str], set[str]] = granted) -> set[str]:
            return {name for (kind, name), ops in grants.items() if kind == "topic" and operation in ops}

        assert topics_with("Read") == {prefix + t for t in wiring.reads}
        assert topics_with("Write") == {prefix + t for t in wiring.produces}
        assert topics_with("Describe") == {prefix + t for t in (*wiring.reads, *wiring.produces)}
        assert {n: ops for (k, n), ops in granted.items() if k == "group"} == {wiring.group: {"Read"}}
        assert {k for k, _ in granted} == {"topic", "group"}, "no cluster-wide or transactional grants"


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_scaling_follows_the_lag_of_each_consumed_topic_and_never_exceeds_its_partitions(name: str) -> None:
    resources = rendered(name)
    partitions = {t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(resources, "KafkaTopic")}
    deployments = {d["metadata"]["name"] for d in of_kind(resources, "Deployment")}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(resources, "ScaledObject")}
    assert set(scaled) == deployments
    for wiring in WIRING.values():
        spec = scaled[f"exportwatch-{wiring.service}"]["spec"]
        triggers = spec["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == set(wiring.consumes)
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {wiring.group}
        assert all(t["type"] == "kafka" for t in triggers)
        assert {t["metadata"]["bootstrapServersFromEnv"] for t in triggers} <= settings_variables()
        assert (
            1
            <= spec["minReplicaCount"]
            <= spec["maxReplicaCount"]
            <= min(partitions[t] for t in wiring.consumes)
        )


def test_production_overlay_runs_two_instances_at_least_on_twelve_partitions() -> None:
    resources = rendered("production")
    assert {t["spec"]["partitions"] for t in of_kind(resources, "KafkaTopic")} == {12}
    assert {s["spec"]["minReplicaCount"] for s in of_kind(resources, "ScaledObject")} == {2}
    assert {r["metadata"].get("namespace") for r in resources} == {"exportwatch"}
    images = {
        d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind(resources, "Deployment")
    }
    assert images == {"registry.example.com/exportwatch:0.1.0"}


def test_pods_run_as_non_root_with_a_read_only_root_filesystem() -> None:
    for deployment in of_kind(rendered("production"), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


# --- compose.yaml ----------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schemas.compose_errors(COMPOSE) == []


def test_compose_validation_reports_a_mistake() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["records"]["healthcheck"]["intervall"] = "10s"
    broken["services"]["kafka"]["depends_on"] = 7
    errors = schemas.compose_errors(broken)
    assert any("services.records.healthcheck" in e and "intervall" in e for e in errors)
    assert any("services.kafka.depends_on" in e for e in errors)


def test_compose_runs_each_service_on_its_port_with_a_readiness_health_check_and_known_settings() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "postgres"} <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    known = settings_variables()
    for name, port in SERVICE_PORTS.items():
        service = services[name]
        assert service["command"] == [name]
        assert service["ports"] == [f"{port}:{port}"]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert set(service["environment"]) <= known, set(service["environment"]) - known
        assert service["depends_on"]["kafka"] == {"condition": "service_healthy"}
        assert any(v.endswith(":/data:ro") for v in service["volumes"])
        assert service["environment"]["EXPORTWATCH_DATA_DIR"] == "/data"
    assert services["topics"]["command"] == ["create-topics"]
    assert set(services["topics"]["environment"]) <= known


def test_compose_gives_the_databases_to_the_services_that_keep_one() -> None:
    services = COMPOSE["services"]
    assert services["records"]["environment"]["EXPORTWATCH_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["classifier"]["environment"]["EXPORTWATCH_CATALOG_DATABASE_URL"].startswith(
        "postgresql+asyncpg://"
    )
    for name, settings in manifests.DATABASE_SETTINGS.items():
        assert set(settings) <= set(services[name]["environment"])
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_base_kustomization_lists_every_generated_file() -> None:
    kustomization = yaml.safe_load((KUSTOMIZATIONS["base"] / "kustomization.yaml").read_text("utf-8"))
    listed = {Path(r).name for r in kustomization["resources"] if r.startswith("generated/")}
    assert listed == {p.name for p in manifests.owned()}


def test_a_tool_not_fetched_yet_is_named_with_the_command_that_fetches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.validation import tools

    monkeypatch.setattr(tools, "CACHE", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"kustomize v5\.8\.1 is not in .*make deploy-tools"):
        tools.path("kustomize", "kustomize")
