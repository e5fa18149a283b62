"""Kubernetes resources generated from the code's own tables: `python -m deploy.manifests write | check`.

Written to `deploy/k8s/base/generated/` and committed; the Kustomize base includes them and the
overlays patch them. What is generated is what would otherwise be copied by hand from Python:

- `kafka-topics.yaml`: a Strimzi `KafkaTopic` per topic of `shared/events.py` (ALL_TOPICS), with
  `TOPIC_CONFIGS` (the compacted clearances topic) and the partitions `make run` uses;
- `kafka-users.yaml`: a Strimzi `KafkaUser` per service (`exportwatch-<service>`, SCRAM-SHA-512) whose
  ACLs are exactly what `shared/topology.py` says it reads, writes and which group it joins;
- `workloads.yaml`: per service a Deployment (port from `SERVICE_PORTS`, probes on /readyz and
  /healthz), a Service and a PodDisruptionBudget;
- `autoscaling.yaml`: per service a KEDA `ScaledObject` on the consumer lag of each topic its group
  consumes, and the `TriggerAuthentication` it reads that lag with (the service's own KafkaUser).

`check` exits 1 naming each file that no longer matches the code (a test runs it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy import generated
from shared.events import ALL_TOPICS, TOPIC_CONFIGS
from shared.settings import SERVICE_PORTS, Settings
from shared.topology import WIRING, ServiceWiring

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "deploy" / "k8s" / "base" / "generated"

APP = "exportwatch"
# The Strimzi-managed Kafka cluster the resources belong to (its `Kafka` resource is the platform's).
KAFKA_CLUSTER = "exportwatch"
STRIMZI_API = "kafka.strimzi.io/v1"
KEDA_API = "keda.sh/v1alpha1"
IMAGE = "exportwatch"
SETTINGS_CONFIGMAP = "exportwatch-settings"
DATABASE_SECRET = "exportwatch-database"
REFERENCE_DATA_CLAIM = "exportwatch-reference-data"
KAFKA_CLIENT_CONFIGMAP = "exportwatch-kafka-client"
# The API keys every service accepts (names, roles, SHA-256 of the secrets; `exportwatch keys
# create`): a Secret made by the operator, mounted read-only; settings.env names the file in it.
API_KEYS_SECRET = "exportwatch-api-keys"
API_KEYS_MOUNT = "/var/run/secrets/exportwatch/api-keys"
API_KEYS_FILE = "api-keys.json"
# The cluster CA the services verify the brokers' TLS certificates with (settings.env names it).
KAFKA_CA_MOUNT = "/var/run/secrets/exportwatch/kafka-ca"
# Made by the Strimzi operators: the cluster CA, and one Secret per KafkaUser (key `password`).
CLUSTER_CA_SECRET = f"{KAFKA_CLUSTER}-cluster-ca-cert"
# Three replicas, two in sync: acks=all (every producer here) then survives one broker's loss.
TOPIC_REPLICAS = 3
MIN_INSYNC_REPLICAS = 2
# A replica catches up this much lag on its own before KEDA adds another (events per partition).
LAG_THRESHOLD = 100


@dataclass(frozen=True)
class Footprint:
    """Resources one instance asks for; screening holds every list's index in memory
    (docs/benchmarks.md: 351 MB peak with every list loaded, 588 MB during a list update)."""

    cpu: str
    memory: str
    memory_limit: str
    startup_seconds: int


FOOTPRINTS = {
    "classifier": Footprint("250m", "384Mi", "768Mi", 120),
    "screening": Footprint("500m", "768Mi", "1280Mi", 300),
    "risk": Footprint("100m", "192Mi", "384Mi", 60),
    "records": Footprint("250m", "256Mi", "512Mi", 60),
}
# Services with a database, and the settings naming it (keys of the external Secret).
DATABASE_SETTINGS = {
    "records": ("EXPORTWATCH_DATABASE_URL",),
    "classifier": ("EXPORTWATCH_CATALOG_DATABASE_URL",),
    "risk": ("EXPORTWATCH_RISK_DATABASE_URL",),
}


def user_name(service: str) -> str:
    return f"{APP}-{service}"


def _labels(service: str | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/part-of": APP}
    if service is not None:
        labels["app.kubernetes.io/name"] = service
    return labels


def _topic_name(topic: str, prefix: str) -> str:
    return f"{prefix}{topic}"


# --- Strimzi -------------------------------------------------------------------------------------


def kafka_topics(prefix: str = "") -> list[dict[str, Any]]:
    partitions = Settings.model_fields["topic_partitions"].default
    resources = []
    for topic in ALL_TOPICS:
        config: dict[str, Any] = {"min.insync.replicas": MIN_INSYNC_REPLICAS, **TOPIC_CONFIGS.get(topic, {})}
        resources.append(
            {
                "apiVersion": STRIMZI_API,
                "kind": "KafkaTopic",
                "metadata": {
                    "name": _topic_name(topic, prefix),
                    "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **_labels()},
                },
                "spec": {
                    "topicName": _topic_name(topic, prefix),
                    "partitions": partitions,
                    "replicas": TOPIC_REPLICAS,
                    "config": config,
                },
            }
        )
    return resources


def acl_operations(wiring: ServiceWiring) -> dict[tuple[str, str], list[str]]:
    """(resource type, name) -> operations: Read and Describe on what it reads, Write and Describe
    on what it writes, Read on its consumer group. Kafka >= 2.8 needs no cluster-wide
    IdempotentWrite for an idempotent producer (KIP-679): Write on the topic suffices."""
    operations: dict[tuple[str, str], set[str]] = {}
    for topic in wiring.reads:
        operations.setdefault(("topic", topic), set()).update({"Describe", "Read"})
    for topic in wiring.produces:
        operations.setdefault(("topic", topic), set()).update({"Describe", "Write"})
    operations[("group", wiring.group)] = {"Read"}
    return {key: sorted(ops) for key, ops in operations.items()}


def kafka_users(prefix: str = "") -> list[dict[str, Any]]:
    resources = []
    for wiring in WIRING.values():
        acls = [
            {
                "type": "allow",
                "resource": {
                    "type": kind,
                    "name": _topic_name(name, prefix) if kind == "topic" else name,
                    "patternType": "literal",
                },
                "operations": ops,
            }
            for (kind, name), ops in acl_operations(wiring).items()
        ]
        resources.append(
            {
                "apiVersion": STRIMZI_API,
                "kind": "KafkaUser",
                "metadata": {
                    "name": user_name(wiring.service),
                    "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **_labels(wiring.service)},
                },
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return resources


# --- workloads -----------------------------------------------------------------------------------


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _env(service: str) -> list[dict[str, Any]]:
    # Each service logs in to the brokers as its own KafkaUser (SCRAM-SHA-512 over TLS; protocol,
    # mechanism and CA in settings.env): the user name is the KafkaUser's, the password the key
    # `password` of the Secret the User Operator makes for it.
    return [
        {"name": "EXPORTWATCH_KAFKA_SASL_USERNAME", "value": user_name(service)},
        {
            "name": "EXPORTWATCH_KAFKA_SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": user_name(service), "key": "password"}},
        },
        *(
            {"name": name, "valueFrom": {"secretKeyRef": {"name": DATABASE_SECRET, "key": name}}}
            for name in DATABASE_SETTINGS.get(service, ())
        ),
    ]


def _volumes(service: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # /app/var: what the service writes (fetched lists and CCL); /tmp for libraries that want one;
    # the cluster CA for the TLS listener; the API keys (the service reloads the file when the
    # kubelet swaps in a changed Secret).
    volumes: list[dict[str, Any]] = [
        {"name": "reference-data", "persistentVolumeClaim": {"claimName": REFERENCE_DATA_CLAIM, "readOnly": True}},
        {"name": "var", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "kafka-ca", "secret": {"secretName": CLUSTER_CA_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "api-keys", "secret": {"secretName": API_KEYS_SECRET, "defaultMode": 0o440, "items": [{"key": API_KEYS_FILE, "path": API_KEYS_FILE}]}},
    ]  # fmt: skip
    mounts: list[dict[str, Any]] = [
        {"name": "reference-data", "mountPath": "/data", "readOnly": True},
        {"name": "var", "mountPath": "/app/var"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "kafka-ca", "mountPath": KAFKA_CA_MOUNT, "readOnly": True},
        {"name": "api-keys", "mountPath": API_KEYS_MOUNT, "readOnly": True},
    ]
    return volumes, mounts


def _container(service: str) -> dict[str, Any]:
    footprint = FOOTPRINTS[service]
    _, mounts = _volumes(service)
    container: dict[str, Any] = {
        "name": service,
        "image": f"{IMAGE}:latest",
        "args": [service],
        "ports": [{"name": "http", "containerPort": SERVICE_PORTS[service], "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": SETTINGS_CONFIGMAP}}],
        # Started: the process answers (list and CCL loading can take minutes on a cold node).
        "startupProbe": _probe("/healthz", period=5, failures=footprint.startup_seconds // 5),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        # Ready: reference data loaded, broker connected, partitions assigned (503 otherwise).
        "readinessProbe": _probe("/readyz", period=10, failures=3),
        "resources": {
            "requests": {"cpu": footprint.cpu, "memory": footprint.memory},
            "limits": {"memory": footprint.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    container["env"] = _env(service)
    return container


def deployment(service: str) -> dict[str, Any]:
    volumes, _ = _volumes(service)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": user_name(service), "labels": _labels(service)},
        # No `replicas`: the ScaledObject owns it (an applied replicas field would fight KEDA's HPA).
        "spec": {
            "selector": {"matchLabels": _labels(service)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": _labels(service),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(SERVICE_PORTS[service]),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # The consumer finishes and commits its batch on SIGTERM; leave it the time.
                    "terminationGracePeriodSeconds": 45,
                    "containers": [_container(service)],
                    "volumes": volumes,
                },
            },
        },
    }


def service_resource(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": user_name(service), "labels": _labels(service)},
        "spec": {
            "selector": _labels(service),
            "ports": [
                {"name": "http", "port": SERVICE_PORTS[service], "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def disruption_budget(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": user_name(service), "labels": _labels(service)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(service)}},
    }


def workloads() -> list[dict[str, Any]]:
    resources = []
    for service in SERVICE_PORTS:
        resources += [deployment(service), service_resource(service), disruption_budget(service)]
    return resources


# --- KEDA ----------------------------------------------------------------------------------------


def autoscaling(prefix: str = "") -> list[dict[str, Any]]:
    partitions = Settings.model_fields["topic_partitions"].default
    resources: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": KAFKA_CLIENT_CONFIGMAP, "labels": _labels()},
            "data": {
                "sasl": "scram_sha512",
                "tls": "enable",
                **{f"{w.service}.username": user_name(w.service) for w in WIRING.values()},
            },
        }
    ]
    for wiring in WIRING.values():
        auth = f"{user_name(wiring.service)}-kafka"
        resources.append(
            {
                "apiVersion": KEDA_API,
                "kind": "TriggerAuthentication",
                "metadata": {"name": auth, "labels": _labels(wiring.service)},
                "spec": {
                    "secretTargetRef": [
                        {"parameter": "password", "name": user_name(wiring.service), "key": "password"},
                        {"parameter": "ca", "name": CLUSTER_CA_SECRET, "key": "ca.crt"},
                    ],
                    "configMapTargetRef": [
                        {"parameter": "sasl", "name": KAFKA_CLIENT_CONFIGMAP, "key": "sasl"},
                        {"parameter": "tls", "name": KAFKA_CLIENT_CONFIGMAP, "key": "tls"},
                        {
                            "parameter": "username",
                            "name": KAFKA_CLIENT_CONFIGMAP,
                            "key": f"{wiring.service}.username",
                        },
                    ],
                },
            }
        )
        resources.append(
            {
                "apiVersion": KEDA_API,
                "kind": "ScaledObject",
                "metadata": {"name": user_name(wiring.service), "labels": _labels(wiring.service)},
                "spec": {
                    "scaleTargetRef": {"name": user_name(wiring.service)},
                    "minReplicaCount": 1,
                    # More instances than partitions would sit idle (one consumer per partition).
                    "maxReplicaCount": partitions,
                    "pollingInterval": 15,
                    "cooldownPeriod": 300,
                    "triggers": [
                        {
                            "type": "kafka",
                            "authenticationRef": {"name": auth},
                            "metadata": {
                                # The bootstrap servers the service itself is given (the settings ConfigMap).
                                "bootstrapServersFromEnv": "EXPORTWATCH_KAFKA_BOOTSTRAP_SERVERS",
                                "consumerGroup": wiring.group,
                                "topic": _topic_name(topic, prefix),
                                "lagThreshold": str(LAG_THRESHOLD),
                                "offsetResetPolicy": "earliest",
                            },
                        }
                        for topic in wiring.consumes
                    ],
                },
            }
        )
    return resources


# --- files ---------------------------------------------------------------------------------------


def _dump(resources: list[dict[str, Any]]) -> str:
    header = "# Generated by `python -m deploy.manifests write` (deploy/manifests.py); do not edit.\n"
    return header + "---\n".join(yaml.safe_dump(r, sort_keys=False, width=110) for r in resources)


def render() -> dict[Path, str]:
    return {
        GENERATED / "kafka-topics.yaml": _dump(kafka_topics()),
        GENERATED / "kafka-users.yaml": _dump(kafka_users()),
        GENERATED / "workloads.yaml": _dump(workloads()),
        GENERATED / "autoscaling.yaml": _dump(autoscaling()),
    }


def owned() -> list[Path]:
    return sorted(GENERATED.glob("*.yaml"))


def drift() -> list[str]:
    return generated.drift(render(), owned())


def main(argv: list[str] | None = None) -> int:
    return generated.main(
        argv, prog="python -m deploy.manifests", what="generated manifests", render=render, owned=owned
    )


if __name__ == "__main__":
    sys.exit(main())
