"""What the deployment tests share: rendered manifests, and the settings a deployment may name."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from deploy.validation import schemas
from shared.settings import SERVICE_PORTS, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}


@cache
def rendered(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(schemas.kustomize_build(KUSTOMIZATIONS[name]))


def of_kind(resources: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def settings_variables() -> set[str]:
    """Environment variables a service reads: each Settings field as EXPORTWATCH_<FIELD>, the
    bootstrap servers' plain alias, and EXPORTWATCH_<SERVICE>_PORT. `service_name` and `port` are
    left out: load_settings sets them itself, so a variable of that name would be ignored."""
    fields = {
        f"EXPORTWATCH_{name.upper()}"
        for name in Settings.model_fields
        if name not in ("service_name", "port")
    }
    ports = {f"EXPORTWATCH_{service.upper()}_PORT" for service in SERVICE_PORTS}
    return fields | ports | {"KAFKA_BOOTSTRAP_SERVERS"}
