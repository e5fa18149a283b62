"""Schemas and tools that validate the deployment files offline: `python -m deploy.validation.tools fetch`.

Nothing here can run a container or a cluster, so `make test` checks the files against the schemas
their consumers use, fetched once from the package registries this machine reaches and cached under
`.cache/deploy-tools/` (like the Kafka jars):

- the AsyncAPI 3.0 JSON Schema: the npm package `@asyncapi/specs`;
- the compose-spec JSON Schema: the Go module `github.com/compose-spec/compose-go/v2` (schema/);
- the KEDA CRDs (ScaledObject, TriggerAuthentication): the Go module `github.com/kedacore/keda/v2`;
- the Strimzi CRDs (KafkaTopic, KafkaUser): generated from Strimzi's API model by Strimzi's own CRD
  generator, both from Maven Central (deploy/validation/strimzi-pom.xml);
- kustomize, built from its Go module, to render the base and the overlays;
- the Kubernetes core schemas come with the Python package kubernetes-validate (a dev dependency).

Each tool lands in its own folder with a `.complete` marker naming what was fetched; a folder without
it is fetched again. `status` says what is there.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.kafka.broker import java17_home

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("EXPORTWATCH_DEPLOY_TOOLS", ROOT / ".cache" / "deploy-tools"))
STRIMZI_POM = HERE / "strimzi-pom.xml"

ASYNCAPI_SPECS_VERSION = "6.11.1"
COMPOSE_GO_VERSION = "v2.16.2"
KEDA_VERSION = "v2.20.2"
KUSTOMIZE_VERSION = "v5.8.1"
MARKER = ".complete"


def _strimzi_version() -> str:
    match = re.search(r"<strimzi.api.version>([^<]+)<", STRIMZI_POM.read_text("utf-8"))
    if match is None:
        raise RuntimeError(f"strimzi.api.version not found in {STRIMZI_POM}")
    return match.group(1)


STRIMZI_VERSION = _strimzi_version()


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    fetch: Callable[[Path], None]

    @property
    def folder(self) -> Path:
        return CACHE / f"{self.name}-{self.version}"

    def ready(self) -> bool:
        return (self.folder / MARKER).is_file()


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def _need(program: str, install: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise RuntimeError(f"{program} not found on PATH; {install}")
    return path


_GO_ENV = {"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


def _go_module_dir(module: str, version: str, work: Path) -> Path:
    go = _need("go", "install Go (apt-get install -y golang) to fetch Go modules")
    out = _run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=work, env=_GO_ENV)
    info = json.loads(out)
    if info.get("Error"):
        raise RuntimeError(f"go mod download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def _fetch_asyncapi(target: Path) -> None:
    npm = _need("npm", "install Node.js and npm (apt-get install -y npm)")
    _run(
        [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(target),
         f"@asyncapi/specs@{ASYNCAPI_SPECS_VERSION}"],
        cwd=target,
    )  # fmt: skip
    schemas = target / "node_modules" / "@asyncapi" / "specs" / "schemas"
    shutil.copy(schemas / "3.0.0-without-$id.json", target / "asyncapi-3.0.0.json")
    shutil.rmtree(target / "node_modules")


def _fetch_compose_spec(target: Path) -> None:
    module = _go_module_dir("github.com/compose-spec/compose-go/v2", COMPOSE_GO_VERSION, target)
    shutil.copy(module / "schema" / "compose-spec.json", target / "compose-spec.json")


def _fetch_keda(target: Path) -> None:
    module = _go_module_dir("github.com/kedacore/keda/v2", KEDA_VERSION, target)
    for name in ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"):
        shutil.copy(module / "config" / "crd" / "bases" / name, target / name)


def _fetch_strimzi(target: Path) -> None:
    mvn = _need("mvn", "install Maven (apt-get install -y maven)")
    java_home = java17_home()
    jars = target / "jars"
    _run(
        [mvn, "-q", "-B", "-f", str(STRIMZI_POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
         f"-DoutputDirectory={jars}"],
        cwd=target,
        env={"JAVA_HOME": str(java_home)},
    )  # fmt: skip
    # The arguments Strimzi's api/pom.xml gives the generator for the user and topic operators' CRDs.
    _run(
        [str(java_home / "bin" / "java"), "-cp", f"{jars}/*", "io.strimzi.crdgenerator.CrdGenerator",
         "--crd-api-version", "v1", "--api-versions", "v1alpha1,v1beta1,v1beta2,v1",
         "--storage-version", "v1beta2", "--yaml",
         f"io.strimzi.api.kafka.model.topic.KafkaTopic={target / 'kafkatopics.kafka.strimzi.io.yaml'}",
         f"io.strimzi.api.kafka.model.user.KafkaUser={target / 'kafkausers.kafka.strimzi.io.yaml'}"],
        cwd=target,
    )  # fmt: skip
    shutil.rmtree(jars)


def _fetch_kustomize(target: Path) -> None:
    go = _need("go", "install Go to build kustomize")
    _run(
        [go, "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
        cwd=target,
        env={**_GO_ENV, "GOBIN": str(target), "CGO_ENABLED": "0"},
    )


TOOLS = {
    tool.name: tool
    for tool in (
        Tool("asyncapi-specs", ASYNCAPI_SPECS_VERSION, _fetch_asyncapi),
        Tool("compose-spec", COMPOSE_GO_VERSION, _fetch_compose_spec),
        Tool("keda-crds", KEDA_VERSION, _fetch_keda),
        Tool("strimzi-crds", STRIMZI_VERSION, _fetch_strimzi),
        Tool("kustomize", KUSTOMIZE_VERSION, _fetch_kustomize),
    )
}


def ensure(name: str) -> Path:
    """The folder of tool `name`, fetched first if it is not complete; the copy goes to a temporary
    sibling renamed into place under a lock, so an interrupted fetch never leaves half a tool."""
    tool = TOOLS[name]
    if tool.ready():
        return tool.folder
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{tool.folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tool.ready():
            return tool.folder
        work = Path(tempfile.mkdtemp(prefix=f".{tool.folder.name}.", dir=CACHE))
        try:
            tool.fetch(work)
            (work / MARKER).write_text(f"{tool.name} {tool.version}\n", encoding="utf-8")
            shutil.rmtree(tool.folder, ignore_errors=True)
            work.rename(tool.folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tool.folder


def path(name: str, file: str) -> Path:
    """A file of a fetched tool; a clear error when it has not been fetched (no network in tests)."""
    tool = TOOLS[name]
    if not tool.ready():
        raise FileNotFoundError(
            f"{tool.name} {tool.version} is not in {CACHE}; run `make deploy-tools` "
            "(python -m deploy.validation.tools fetch) first"
        )
    return tool.folder / file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.validation.tools", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["fetch", "status"])
    args = parser.parse_args(argv)
    failed = False
    for name, tool in TOOLS.items():
        if args.command == "fetch" and not tool.ready():
            try:
                ensure(name)
            except (RuntimeError, OSError) as exc:
                print(f"{name} {tool.version}: not fetched: {exc}", file=sys.stderr)
                failed = True
                continue
        print(f"{name} {tool.version}: {'ready' if tool.ready() else 'missing'} ({tool.folder})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
