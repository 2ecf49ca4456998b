"""The Kubernetes manifests in deploy/ and the Dockerfile agree with the code they run.

Nothing here needs a cluster or kubectl: the kustomizations are resolved by this module
(only the kustomize features deploy/ uses; any other field fails loudly so the resolver
is extended, not bypassed). Each check then holds a manifest against what it depends on:
the CLI's real commands and options, the fields of `Settings`, the variables the schools
file references, the image's user, entrypoint and locked dependencies. One more test
compares the resolver's output with the real kustomize, which `scripts/kustomize.sh`
builds from the Go module proxy on first use (the same engine as `kubectl kustomize`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import ipaddress
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml

from app.cli import cli
from consumers.health import build_health_router
from consumers.poller import STOP_GRACE
from consumers.runner import RunnerConfig
from consumers.settings import Settings, expand_variables, load_schools, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = sorted(path for path in (DEPLOY / "overlays").iterdir() if path.is_dir())
BUILDS = [BASE, *OVERLAYS]
SECRET_TEMPLATE = BASE / "secret.template.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
RUNTIME_LOCK = DEPLOY / "docker" / "runtime-lock.txt"

# Which subcommand each Deployment runs, and which option holds its listening host/port.
ROLES = {
    "isams-sync-ingest": ("serve", "host", "port"),
    "isams-sync-consumer": ("consume", "health_host", "health_port"),
    "isams-sync-poller": ("poll", "health_host", "health_port"),
}
SCHOOLS_CONFIGMAP = "isams-sync-schools"
PLACEHOLDER = re.compile(r"<[^<>]+>")
# A value that would pass as a Standard Webhooks secret (whsec_ + base64), for load_schools.
DUMMY_SECRET = "whsec_ZHVtbXktc2VjcmV0LWZvci10ZXN0cw=="

Manifest = dict[str, Any]


def _ids(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(DEPLOY)) for path in paths]


# --- a resolver for the subset of kustomize that deploy/ uses ------------------------------

KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "replicas",
    "images",
    "namespace",
}
GENERATOR_FIELDS = {"name", "behavior", "files", "envs", "literals"}


def load_documents(path: Path) -> list[Manifest]:
    """Return the non-empty YAML documents of a file."""
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


@functools.cache
def _build(directory: Path) -> str:
    return json.dumps(kustomize(directory))


def build(directory: Path) -> list[Manifest]:
    """Return a fresh copy of the resolved objects of one kustomization (cached)."""
    objects: list[Manifest] = json.loads(_build(directory))
    return objects


def kustomize(directory: Path) -> list[Manifest]:
    """Resolve a kustomization directory the way `kubectl kustomize` would (no name hashes)."""
    path = directory / "kustomization.yaml"
    assert path.is_file(), f"{directory} has no kustomization.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = set(spec) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{path}: {sorted(unknown)} not understood by this test; extend it"
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        resource = directory / entry
        assert resource.exists(), f"{path}: resource {entry} does not exist"
        objects.extend(kustomize(resource) if resource.is_dir() else load_documents(resource))
    for generator in spec.get("configMapGenerator", []):
        _generate(directory, generator, objects)
    for replica in spec.get("replicas", []):
        deployment = find(objects, "Deployment", replica["name"])
        deployment["spec"]["replicas"] = replica["count"]
    for image in spec.get("images", []):
        _set_image(objects, image)
    if "namespace" in spec:
        for manifest in objects:
            manifest["metadata"]["namespace"] = spec["namespace"]
    keys = [(manifest["kind"], manifest["metadata"]["name"]) for manifest in objects]
    assert len(keys) == len(set(keys)), f"{path}: an object is defined twice: {keys}"
    return objects


def _generate(directory: Path, generator: Manifest, objects: list[Manifest]) -> None:
    unknown = set(generator) - GENERATOR_FIELDS
    assert not unknown, f"{directory}: generator fields {sorted(unknown)} not understood"
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, source = entry.rpartition("=")
        path = directory / source
        assert path.is_file(), f"{directory}: generator file {source} does not exist"
        data[key or path.name] = path.read_text(encoding="utf-8")
    for entry in generator.get("envs", []):
        path = directory / entry
        assert path.is_file(), f"{directory}: generator env file {entry} does not exist"
        data.update(read_env_file(path))
    for literal in generator.get("literals", []):
        key, sep, value = literal.partition("=")
        assert sep, f"{directory}: literal {literal!r} has no '='"
        data[key] = value
    name = generator["name"]
    behavior = generator.get("behavior", "create")
    existing = [m for m in objects if m["kind"] == "ConfigMap" and m["metadata"]["name"] == name]
    if behavior == "create":
        assert not existing, f"{directory}: ConfigMap {name} already exists (merge/replace?)"
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        )
    else:
        assert behavior in ("merge", "replace"), f"{directory}: unknown behavior {behavior}"
        assert existing, f"{directory}: cannot {behavior} ConfigMap {name}: no such ConfigMap"
        configmap = existing[0]
        configmap["data"] = {**configmap["data"], **data} if behavior == "merge" else data


def read_env_file(path: Path) -> dict[str, str]:
    """Read a kustomize env file: KEY=VALUE lines, `#` comments and blank lines skipped."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"{path}:{number}: expected KEY=VALUE"
        values[key] = value
    return values


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """Split `name[:tag][@digest]`; a registry's `host:port/` is part of the name."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def _set_image(objects: list[Manifest], image: Manifest) -> None:
    matched = False
    for deployment in kinds(objects, "Deployment"):
        for container in containers(deployment):
            name, tag, digest = split_image(container["image"])
            if name != image["name"]:
                continue
            matched = True
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            digest = image.get("digest", digest)
            container["image"] = (
                name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            )
    assert matched, f"images: no container uses {image['name']}"


# --- helpers over resolved objects ----------------------------------------------------------


def kinds(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in objects if manifest["kind"] == kind]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in kinds(objects, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def containers(deployment: Manifest) -> list[Manifest]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def pod_spec(deployment: Manifest) -> Manifest:
    spec: Manifest = deployment["spec"]["template"]["spec"]
    return spec


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are checked here"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def secret_templates() -> dict[str, Manifest]:
    return {doc["metadata"]["name"]: doc for doc in load_documents(SECRET_TEMPLATE)}


def secret_keys(name: str) -> set[str]:
    """Keys of a Secret the pods use: the template is where operators learn them."""
    templates = secret_templates()
    assert name in templates, f"Secret {name} is used but not documented in {SECRET_TEMPLATE}"
    template = templates[name]
    return set(template.get("stringData", {})) | set(template.get("data", {}))


def container_port(container: Manifest, port: int | str) -> int:
    """Resolve a probe's or Service's port (a number or a named container port)."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"container {container['name']} has no port named {port}"
    return int(named[0])


def environment(objects: list[Manifest], container: Manifest) -> dict[str, str]:
    """Return the container's variables; a Secret's value is its template's placeholder."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            configmap = find(objects, "ConfigMap", source["configMapRef"]["name"])
            values.update(configmap["data"])
        else:
            name = source["secretRef"]["name"]
            values.update(dict.fromkeys(secret_keys(name), DUMMY_SECRET))
    for variable in container.get("env", []):
        reference = variable.get("valueFrom", {})
        if "value" in variable:
            values[variable["name"]] = str(variable["value"])
        elif "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            values[variable["name"]] = find(objects, "ConfigMap", ref["name"])["data"][ref["key"]]
        elif "secretKeyRef" in reference:
            ref = reference["secretKeyRef"]
            keys = secret_keys(ref["name"])
            assert ref["key"] in keys, f"{variable['name']}: {ref['name']} has no {ref['key']}"
            placeholder = secret_templates()[ref["name"]]["stringData"][ref["key"]]
            values[variable["name"]] = placeholder.strip("<>")
        else:
            raise AssertionError(f"env {variable['name']}: unsupported source {reference}")
    return values


def parse_command(container: Manifest) -> tuple[str, dict[str, Any]]:
    """Parse the container's arguments with the real `isams-sync` command line."""
    command = container.get("command", dockerfile_entrypoint())
    assert command == ["isams-sync"], f"{container['name']}: runs {command}, not isams-sync"
    args = container.get("args", [])
    not_strings = [arg for arg in args if not isinstance(arg, str)]
    assert not not_strings, f"{container['name']}: Kubernetes wants strings, got {not_strings}"
    assert args, f"{container['name']}: no subcommand"
    name, *options = args
    group = typer.main.get_command(cli)
    assert isinstance(group, typer.core.TyperGroup)
    assert name in group.commands, f"isams-sync has no command {name!r}"
    try:
        context = group.commands[name].make_context(name, list(options))
    except Exception as exc:  # the CLI's own error says which option is wrong
        pytest.fail(f"{container['name']}: isams-sync {' '.join(args)}: {exc}")
    return name, context.params


def schools_mount(deployment: Manifest, container: Manifest) -> tuple[Path, str] | None:
    """Return (mount path, ConfigMap name) of the schools volume, if this container has it."""
    volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        configmap = volumes[mount["name"]].get("configMap", {}).get("name")
        if configmap == SCHOOLS_CONFIGMAP:
            assert mount.get("readOnly") is True, "the schools file must be mounted read-only"
            return Path(mount["mountPath"]), configmap
    return None


def referenced_variables(text: str) -> set[str]:
    """Return the variables the service would expand in `text` (its own parser decides)."""

    class Recorder(dict[str, str]):
        def __contains__(self, key: object) -> bool:
            seen.add(str(key))
            return True

        def __getitem__(self, key: str) -> str:
            return DUMMY_SECRET

    seen: set[str] = set()
    expand_variables(text, Recorder())
    return seen


def memory_bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity)


def deployment_containers(objects: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    for deployment in kinds(objects, "Deployment"):
        for container in containers(deployment):
            yield deployment, container


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        pending += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def dockerfile_entrypoint() -> list[str]:
    entrypoints = [rest for keyword, rest in dockerfile_instructions() if keyword == "ENTRYPOINT"]
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    entrypoint: list[str] = json.loads(entrypoints[-1])  # exec form: signals reach Python
    return entrypoint


def dockerfile_user() -> tuple[int, int]:
    users = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    assert users, "the Dockerfile sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and gid.isdigit(), "USER must be numeric uid:gid for runAsNonRoot"
    return int(uid), int(gid)


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


# === the checks ================================================================================


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert files
    for path in files:
        for document in load_documents(path):
            if isinstance(document, dict) and "kind" in document:
                assert document.get("apiVersion"), f"{path}: {document['kind']} has no apiVersion"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_kustomization_resolves_to_the_whole_service(directory: Path) -> None:
    objects = build(directory)
    for kind, name in [
        ("Deployment", "isams-sync-ingest"),
        ("Deployment", "isams-sync-consumer"),
        ("Deployment", "isams-sync-poller"),
        ("Service", "isams-sync-ingest"),
        ("ConfigMap", "isams-sync-env"),
        ("ConfigMap", SCHOOLS_CONFIGMAP),
        ("PodDisruptionBudget", "isams-sync-ingest"),
    ]:
        find(objects, kind, name)
    assert {d["metadata"]["name"] for d in kinds(objects, "Deployment")} == set(ROLES)


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_no_secret_is_ever_applied_from_the_repository(directory: Path) -> None:
    """`kubectl apply -k` must never overwrite the real Secrets with placeholders."""
    assert not kinds(build(directory), "Secret")


def test_secrets_in_the_repository_are_placeholders() -> None:
    secrets = [
        (path, document)
        for path in DEPLOY.rglob("*.y*ml")
        for document in load_documents(path)
        if isinstance(document, dict) and document.get("kind") == "Secret"
    ]
    assert secrets, "the Secret template is missing"
    for path, secret in secrets:
        name = secret["metadata"]["name"]
        assert "data" not in secret, f"{path}: {name} carries base64 data"
        for key, value in secret.get("stringData", {}).items():
            assert PLACEHOLDER.fullmatch(str(value)), f"{path}: {name}.{key} is not a <placeholder>"
    looks_real = re.compile(r"whsec_[A-Za-z0-9+/=]{16,}")
    for path in [*DEPLOY.rglob("*"), DOCKERFILE]:
        if path.is_file():
            match = looks_real.search(path.read_text(encoding="utf-8"))
            assert match is None, f"{path}: looks like a real webhook secret"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_containers_run_real_isams_sync_commands(directory: Path) -> None:
    for deployment, container in deployment_containers(build(directory)):
        command, _ = parse_command(container)
        assert command == ROLES[deployment["metadata"]["name"]][0]


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_probes_and_metrics_target_the_port_the_command_listens_on(directory: Path) -> None:
    check_timeout = inspect.signature(build_health_router).parameters["timeout"].default
    for deployment, container in deployment_containers(build(directory)):
        _, params = parse_command(container)
        _, host_option, port_option = ROLES[deployment["metadata"]["name"]]
        host, port = params[host_option], params[port_option]
        assert not ipaddress.ip_address(host).is_loopback, f"{host}: probes cannot reach it"
        assert port in [p["containerPort"] for p in container["ports"]]
        paths = {
            "startupProbe": "/healthz",
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
        }
        for probe_name, path in paths.items():
            probe = container[probe_name]["httpGet"]
            assert probe["path"] == path, f"{container['name']} {probe_name}"
            assert container_port(container, probe["port"]) == port, f"{probe_name} port"
        # /readyz may take the full per-check timeout before it answers 503.
        assert container["readinessProbe"]["timeoutSeconds"] > check_timeout
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_selectors_pick_the_right_pods(directory: Path) -> None:
    objects = build(directory)
    deployments = {d["metadata"]["name"]: d for d in kinds(objects, "Deployment")}
    for name, deployment in deployments.items():
        for other_name, other in deployments.items():
            chosen = selects(deployment["spec"]["selector"], pod_labels(other))
            assert chosen == (name == other_name), f"{name}'s selector vs {other_name}'s pods"

    ingest = deployments["isams-sync-ingest"]
    service = find(objects, "Service", "isams-sync-ingest")
    service_selector = {"matchLabels": service["spec"]["selector"]}
    selected = [n for n, d in deployments.items() if selects(service_selector, pod_labels(d))]
    assert selected == ["isams-sync-ingest"], f"the ingest Service selects {selected}"
    _, params = parse_command(containers(ingest)[0])
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == 80
    assert container_port(containers(ingest)[0], service_port["targetPort"]) == params["port"]

    for budget in kinds(objects, "PodDisruptionBudget"):
        covered = [
            d for d in deployments.values() if selects(budget["spec"]["selector"], pod_labels(d))
        ]
        assert len(covered) == 1, f"PDB {budget['metadata']['name']} covers {len(covered)}"
        replicas = covered[0]["spec"]["replicas"]
        spec = budget["spec"]
        # A budget that allows no eviction blocks every node drain.
        allowed = (
            spec["maxUnavailable"] if "maxUnavailable" in spec else replicas - spec["minAvailable"]
        )
        assert allowed >= 1, f"PDB {budget['metadata']['name']} never allows an eviction"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_every_sync_variable_is_a_setting(directory: Path) -> None:
    known = {f"SYNC_{field.upper()}" for field in Settings.model_fields}
    for _, container in deployment_containers(build(directory)):
        names = set(environment(build(directory), container))
        unknown = {name for name in names if name.startswith("SYNC_")} - known
        assert not unknown, f"{container['name']}: not settings (silently ignored): {unknown}"
    env_configmap = find(build(directory), "ConfigMap", "isams-sync-env")
    assert set(env_configmap["data"]) <= known


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_environment_loads_as_production_settings(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = build(directory)
    for deployment, container in deployment_containers(objects):
        for field in Settings.model_fields:
            monkeypatch.delenv(f"SYNC_{field.upper()}", raising=False)
        for name, value in environment(objects, container).items():
            monkeypatch.setenv(name, value)
        settings = load_settings()  # raises ConfigError naming a bad variable
        # Several replicas share the ledger: SQLite (the default) cannot be it.
        assert settings.database_url.startswith("postgresql+asyncpg://"), (
            f"{container['name']}: SYNC_DATABASE_URL must be PostgreSQL (template placeholder)"
        )
        mount = schools_mount(deployment, container)
        assert mount is not None, f"{container['name']} does not mount the schools file"
        mount_path, configmap_name = mount
        assert settings.schools_file.parent == mount_path
        assert settings.schools_file.name in find(objects, "ConfigMap", configmap_name)["data"]


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_schools_file_variables_are_provided_to_every_container_that_reads_it(
    directory: Path,
) -> None:
    objects = build(directory)
    for deployment, container in deployment_containers(objects):
        mount = schools_mount(deployment, container)
        if mount is None:
            continue
        configmap = find(objects, "ConfigMap", mount[1])
        text = configmap["data"]["schools.yaml"]
        missing = referenced_variables(text) - set(environment(objects, container))
        assert not missing, f"{container['name']}: start-up would fail, {sorted(missing)} unset"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_schools_file_is_valid_and_keeps_secrets_out(directory: Path, tmp_path: Path) -> None:
    text = find(build(directory), "ConfigMap", SCHOOLS_CONFIGMAP)["data"]["schools.yaml"]
    path = tmp_path / "schools.yaml"
    path.write_text(text, encoding="utf-8")
    variables = referenced_variables(text)
    assert variables, "secrets must come from the environment"
    load_schools(path, environ=dict.fromkeys(variables, DUMMY_SECRET))
    reference = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
    for school in yaml.safe_load(text)["schools"]:
        secrets = [
            *school["webhook_secrets"],
            school["isams"]["client_secret"],
            school["managebac"]["token"],
        ]
        inline = [s for s in secrets if not reference.fullmatch(str(s))]
        assert not inline, f"school {school['id']}: a secret is written inline"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_pods_run_unprivileged_on_a_read_only_root(directory: Path) -> None:
    uid, gid = dockerfile_user()
    objects = build(directory)
    for deployment, container in deployment_containers(objects):
        pod = pod_spec(deployment)
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), "Dockerfile USER"
        assert pod["automountServiceAccountToken"] is False
        find(objects, "ServiceAccount", pod["serviceAccountName"])
        own = container["securityContext"]
        assert own["readOnlyRootFilesystem"] is True
        assert own["allowPrivilegeEscalation"] is False
        assert "ALL" in own["capabilities"]["drop"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        scratch = "/tmp"  # noqa: S108  (the mount under test, not a file we write)
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == scratch]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{scratch}: needs an emptyDir"


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_containers_have_requests_and_a_memory_limit(directory: Path) -> None:
    for _, container in deployment_containers(build(directory)):
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        limit, request = resources["limits"]["memory"], resources["requests"]["memory"]
        assert memory_bytes(limit) >= memory_bytes(request)


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_shutdown_has_time_to_drain(directory: Path) -> None:
    objects = build(directory)
    consumer = find(objects, "Deployment", "isams-sync-consumer")
    # The runner lets running changes finish for drain_timeout, then commits, leaves the
    # group and closes its producer: leave it that plus half a minute.
    (drain,) = [f.default for f in dataclasses.fields(RunnerConfig) if f.name == "drain_timeout"]
    assert isinstance(drain, float)
    assert pod_spec(consumer)["terminationGracePeriodSeconds"] >= max(60, drain + 30)
    # More consumers than partitions sit idle (and a topic the service creates has this many).
    partitions = Settings.model_fields["kafka_topic_partitions"].default
    assert consumer["spec"]["replicas"] <= partitions
    poller = find(objects, "Deployment", "isams-sync-poller")
    # The poller exits within 30 s of SIGTERM (its cycles get STOP_GRACE, then closing).
    assert STOP_GRACE < 30 <= pod_spec(poller)["terminationGracePeriodSeconds"] - 10
    ingest = find(objects, "Deployment", "isams-sync-ingest")
    (container,) = containers(ingest)
    sleep, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    assert int(seconds) < pod_spec(ingest)["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_one_poller_runs_at_a_time(directory: Path) -> None:
    """Two pollers would spend each school's iSAMS request budget twice, so there is one,
    and a rollout replaces it (Recreate) instead of running a second beside it."""
    poller = find(build(directory), "Deployment", "isams-sync-poller")
    assert poller["spec"]["replicas"] == 1
    assert poller["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("directory", OVERLAYS, ids=_ids(OVERLAYS))
def test_overlays_deploy_a_pinned_image_from_a_registry(directory: Path) -> None:
    for _, container in deployment_containers(build(directory)):
        name, tag, digest = split_image(container["image"])
        assert "/" in name, f"{container['image']}: set images[].newName to your registry"
        assert digest or (tag and tag != "latest"), f"{container['image']}: pin a version"


def test_environments_sharing_a_cluster_do_not_share_topics_or_groups() -> None:
    settings = []
    for directory in OVERLAYS:
        data = find(build(directory), "ConfigMap", "isams-sync-env")["data"]
        prefix, group = data["SYNC_KAFKA_TOPIC_PREFIX"], data["SYNC_CONSUMER_GROUP"]
        # One prefixed ACL then covers an environment's topics and its group.
        assert group.startswith(prefix), f"{directory.name}: group outside prefix {prefix!r}"
        settings.append((prefix, group, build(directory)[0]["metadata"].get("namespace")))
    for position, label in enumerate(["topic prefix", "consumer group", "namespace"]):
        values = [entry[position] for entry in settings]
        assert len(values) == len(set(values)), f"two overlays share a {label}: {values}"


def test_image_runs_isams_sync_as_the_pod_user() -> None:
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    args = dict(
        rest.split("=", 1)
        for keyword, rest in dockerfile_instructions()
        if keyword == "ARG" and "=" in rest
    )
    base = args.get("PYTHON_IMAGE", "")
    assert base.startswith("python:3.11-slim"), base
    assert ">=3.11" in pyproject()["project"]["requires-python"]
    assert all(line.split()[0] == "${PYTHON_IMAGE}" for line in froms), "one base for all stages"
    assert args.get("VERSION") == pyproject()["project"]["version"], "image version label"
    assert dockerfile_entrypoint() == ["isams-sync"]
    assert "isams-sync" in pyproject()["project"]["scripts"]
    uid, _ = dockerfile_user()
    assert uid != 0


def test_image_build_context_has_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore is an allow-list: it starts with '*'"
    allowed = [p.removeprefix("!") for p in patterns if p.startswith("!")]
    copied: list[str] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            copied.extend(sources)
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert any(source == a or source.startswith(a + "/") for a in allowed), (
            f"COPY {source}: excluded by .dockerignore"
        )
    for pattern in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.removesuffix("*")
        assert package in copied, f"package {package} is not copied into the image"


def test_runtime_lock_matches_the_pins_in_pyproject() -> None:
    locked: dict[str, str] = {}
    for line in RUNTIME_LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{RUNTIME_LOCK}: {line!r} is not pinned with =="
            locked[normalise(name)] = version.strip()
    for requirement in pyproject()["project"]["dependencies"]:
        name, sep, version = requirement.partition("==")
        assert sep, f"pyproject dependency {requirement} is not pinned"
        assert locked.get(normalise(name)) == version, (
            f"{name}: pyproject pins {version}, the image lock has {locked.get(normalise(name))};"
            f" regenerate {RUNTIME_LOCK.relative_to(ROOT)} (the command is in its header)"
        )


@pytest.fixture(scope="session")
def kustomize_binary() -> Path:
    """Return the real kustomize, built from the Go module proxy on first use (cached)."""
    found = subprocess.run(  # noqa: S603  (our own script, fixed argv)
        [str(ROOT / "scripts" / "kustomize.sh"), "path"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if found.returncode != 0:
        pytest.fail(f"scripts/kustomize.sh could not provide kustomize:\n{found.stderr}")
    return Path(found.stdout.strip())


@pytest.mark.parametrize("directory", BUILDS, ids=_ids(BUILDS))
def test_resolver_agrees_with_kustomize(kustomize_binary: Path, directory: Path) -> None:
    """Keep this module's resolver honest against the real kustomize (`kubectl kustomize`)."""
    result = subprocess.run(  # noqa: S603  (fixed argv: kustomize our own folder, no shell)
        [str(kustomize_binary), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    theirs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    # Generated ConfigMaps carry a content hash in their name; drop it everywhere.
    hashed = {
        m["metadata"]["name"]: m["metadata"]["name"].rsplit("-", 1)[0]
        for m in kinds(theirs, "ConfigMap")
    }
    theirs = json.loads(json.dumps(theirs), object_hook=lambda d: _unhash(d, hashed))

    def keyed(objects: list[Manifest]) -> dict[tuple[str, str], Manifest]:
        return {(m["kind"], m["metadata"]["name"]): m for m in objects}

    assert keyed(theirs) == keyed(build(directory))


def _unhash(mapping: dict[str, Any], hashed: dict[str, str]) -> dict[str, Any]:
    return {
        key: hashed.get(value, value) if isinstance(value, str) else value
        for key, value in mapping.items()
    }
