"""The container image, the Kubernetes manifest, Alertmanager's receiver and the example configuration
checked against the code, so none of them drifts silently: variables are ones Settings reads, probe
paths are routes of the served app that answer as probes need, commands parse with the real CLI, the
configurations load with the real loader, and the example names every key of the schema.

No Docker here: the image's command and health check run as processes on this machine instead."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fsspec.registry import known_implementations
from packaging.requirements import Requirement
from pydantic import BaseModel

from eventmgmt import __version__
from eventmgmt import settings as settings_module
from eventmgmt.archive.policy import RetentionConfig, retention_config
from eventmgmt.cli import build_parser
from eventmgmt.collector.config import CollectorConfig
from eventmgmt.config import OTHER_SECTIONS, Config, default_config, load_config
from eventmgmt.route.config import RoutingConfig
from eventmgmt.route.notify import variable_names
from eventmgmt.runtime.app import Runtime, build_runtime, create_app
from eventmgmt.runtime.commands import _serve
from eventmgmt.runtime.guard import Guard
from eventmgmt.runtime.heartbeats import DEFAULT_TIMEOUT
from eventmgmt.settings import Settings
from tests.support.serve import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "container" / "Dockerfile"
MANIFEST = ROOT / "infra" / "kubernetes" / "eventmgmt.yaml"
RECEIVER = ROOT / "infra" / "kubernetes" / "alertmanager-receiver.yaml"
EXAMPLE = ROOT / "docs" / "eventmgmt.example.yaml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
DEPLOY_SECTION = "## 4. In a cluster"

# The variables Settings reads (the names settings.py declares).
SETTINGS_VARIABLES = {
    v
    for k, v in vars(settings_module).items()
    if k.isupper() and isinstance(v, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", v)
}
# Variables of the Python image and pip, not ours.
IMAGE_VARIABLES = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
TOKEN = "test-ingest-token"
POD_IP_HOST = "10.12.0.7:8080"  # NOTE: the kubelet's httpGet probes send the pod IP as Host


# --- reading the artefacts ---------------------------------------------------------------------


def dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return out


DOCKER = dockerfile(DOCKERFILE.read_text())


def instructions(name: str) -> list[str]:
    return [rest for keyword, rest in DOCKER if keyword == name]


def last(name: str) -> str:
    found = instructions(name)
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instructions("ENV"):
        for item in shlex.split(rest):
            key, sep, value = item.partition("=")
            assert sep, f"ENV {item!r}: write ENV KEY=value"
            env[key] = value
    return env


def image_argv() -> list[str]:
    """ENTRYPOINT + CMD, both in exec form (so SIGTERM reaches eventmgmt, not a shell)."""
    return json.loads(last("ENTRYPOINT")) + json.loads(last("CMD"))


def exposed_port() -> int:
    (port,) = instructions("EXPOSE")
    return int(port.split("/")[0])


def healthcheck() -> list[str]:
    _options, sep, command = last("HEALTHCHECK").partition("CMD ")
    assert sep and command.lstrip().startswith("["), "HEALTHCHECK CMD in exec form"
    return json.loads(command)


MANIFESTS = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def one(kind: str) -> dict[str, Any]:
    found = [d for d in MANIFESTS if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects in {MANIFEST.name}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]


def container(name: str) -> dict[str, Any]:
    return next(c for c in pod_spec()["containers"] if c["name"] == name)


def literal_env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def secret_env(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "valueFrom" in e}


def configmap_config() -> tuple[str, str]:
    """(file name, text) of the configuration the ConfigMap holds."""
    ((name, text),) = one("ConfigMap")["data"].items()
    return name, text


def receiver_url() -> str:
    cfg = yaml.safe_load(RECEIVER.read_text())
    (receiver,) = (r for r in cfg["receivers"] if r["name"] == cfg["route"]["receiver"])
    (hook,) = receiver["webhook_configs"]
    return str(hook["url"])


def deploy_section() -> str:
    text = DEPLOY_DOC.read_text()
    assert DEPLOY_SECTION in text, f"docs/deploy.md has no section {DEPLOY_SECTION!r}"
    return text.split(DEPLOY_SECTION, 1)[1].split("\n## ", 1)[0]


def parse_cli(argv: list[str]) -> Any:
    """The real parser; argparse exits (a test failure) on an unknown command or flag."""
    assert argv[0] == "eventmgmt", argv
    scripts = tomllib.loads((ROOT / "shared" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[argv[0]] == "eventmgmt.cli:main"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"`{shlex.join(argv)}` is not a valid eventmgmt command") from exc


def settings_reads(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether setting the variable changes what Settings reads."""
    for var in SETTINGS_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    before = Settings()
    monkeypatch.setenv(name, value)
    after = Settings()
    return after != before or name in after.sink_variables()


def alertmanager_webhook(name: str = "TritonModelLoadFail") -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    labels = {"alertname": name, "severity": "critical", "namespace": "serving", "pod": "triton-0", "model": "m"}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "model m failed to load"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "0123456789abcdef",
    }
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "eventmgmt",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [alert],
    }


# --- the image ---------------------------------------------------------------------------------


def test_image_is_a_current_python_and_runs_as_a_non_root_user():
    (base,) = instructions("FROM")
    assert base == "python:3.12-slim"
    user = last("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), f"USER {user} must be a numeric non-root id"
    # NOTE: the account the id belongs to, so tools that look the user up find it
    created = " ".join(rest for rest in instructions("RUN") if "useradd" in rest)
    assert f"--uid {uid}" in created


def test_image_installs_only_the_runtime_requirements_and_they_cover_every_import():
    """The image installs requirements.txt above its development marker: every third-party module the
    library imports must come from those packages or their dependencies."""
    run = " ".join(instructions("RUN"))
    marker = re.search(r"sed '/\^(# [^/]+)/,\$d' requirements.txt", run)
    assert marker, "the RUN that cuts the runtime requirements out of requirements.txt"
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert marker.group(1) in lines, f"requirements.txt has no line {marker.group(1)!r}"
    runtime = lines[: lines.index(marker.group(1))]
    # NOTE: single pins taken from below the marker (`grep '^name==' requirements.txt >> ...`)
    for name in re.findall(r"grep '\^([\w.-]+)==' requirements.txt >> requirements-runtime.txt", run):
        (pin,) = (x for x in lines if x.startswith(f"{name}=="))
        runtime.append(pin)
    wanted = {re.split(r"[\[=<>~ ]", x.strip())[0].lower() for x in runtime if x.strip() and not x.startswith("#")}

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    installed, todo = set(), [canonical(w) for w in wanted]
    while todo:
        name = todo.pop()
        if name in installed:
            continue
        installed.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            # NOTE: what this Python on Linux installs, without extras
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    providers = metadata.packages_distributions()
    missing = {}
    for path in (ROOT / "shared" / "eventmgmt").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"eventmgmt"}:
                if not {canonical(d) for d in providers.get(top, [top])} & installed:
                    missing[top] = str(path.relative_to(ROOT))
    assert not missing, f"imported but not installed in the image: {missing}"
    # NOTE: what the library reaches by name, never by import: the driver store/db.py names in the
    # URL (postgresql+psycopg), and the filesystem fsspec loads for a gs:// archive or collector
    # state (EVENTMGMT_ARCHIVE_URL)
    assert "psycopg" in wanted
    gs = known_implementations["gs"]["class"].split(".")[0]
    assert {canonical(d) for d in providers[gs]} & installed, f"{gs} (for gs://) is not in the image"


def test_image_copies_what_exists_and_its_variables_are_read_by_settings(monkeypatch: pytest.MonkeyPatch):
    for rest in instructions("COPY"):
        *sources, _dest = shlex.split(rest)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository (the context is its root)"
    env = docker_env()
    ours = {k for k in env if k not in IMAGE_VARIABLES}
    assert ours <= SETTINGS_VARIABLES, f"not read by Settings: {ours - SETTINGS_VARIABLES}"
    for name in ours:
        assert settings_reads(name, env[name], monkeypatch), f"{name}={env[name]} changes nothing Settings reads"
    home = env[settings_module.HOME]
    assert json.loads(last("VOLUME")) == [home], "the state directory is the volume"
    assert f"--home-dir {home}" in " ".join(instructions("RUN"))


def test_image_command_is_serve_on_all_interfaces_on_the_exposed_port():
    args = parse_cli(image_argv())
    assert args.func is _serve
    assert args.host == "0.0.0.0" and args.port == exposed_port()
    assert last("STOPSIGNAL") == "SIGTERM"


# --- probes and routes against the app that `serve` builds --------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    env = literal_env(container("eventmgmt"))
    hosts = tuple(h for h in env[settings_module.ALLOWED_HOSTS].split(",") if h)
    # NOTE: reads need a token here, as they may in production: probes must pass without one.
    rt = build_runtime(
        Settings(home=tmp_path, ingest_token=TOKEN, read_token="reader", allowed_hosts=hosts, max_backlog=1)
    )
    yield rt
    rt.stop()


def probes() -> dict[str, dict[str, Any]]:
    c = container("eventmgmt")
    return {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in c}


def test_probe_paths_are_routes_that_answer_the_kubelet(runtime: Runtime):
    app = create_app(runtime, "0.0.0.0")
    rules = {r.rule for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}
    docker_path = urlsplit(re.search(r"http://[^'\"]+", healthcheck()[-1]).group(0)).path  # type: ignore[union-attr]
    paths = {name: p["httpGet"]["path"] for name, p in probes().items()}
    assert {"livenessProbe", "readinessProbe"} <= set(paths)
    client = app.test_client()
    for name, path in [*paths.items(), ("HEALTHCHECK", docker_path)]:
        assert path in rules, f"{name}: {path} is not a route of the served app"
        r = client.get(path, headers={"Host": POD_IP_HOST})
        assert r.status_code == 200, f"{name}: {path} answered {r.status_code} to a probe without a token"


def test_liveness_holds_and_readiness_fails_when_the_backlog_is_at_its_bound(runtime: Runtime):
    """A busy pod is taken out of the Service (readiness), not restarted (liveness)."""
    client = create_app(runtime, "0.0.0.0").test_client()
    runtime.drainer.close()  # correlation stopped: what is accepted waits
    r = client.post("/ingest/alertmanager", json=alertmanager_webhook(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 202
    answers = {name: client.get(p["httpGet"]["path"], headers={"Host": POD_IP_HOST}) for name, p in probes().items()}
    assert answers["readinessProbe"].status_code == 503
    assert answers["livenessProbe"].status_code == 200
    assert answers.get("startupProbe", answers["livenessProbe"]).status_code == 200


def test_alertmanager_receiver_posts_to_the_service_and_the_ingest_route(runtime: Runtime):
    url = urlsplit(receiver_url())
    service = one("Service")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert url.scheme == "http" and url.hostname and url.hostname.split(".")[:3] == [name, namespace, "svc"]
    (port,) = service["spec"]["ports"]
    assert url.port == port["port"]
    # NOTE: the token Alertmanager presents is the Secret key the server reads its token from
    cfg = yaml.safe_load(RECEIVER.read_text())
    auth = cfg["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]
    ref = secret_env(container("eventmgmt"))[settings_module.INGEST_TOKEN]
    assert Path(auth["credentials_file"]).name == ref["key"] and not ref.get("optional")
    client = create_app(runtime, "0.0.0.0").test_client()
    r = client.post(
        url.path,
        json=alertmanager_webhook(),
        headers={"Host": url.netloc, "Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 202 and r.json["accepted"] == 1, r.json
    # NOTE: the dashboard and API answer on the Service's names too (DNS rebinding guard)
    assert Guard(runtime.settings).host_allowed(url.netloc)


def test_alertmanager_accepts_the_receiver_configuration(tmp_path: Path):
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (make debs installs prometheus-alertmanager)")
    r = subprocess.run([amtool, "check-config", str(RECEIVER)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- the manifest ------------------------------------------------------------------------------


def test_manifest_has_the_expected_objects_in_one_namespace():
    kinds = sorted(d["kind"] for d in MANIFESTS)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "PersistentVolumeClaim",
            "Deployment",
            "Service",
        ]
    )
    namespaces = {d["metadata"]["namespace"] for d in MANIFESTS if not d["kind"].startswith("Cluster")}
    (namespace,) = namespaces
    (subject,) = one("ClusterRoleBinding")["subjects"]
    assert subject == {
        "kind": "ServiceAccount",
        "name": one("ServiceAccount")["metadata"]["name"],
        "namespace": namespace,
    }
    assert pod_spec()["serviceAccountName"] == subject["name"]
    labels = one("Deployment")["spec"]["selector"]["matchLabels"]
    assert one("Service")["spec"]["selector"] == labels
    assert labels.items() <= one("Deployment")["spec"]["template"]["metadata"]["labels"].items()


def unknown_fields(data: Any, type_name: str, path: str) -> list[str]:
    """Keys the Kubernetes API's models (the `kubernetes` client's, v1 objects) do not have."""
    from kubernetes.client import models

    out: list[str] = []
    if type_name.startswith("list["):
        for i, item in enumerate(data or []):
            out += unknown_fields(item, type_name[5:-1], f"{path}[{i}]")
    elif type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, value in (data or {}).items():
            out += unknown_fields(value, inner, f"{path}.{key}")
    elif hasattr(models, type_name):
        model = getattr(models, type_name)
        if not isinstance(data, dict):
            return [f"{path}: not a mapping"]
        attribute = {json_key: attr for attr, json_key in model.attribute_map.items()}
        for key, value in data.items():
            if key not in attribute:
                out.append(f"{path}.{key}")
            else:
                out += unknown_fields(value, model.openapi_types[attribute[key]], f"{path}.{key}")
    return out


def test_manifest_objects_match_the_kubernetes_api():
    """Every key is a field of its object's schema (a misspelt `readOnlyRootFileSystem` would be
    dropped by a lenient apply), and required fields are there (the client's models refuse None)."""
    from kubernetes.client import ApiClient

    client = ApiClient()
    for doc in MANIFESTS:
        assert doc["apiVersion"] in ("v1", "apps/v1", "rbac.authorization.k8s.io/v1"), doc["apiVersion"]
        type_name = f"V1{doc['kind']}"
        assert not unknown_fields(doc, type_name, doc["kind"])
        assert client.deserialize(json.dumps(doc), type_name, "application/json") is not None
    client.close()


def test_one_replica_replaced_not_rolled_on_a_volume_of_its_own():
    spec = one("Deployment")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    assert one("PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    # NOTE: SIGTERM drains queued pages for EVENTMGMT_DRAIN_SECONDS after requests in flight (5 s)
    drain = float(literal_env(container("eventmgmt")).get(settings_module.DRAIN_SECONDS, Settings().drain_seconds))
    assert pod_spec()["terminationGracePeriodSeconds"] > drain + 5


def test_container_commands_are_real_cli_commands():
    main = container("eventmgmt")
    argv = main.get("command") or json.loads(last("ENTRYPOINT"))
    args = parse_cli([*argv, *main["args"]])
    assert args.func is _serve and args.host == "0.0.0.0"
    (port,) = main["ports"]
    assert args.port == port["containerPort"] == exposed_port()
    assert one("Service")["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])
    for p in probes().values():
        assert p["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert main["image"] == f"eventmgmt:{__version__}"
    # NOTE: `serve` runs retention itself (EVENTMGMT_RETENTION_EVERY); nothing may switch it off here
    # unless another container or job runs `eventmgmt retention run` instead.
    assert [c["name"] for c in pod_spec()["containers"]] == ["eventmgmt"]
    assert float(literal_env(main).get(settings_module.RETENTION_EVERY, "3600")) > 0


def test_manifest_variables_are_read_by_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    _name, text = configmap_config()
    routing = load_config_text(text, tmp_path).section("routing")
    named = set(variable_names(RoutingConfig.model_validate(routing))) if routing else set()
    for c in pod_spec()["containers"]:
        for name, value in {**literal_env(c), **{k: "x" for k in secret_env(c)}}.items():
            assert name in SETTINGS_VARIABLES | named, f"{c['name']}: {name} is read by nothing"
            if name in SETTINGS_VARIABLES:
                assert settings_reads(name, value, monkeypatch), f"{c['name']}: {name}={value} changes nothing"
        for name, ref in secret_env(c).items():
            assert ref["name"] == "eventmgmt", name
    main = literal_env(container("eventmgmt"))
    assert main[settings_module.HOME] == docker_env()[settings_module.HOME]


def test_every_variable_named_anywhere_exists():
    """Names in comments and docs too: every EVENTMGMT_* the artefacts mention is one the code reads."""
    real = set()
    for path in (ROOT / "shared" / "eventmgmt").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                real.add(node.value)
    for path, text in [
        (DOCKERFILE, DOCKERFILE.read_text()),
        (MANIFEST, MANIFEST.read_text()),
        (RECEIVER, RECEIVER.read_text()),
        (EXAMPLE, EXAMPLE.read_text()),
        (DEPLOY_DOC, deploy_section()),
    ]:
        unknown = set(re.findall(r"\bEVENTMGMT_[A-Z0-9_]*[A-Z0-9]", text)) - real
        assert not unknown, f"{path.relative_to(ROOT)} names variables nothing reads: {sorted(unknown)}"


def test_state_config_and_tmp_are_writable_volumes_and_the_root_is_read_only():
    spec = pod_spec()
    sec = spec["securityContext"]
    uid = int(last("USER").split(":")[0])
    assert sec["runAsNonRoot"] is True and sec["runAsUser"] == uid != 0 and sec["fsGroup"] != 0
    volumes = {v["name"]: v for v in spec["volumes"]}
    for c in spec["containers"]:
        csec = c["securityContext"]
        assert csec["readOnlyRootFilesystem"] is True and csec["allowPrivilegeEscalation"] is False, c["name"]
        assert csec["capabilities"]["drop"] == ["ALL"]
        requests = c["resources"]["requests"]
        assert requests.get("cpu") and requests.get("memory"), f"{c['name']}: resource requests"
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        env = literal_env(c)
        home = mounts[env[settings_module.HOME]]
        assert "persistentVolumeClaim" in volumes[home["name"]] and not home.get("readOnly")
        assert (
            volumes[home["name"]]["persistentVolumeClaim"]["claimName"]
            == one("PersistentVolumeClaim")["metadata"]["name"]
        )
        # NOTE: waitress spools large request bodies to temporary files
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]] and not mounts["/tmp"].get("readOnly")
        config = Path(env[settings_module.CONFIG])
        mount = mounts[str(config.parent)]
        assert volumes[mount["name"]]["configMap"]["name"] == one("ConfigMap")["metadata"]["name"]
        assert config.name == configmap_config()[0]


def load_config_text(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "eventmgmt.yaml"
    path.write_text(text)
    return load_config(path)


def test_configmap_configuration_loads_and_keeps_the_default_receivers(tmp_path: Path):
    _name, text = configmap_config()
    config = load_config_text(text, tmp_path)
    # NOTE: a routing section would replace the receivers the Secret's variables give
    assert config.section("routing") is None
    assert yaml.safe_load(text).keys() <= {*Config.model_fields, *OTHER_SECTIONS}


# --- the container, run as a process -------------------------------------------------------------


@dataclass
class Pod:
    """`eventmgmt serve` as the image runs it, with the pod's variables."""

    port: int
    proc: subprocess.Popen
    health_check: list[str]  # the image's HEALTHCHECK command, on this port

    def healthy(self) -> bool:
        return subprocess.run(self.health_check, capture_output=True, timeout=10).returncode == 0


@contextmanager
def pod(tmp_path: Path, **variables: str) -> Iterator[Pod]:
    """The image's arguments (on a free port) and the pod's variables, the paths moved under
    tmp_path, the ConfigMap's file as configuration; yields once the health check passes."""
    port = free_port()
    argv = image_argv()
    argv[argv.index("--port") + 1] = str(port)
    name, text = configmap_config()
    (tmp_path / name).write_text(text)
    env = {**os.environ, **docker_env(), **literal_env(container("eventmgmt"))}
    for var in (settings_module.DATABASE_URL, settings_module.PROMETHEUS_URL, *settings_module.SINK_VARIABLES):
        env.pop(var, None)
    env.update(
        {
            settings_module.HOME: str(tmp_path / "home"),
            settings_module.CONFIG: str(tmp_path / name),
            settings_module.INGEST_TOKEN: TOKEN,
            **variables,
        }
    )
    command = healthcheck()
    assert command[0] == "python"
    exposed = f"127.0.0.1:{exposed_port()}"
    assert exposed in command[-1], "the health check asks the exposed port on loopback"
    check = [sys.executable, *command[1:-1], command[-1].replace(exposed, f"127.0.0.1:{port}")]
    exe = Path(sys.executable).parent / argv[0]
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen([str(exe), *argv[1:]], env=env, stdout=log, stderr=subprocess.STDOUT)
        running = Pod(port, proc, check)
        try:
            deadline = time.monotonic() + 60
            while not running.healthy():
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the health check never passed"
                time.sleep(0.2)
            yield running
        finally:
            stop(proc)


def post_alert(running: Pod) -> httpx.Response:
    """Alertmanager's webhook, on the receiver's path and with its Host."""
    url = urlsplit(receiver_url())
    return httpx.post(
        f"http://127.0.0.1:{running.port}{url.path}",
        json=alertmanager_webhook(),
        headers={"Host": url.netloc, "Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


def test_image_command_serves_and_its_health_check_passes(tmp_path: Path):
    """The health check command succeeds against the server the image's command starts, and fails
    once it is gone; Alertmanager's webhook is accepted; SIGTERM stops it cleanly."""
    with pod(tmp_path) as running:
        r = post_alert(running)
        assert r.status_code == 202, r.text
        ready = httpx.get(f"http://127.0.0.1:{running.port}/readyz", headers={"Host": POD_IP_HOST})
        assert ready.status_code == 200 and ready.json()["ready"] is True
    assert running.proc.returncode == 0, "SIGTERM stops it cleanly"
    assert not running.healthy()


def documented_tables() -> set[str]:
    table = deploy_section().split("What it stores there", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE))


def test_serve_on_postgresql_stores_what_the_docs_say(tmp_path: Path):
    """EVENTMGMT_DATABASE_URL in the documented `postgresql://` form: the state is in PostgreSQL, in
    the tables docs/deploy.md lists, and only the queue (not state.db nor route.db) is on the volume."""
    from sqlalchemy import func, inspect, select, text

    from eventmgmt.store import make_engine
    from eventmgmt.store.tables import EventRow
    from tests.support.pg import pg_schema

    with pg_schema() as url:
        plain = "postgresql://" + url.split("://", 1)[1]
        with pod(tmp_path, **{settings_module.DATABASE_URL: plain}) as running:
            r = post_alert(running)
            assert r.status_code == 202, r.text
            q = httpx.get(f"http://127.0.0.1:{running.port}/api/queue?wait=30", timeout=40).json()
            assert q["backlog_events"] == 0
        engine = make_engine(plain)
        try:
            assert set(inspect(engine).get_table_names()) == documented_tables()
            with engine.connect() as c:
                assert c.execute(select(func.count()).select_from(EventRow)).scalar_one() == 1
                assert c.execute(text("SELECT current_schema()")).scalar_one() in url
        finally:
            engine.dispose()
    home = {p.name for p in (tmp_path / "home").iterdir()}
    assert "queue.db" in home and not {"state.db", "route.db"} & home, home


# --- the example configuration -------------------------------------------------------------------


EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
# Sections validated by other stages, with their models (heartbeats has none: a list or a mapping).
SECTION_MODELS: dict[str, type[BaseModel]] = {
    "routing": RoutingConfig,
    "collector": CollectorConfig,
    "retention": RetentionConfig,
}
HEARTBEAT_KEYS = {"names", "timeout_minutes"}  # NOTE: runtime/heartbeats.timeout_of, classify._heartbeat


def key_of(model: type[BaseModel], field: str) -> str:
    return model.model_fields[field].alias or field


def nested(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The models a field holds: ("one" | "list" | "dict", model)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("one", annotation)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return nested(args[0])
    if origin in (list, tuple):
        return [("list", m) for _, m in nested(args[0])]
    if origin is dict:
        return [("dict", m) for _, m in nested(args[1])]
    if origin in (typing.Union, types.UnionType):
        return [x for a in args for x in nested(a)]
    return []


def walk(model: type[BaseModel], data: Any, seen: dict[type[BaseModel], set[str]]) -> None:
    """Records which keys of each model the data gives, everywhere it occurs."""
    if not isinstance(data, dict):
        return
    seen.setdefault(model, set()).update(str(k) for k in data)
    for field, info in model.model_fields.items():
        value = data.get(key_of(model, field))
        for how, inner in nested(info.annotation):
            items = [value] if how == "one" else (value if how == "list" else (value or {}).values())
            for item in items or []:
                walk(inner, item, seen)


def reachable(model: type[BaseModel], out: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if model not in out:
        out.add(model)
        for info in model.model_fields.values():
            for _, inner in nested(info.annotation):
                reachable(inner, out)
    return out


def test_example_loads_with_the_real_loader_and_has_every_section():
    config = load_config(EXAMPLE)
    sections = {key_of(Config, f) for f in Config.model_fields} | set(OTHER_SECTIONS)
    assert set(EXAMPLE_DATA) == sections, f"missing: {sections - set(EXAMPLE_DATA)}"
    retention_config(config.section("retention"))
    for name in ("routing", "collector"):
        SECTION_MODELS[name].model_validate(config.section(name))
    assert set(EXAMPLE_DATA["heartbeats"]) == HEARTBEAT_KEYS


def test_example_names_every_key_of_the_schema():
    seen: dict[type[BaseModel], set[str]] = {}
    walk(Config, {k: v for k, v in EXAMPLE_DATA.items() if k not in SECTION_MODELS}, seen)
    models = reachable(Config, set())
    for name, model in SECTION_MODELS.items():
        walk(model, EXAMPLE_DATA[name], seen)
        reachable(model, models)
    missing = sorted(
        f"{m.__name__}.{key_of(m, f)}" for m in models for f in m.model_fields if key_of(m, f) not in seen.get(m, set())
    )
    assert not missing, f"docs/eventmgmt.example.yaml does not show: {missing}"


def key_paths(node: Any, prefix: str = "") -> set[str]:
    """Dotted key paths; lists as `[]`, mappings keyed by the user's own names (response rows,
    retention types, label and resource names) as `*`."""
    out: set[str] = set()
    if isinstance(node, dict):
        free = prefix in ("response", "retention.types") or prefix.endswith((".labels", ".resources"))
        for k, v in node.items():
            path = f"{prefix}.{'*' if free else k}" if prefix else str(k)
            out |= {path} | key_paths(v, path)
    elif isinstance(node, list):
        for item in node:
            out |= key_paths(item, prefix + "[]")
    return out


def test_example_covers_every_key_of_the_defaults():
    defaults = yaml.safe_load((ROOT / "shared" / "eventmgmt" / "defaults.yaml").read_text())
    missing = key_paths(defaults) - key_paths(EXAMPLE_DATA)
    assert not missing, f"keys of defaults.yaml without an example: {sorted(missing)}"


def test_example_shows_the_real_defaults():
    config, defaults = load_config(EXAMPLE), default_config()
    assert config.correlation == defaults.correlation
    assert config.maintenance_limits == defaults.maintenance_limits
    assert retention_config(config.section("retention")).types == RetentionConfig().types
    routing, default_routing = RoutingConfig.model_validate(config.section("routing")), RoutingConfig()
    for field in ("max_attempts", "max_backoff_seconds", "outbox_max_backoff_seconds", "group_wait_seconds"):
        assert getattr(routing, field) == getattr(default_routing, field), field
    collector = CollectorConfig.model_validate(config.section("collector"))
    assert (collector.kubernetes, collector.namespaces) == (CollectorConfig().kubernetes, CollectorConfig().namespaces)
    assert EXAMPLE_DATA["heartbeats"]["timeout_minutes"] * 60 == DEFAULT_TIMEOUT.total_seconds()


def test_every_key_of_the_example_is_explained_with_its_default():
    """Each key has a comment on its line or just above it that says its default or that it is required."""
    lines = EXAMPLE.read_text().splitlines()

    def comment(line: int) -> str:
        found = [lines[line].split(" # ", 1)[1]] if " # " in lines[line] else []
        j = line - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            found.append(lines[j])
            j -= 1
        return " ".join(found)

    bad = []

    def visit(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                text = comment(key.start_mark.line)
                if not re.search(r"default|required", text, re.IGNORECASE):
                    bad.append(f"line {key.start_mark.line + 1}: {key.value}")
                visit(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                visit(item)

    visit(yaml.compose(EXAMPLE.read_text()))
    assert not bad, f"keys without a comment saying their default (or 'required'): {bad}"
