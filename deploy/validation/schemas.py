"""Offline validation of the deployment files against their consumers' schemas.

- Kubernetes core kinds: the JSON Schemas of Kubernetes' own OpenAPI documents (kubernetes-validate),
  in their strict form: a field Kubernetes does not know is an error, not silently dropped.
- Strimzi and KEDA resources: the `openAPIV3Schema` of their CRDs (deploy/validation/tools.py), made
  strict the same way: the API server prunes unknown fields of a structural CRD, so a misspelt
  field would otherwise vanish without a word.
- compose.yaml: the compose-spec JSON Schema; docs/asyncapi.yaml: the AsyncAPI 3.0 JSON Schema.

Every function returns a list of errors, each naming the resource (kind/name) and the field path;
empty means valid.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft4Validator, Draft7Validator, validators
from jsonschema.protocols import Validator

from deploy.validation import tools

# The Kubernetes releases the manifests are checked against: the oldest one supported here and the
# newest the schemas know.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")

CRD_FILES = {
    "strimzi-crds": ("kafkatopics.kafka.strimzi.io.yaml", "kafkausers.kafka.strimzi.io.yaml"),
    "keda-crds": ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"),
}


def load_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The resources `kustomize build directory` renders (the kustomize fetched by tools.py)."""
    binary = tools.path("kustomize", "kustomize")
    result = subprocess.run(
        [str(binary), "build", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise ValueError(f"kustomize build {directory}: {result.stderr.strip()}")
    return load_documents(result.stdout)


def _name(resource: dict[str, Any]) -> str:
    return f"{resource.get('kind')}/{(resource.get('metadata') or {}).get('name')}"


def _errors(validator: Validator, document: Any, prefix: str) -> list[str]:
    found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{prefix}: {'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]


# --- CRDs ----------------------------------------------------------------------------------------


def strict_schema(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as JSON Schema that refuses fields the CRD does not declare.

    `x-kubernetes-int-or-string` becomes integer-or-string and `nullable` admits null, as the API
    server reads them; objects with declared properties and no `additionalProperties` or
    `x-kubernetes-preserve-unknown-fields` are closed.
    """
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: strict_schema(value) for key, value in node.items()}
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.pop("nullable", False) and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    return schema


@cache
def crd_validators() -> dict[tuple[str, str], Validator]:
    """(apiVersion, kind) -> validator, for every served version of the Strimzi and KEDA CRDs."""
    found: dict[tuple[str, str], Validator] = {}
    for tool, files in CRD_FILES.items():
        for file in files:
            crd = yaml.safe_load(tools.path(tool, file).read_text("utf-8"))
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schema = strict_schema(version["schema"]["openAPIV3Schema"])
                    found[(f"{group}/{version['name']}", kind)] = Draft4Validator(schema)
    return found


# --- Kubernetes ----------------------------------------------------------------------------------


def kubernetes_errors(resource: dict[str, Any], version: str) -> list[str]:
    prefix = f"{_name(resource)} (Kubernetes {version})"
    try:
        kubernetes_validate.validate(resource, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        return [f"{prefix}: {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{prefix}: no schema: {exc.message}"]
    return []


def manifest_errors(
    resources: Iterable[dict[str, Any]], versions: Iterable[str] = KUBERNETES_VERSIONS
) -> list[str]:
    """Every resource against its schema: a CRD kind against its CRD, a core kind against the
    Kubernetes schemas of each release in `versions`; a kind with no schema is an error."""
    errors: list[str] = []
    crds = crd_validators()
    for resource in resources:
        validator = crds.get((resource.get("apiVersion", ""), resource.get("kind", "")))
        if validator is not None:
            errors += _errors(validator, resource, _name(resource))
            continue
        for version in versions:
            errors += kubernetes_errors(resource, version)
    return errors


# --- compose and AsyncAPI ------------------------------------------------------------------------


def _validator_for(schema_file: Path) -> Validator:
    schema = json.loads(schema_file.read_text("utf-8"))
    cls = validators.validator_for(schema, default=Draft7Validator)
    cls.check_schema(schema)
    validator: Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def compose_errors(document: dict[str, Any]) -> list[str]:
    return _errors(_validator_for(tools.path("compose-spec", "compose-spec.json")), document, "compose.yaml")


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    validator = _validator_for(tools.path("asyncapi-specs", "asyncapi-3.0.0.json"))
    return _errors(validator, document, "asyncapi")
