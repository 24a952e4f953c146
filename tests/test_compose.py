"""Checks of the production Compose files and image (no Docker engine needed).

Each check returns the problems it finds, so the same code is run on the real files (no
problems allowed) and on copies with a fault put in (the fault must be found). The files are
also rendered by a real Compose implementation (``podman-compose config``, with Debian's
podman, installed here when missing) with a generated .env of dummy secrets, and the rendered
documents go through the same checks.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose"
FILES = ["node.yml", "federation.yml"]
ROLES = ("api", "worker", "gateway")

DATA_IMAGE = re.compile(r"(^|/)(postgres|timescaledb[\w-]*|redis|valkey|nats)$")
KUBO_IMAGE = re.compile(r"(^|/)(kubo|go-ipfs)$")
KUBO_PRIVATE_PORTS = {5001}  # the RPC API: full control of the node
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE_KEY|_AUTH$", re.IGNORECASE)
# ${VAR} or ${VAR:?message} / ${VAR?message}: no literal default for a secret.
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}")
URL_PASSWORD = re.compile(r"://[^:/@\s\"']*:([^@\s\"']+)@")
FLAG_SECRET = re.compile(r"--(?:requirepass|password|pass)[= ]?(\S*)")
CONF_PASSWORD = re.compile(r"\bpass(?:word)?\s*[:=]\s*\"?([^\"\s},]+)")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE / name).read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), name
    return doc


def _image_name(service: dict[str, Any]) -> str:
    """The image's repository without tag or digest: ``nats:2.10-alpine`` -> ``nats``."""
    image = re.sub(r"\$\{[^}]*\}", "", str(service.get("image") or "")).split("@")[0]
    head, _, last = image.rpartition("/")
    return (head + "/" if head else "") + last.split(":")[0]


def _names(value: Any) -> list[str]:
    """Names from a list-or-dict field (depends_on, networks)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value)
    return [str(v) for v in value]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _is_reference(value: str) -> bool:
    return REFERENCE.fullmatch(value) is not None


def depends_on_problems(doc: dict[str, Any]) -> list[str]:
    services = doc["services"]
    problems = []
    for name, service in services.items():
        deps = service.get("depends_on")
        for dep in _names(deps):
            if dep not in services:
                problems.append(f"{name}: depends_on names unknown service {dep!r}")
                continue
            condition = deps[dep].get("condition") if isinstance(deps, dict) else None
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get("restart") != "no":
                problems.append(f"{name}: waits for one-shot {dep}, which must have restart: 'no'")
    return problems


def _named_volume(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return str(entry["source"]) if entry.get("type", "volume") == "volume" and entry.get("source") else None
    source = str(entry).split(":", 1)[0]
    if ":" not in str(entry) or source.startswith(("/", ".", "~", "$")):
        return None  # anonymous volume or bind mount
    return source


def reference_problems(doc: dict[str, Any]) -> list[str]:
    """Named volumes, networks and configs used by services must be declared at the top."""
    declared = {kind: set(doc.get(kind) or {}) for kind in ("volumes", "networks", "configs")}
    problems = []
    for name, service in doc["services"].items():
        for entry in service.get("volumes") or []:
            volume = _named_volume(entry)
            if volume is not None and volume not in declared["volumes"]:
                problems.append(f"{name}: volume {volume!r} is not declared under volumes")
        for network in _names(service.get("networks")):
            if network not in declared["networks"] and network != "default":
                problems.append(f"{name}: network {network!r} is not declared under networks")
        for config in service.get("configs") or []:
            source = config["source"] if isinstance(config, dict) else str(config)
            if source not in declared["configs"]:
                problems.append(f"{name}: config {source!r} is not declared under configs")
    return problems


def _published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            spec = str(entry["target"])
        else:
            spec = str(entry).split("/")[0].rsplit(":", 1)[-1]  # [ip:][host:]container[/proto]
        low, _, high = spec.partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def exposure_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        image = _image_name(service)
        published = _published_container_ports(service)
        if DATA_IMAGE.search(image) and published:
            problems.append(f"{name} ({image}): publishes {sorted(published)} on the host")
        if KUBO_IMAGE.search(image) and published & KUBO_PRIVATE_PORTS:
            problems.append(f"{name} ({image}): publishes the Kubo RPC API on the host")
    return problems


def _literal_secrets(text: str) -> list[str]:
    """Passwords in URLs, --requirepass flags and config files that are not ${VAR} references."""
    text = REFERENCE.sub("__REF__", text)  # ${VAR:-literal default} is left as it is: a literal
    found = []
    for pattern in (URL_PASSWORD, FLAG_SECRET, CONF_PASSWORD):
        found += [m.group(1) for m in pattern.finditer(text) if m.group(1) != "__REF__"]
    return found


def secret_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key) and not _is_reference(value):
                problems.append(f"{name}: environment {key} is a literal, not a ${{VAR}} reference")
        texts = list(_strings({k: v for k, v in service.items() if k not in {"command", "entrypoint"}}))
        for key in ("command", "entrypoint"):
            texts.append(" ".join(_strings(service.get(key))))
        for text in texts:
            if _literal_secrets(text):
                problems.append(f"{name}: a literal password in {text[:60]!r}")
    for config_name, config in (doc.get("configs") or {}).items():
        if _literal_secrets(str(config.get("content", ""))):
            problems.append(f"config {config_name}: a literal password in its content")
    return problems


def _words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(c) for c in command]


def _role(service: dict[str, Any]) -> str | None:
    words = _words(service)
    if words[:2] == ["oneheart", "serve"]:
        return "api"
    if words[:2] == ["oneheart", "worker"]:
        return "worker"
    if words[:2] == ["oneheart", "gateway"]:
        return "gateway"
    return None


def _by_role(doc: dict[str, Any], *roles: str) -> list[str]:
    return [name for name, s in doc["services"].items() if _role(s) in roles]


def _oneheart_services(doc: dict[str, Any]) -> list[str]:
    """api, worker, gateway and the one-shot jobs: every service running the node's image."""
    apis = _by_role(doc, "api")
    image = doc["services"][apis[0]].get("image") if apis else None
    return [n for n, s in doc["services"].items() if image is not None and s.get("image") == image]


def image_problems(doc: dict[str, Any]) -> list[str]:
    """api, worker and gateway run the same image, built from compose/Dockerfile, with secrets
    from .env."""
    services = doc["services"]
    found = {role: _by_role(doc, role) for role in ROLES}
    if not all(found.values()):
        return [f"needs an api, a worker and a gateway service (found {found})"]
    problems = []
    apis = found["api"]
    first = services[apis[0]]
    for name in _by_role(doc, *ROLES):
        service = services[name]
        if service.get("build") != first.get("build") or service.get("image") != first.get("image"):
            problems.append(f"{name}: build/image differ from {apis[0]}'s")
        build = service.get("build") or {}
        context = COMPOSE / str(build.get("context", "."))
        if not (context / str(build.get("dockerfile", "Dockerfile"))).is_file():
            problems.append(f"{name}: Dockerfile not found from context {context}")
        if not (context / "pyproject.toml").is_file():
            problems.append(f"{name}: build context {context} is not the repository root")
        env_files = service.get("env_file")
        if ".env" not in ([env_files] if isinstance(env_files, str) else list(env_files or [])):
            problems.append(f"{name}: secrets must come from env_file .env")
    for name in apis + found["gateway"]:
        command = [str(c) for c in services[name]["command"]]
        if "--host" not in command or command[command.index("--host") + 1] != "0.0.0.0":
            problems.append(f"{name}: `{' '.join(command[:2])}` must bind 0.0.0.0 inside the container")
    return problems


def _networks(service: dict[str, Any]) -> set[str]:
    return set(_names(service.get("networks"))) or {"default"}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volumes of a service -> where they are mounted."""
    out = {}
    for entry in service.get("volumes") or []:
        volume = _named_volume(entry)
        if volume is not None:
            out[volume] = str(entry["target"]) if isinstance(entry, dict) else str(entry).split(":")[1]
    return out


def data_volume_problems(doc: dict[str, Any]) -> list[str]:
    """Every OneHeart service mounts a named volume at its OH_DATA_DIR (the signing keys and
    stored secrets every replica must share), and the services of one node (one OH_PUBLIC_URL:
    one issuer) all mount the same one, with an api, a worker, a gateway and a one-shot job."""
    services = doc["services"]
    problems = []
    nodes: dict[str, set[str]] = {}  # data volume -> issuers of the services mounting it
    members: dict[str, list[str]] = {}
    for name in _oneheart_services(doc):
        service = services[name]
        env = _environment(service)
        data_dir = env.get("OH_DATA_DIR")
        if not data_dir:
            problems.append(f"{name}: OH_DATA_DIR is not set (it defaults to .data in the working directory)")
            continue
        volumes = [v for v, target in _mounts(service).items() if target.rstrip("/") == data_dir.rstrip("/")]
        if not volumes:
            problems.append(f"{name}: no named volume mounted at OH_DATA_DIR {data_dir}")
            continue
        nodes.setdefault(volumes[0], set()).add(env.get("OH_PUBLIC_URL", ""))
        members.setdefault(volumes[0], []).append(name)
    for volume, issuers in nodes.items():
        if len(issuers) > 1:
            problems.append(f"volume {volume}: mounted by services of different nodes (issuers {sorted(issuers)})")
        roles = {
            _role(services[n]) or ("one-shot" if services[n].get("restart") == "no" else None) for n in members[volume]
        }
        missing = ", ".join(sorted({"api", "worker", "gateway", "one-shot"} - roles))
        if missing:
            problems.append(f"volume {volume}: no {missing} of its node mounts it ({members[volume]})")
    issuers_of = [i for issuers in nodes.values() for i in issuers]
    if len(issuers_of) != len(set(issuers_of)):
        problems.append("one node (OH_PUBLIC_URL) uses more than one data volume: its replicas would not share keys")
    return problems


def _dsn_parts(dsn: str) -> tuple[str | None, str]:
    """(password, host) of postgresql://user[:password]@host[:port]/db; the password may be a
    ${VAR} reference (spaces and all)."""
    head, _, tail = dsn.partition("://")[2].rpartition("@")
    password = head.partition(":")[2] if ":" in head else None
    return password, tail.split("/")[0].rsplit(":", 1)[0]


SERVER_ADD = re.compile(r"oneheart server add (\S+) \"?(postgresql://[^\s\"]+)")


def _servers(doc: dict[str, Any]) -> dict[str, str]:
    """Database servers the one-shot jobs register: alias -> host (a service)."""
    out = {}
    for service in doc["services"].values():
        for alias, dsn in SERVER_ADD.findall(" ".join(_words(service))):
            out[alias] = _dsn_parts(dsn)[1]
    return out


def database_problems(doc: dict[str, Any]) -> list[str]:
    """Each api, worker and gateway reaches the registry and every database server the node
    routes to (any territory's), sharing a network with it, and holds that server's password
    (OH_DB_PASSWORD_<ALIAS>, the same value its Postgres service gets)."""
    services = doc["services"]
    servers = _servers(doc)
    if not servers:
        return ["no one-shot job registers a database server (`oneheart server add ALIAS DSN`)"]
    problems = []
    for alias, host in servers.items():
        if host not in services:
            problems.append(f"server {alias}: host {host!r} is not a service")
    for name in _by_role(doc, *ROLES):
        service = services[name]
        env = _environment(service)
        password, registry = _dsn_parts(env.get("OH_REGISTRY_DSN", ""))
        wanted = {registry: password}
        wanted |= {host: env.get(f"OH_DB_PASSWORD_{alias.upper()}") for alias, host in servers.items()}
        for host, value in wanted.items():
            target = services.get(host)
            if target is None:
                problems.append(f"{name}: database host {host!r} is not a service")
                continue
            if not _networks(service) & _networks(target):
                problems.append(f"{name}: cannot reach database server {host} (no common network)")
            expected = _environment(target).get("POSTGRES_PASSWORD")
            if not value or value != expected:
                what = "OH_REGISTRY_DSN" if host == registry and value is password else f"server {host}"
                problems.append(f"{name}: the password for {what} is not {host}'s POSTGRES_PASSWORD")
    return problems


def gateway_problems(doc: dict[str, Any]) -> list[str]:
    """Each homeserver can push its transactions to a gateway (a common network)."""
    services = doc["services"]
    gateways = _by_role(doc, "gateway")
    problems = []
    for name, service in services.items():
        if _image_name(service) == "matrixdotorg/synapse":
            if not any(_networks(service) & _networks(services[g]) for g in gateways):
                problems.append(f"{name}: reaches no Matrix gateway")
    return problems


def healthcheck_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in doc["services"].items():
        if _role(service) == "worker" or service.get("restart") == "no":
            continue  # no port to probe / a one-shot job
        test = (service.get("healthcheck") or {}).get("test")
        if not (isinstance(test, list) and test and test[0] in {"CMD", "CMD-SHELL"}):
            problems.append(f"{name}: needs a healthcheck with test: [CMD ...] or [CMD-SHELL ...]")
    return problems


CHECKS = [
    depends_on_problems,
    reference_problems,
    exposure_problems,
    secret_problems,
    image_problems,
    healthcheck_problems,
    data_volume_problems,
    database_problems,
    gateway_problems,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", FILES)
def test_compose_file(name: str, check: Any) -> None:
    assert check(load(name)) == []


@pytest.mark.parametrize("name", FILES)
def test_expected_components(name: str) -> None:
    images = {_image_name(s) for s in load(name)["services"].values()}
    for wanted in ("nats", "ipfs/kubo", "matrixdotorg/synapse", "oneheart"):
        assert wanted in images, f"{name} has no {wanted}"
    assert any(DATA_IMAGE.search(i) and ("postgres" in i or "timescale" in i) for i in images)
    assert any(i.endswith(("redis", "valkey")) for i in images)


def test_nats_runs_jetstream() -> None:
    node = load("node.yml")["services"]["nats"]
    assert "-js" in node["command"]
    fed = load("federation.yml")
    for config in fed["configs"].values():
        assert "jetstream" in config["content"]
    leaves = [c["content"] for c in fed["configs"].values() if "remotes" in c["content"]]
    assert len(leaves) == 2
    assert len({re.search(r"domain: (\w+)", c).group(1) for c in leaves}) == 2  # type: ignore[union-attr]


def test_federation_has_two_territory_nodes() -> None:
    services = load("federation.yml")["services"]
    for territory in ("dk", "ca"):
        for part in ("postgres", "synapse", "api", "worker", "gateway"):
            assert f"{territory}-{part}" in services


def _mutate(name: str, change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(load(name))
    change(doc)
    return doc


FAULTS = {
    "depends_on typo": (
        depends_on_problems,
        lambda d: d["services"]["worker"].__setitem__("depends_on", {"postgress": {"condition": "service_healthy"}}),
    ),
    "depends_on list typo": (
        depends_on_problems,
        lambda d: d["services"]["synapse"].__setitem__("depends_on", ["synapse_db"]),
    ),
    "healthy wait on no healthcheck": (
        depends_on_problems,
        lambda d: d["services"]["redis"].pop("healthcheck"),
    ),
    "undeclared volume": (reference_problems, lambda d: d["volumes"].pop("pgdata")),
    "undeclared network": (reference_problems, lambda d: d["networks"].pop("internal")),
    "postgres published": (
        exposure_problems,
        lambda d: d["services"]["postgres"].__setitem__("ports", ["5432:5432"]),
    ),
    "redis published on a random port": (
        exposure_problems,
        lambda d: d["services"]["redis"].__setitem__("ports", ["6379"]),
    ),
    "nats published long syntax": (
        exposure_problems,
        lambda d: d["services"]["nats"].__setitem__("ports", [{"target": 4222, "published": 4222}]),
    ),
    "kubo rpc published": (
        exposure_problems,
        lambda d: d["services"]["kubo"]["ports"].append("127.0.0.1:5001:5001"),
    ),
    "literal password": (
        secret_problems,
        lambda d: d["services"]["postgres"]["environment"].__setitem__("POSTGRES_PASSWORD", "hunter2"),
    ),
    "literal default password": (
        secret_problems,
        lambda d: d["services"]["postgres"]["environment"].__setitem__(
            "POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:-hunter2}"
        ),
    ),
    "literal password in a DSN": (
        secret_problems,
        lambda d: d["services"]["api"]["environment"].__setitem__(
            "OH_REGISTRY_DSN", "postgresql://oneheart:hunter2@postgres:5432/oneheart"
        ),
    ),
    "literal requirepass": (
        secret_problems,
        lambda d: d["services"]["redis"].__setitem__("command", ["valkey-server", "--requirepass", "hunter2"]),
    ),
    "worker built differently": (
        image_problems,
        lambda d: d["services"]["worker"].__setitem__("build", {"context": "..", "dockerfile": "Dockerfile"}),
    ),
    "worker another image": (
        image_problems,
        lambda d: d["services"]["worker"].__setitem__("image", "oneheart:other"),
    ),
    "api without healthcheck": (healthcheck_problems, lambda d: d["services"]["api"].pop("healthcheck")),
    "no gateway": (image_problems, lambda d: d["services"].pop("gateway")),
    "gateway binds loopback": (
        image_problems,
        lambda d: d["services"]["gateway"].__setitem__("command", ["oneheart", "gateway"]),
    ),
    "gateway without healthcheck": (healthcheck_problems, lambda d: d["services"]["gateway"].pop("healthcheck")),
    "worker without the data volume": (data_volume_problems, lambda d: d["services"]["worker"].pop("volumes")),
    "gateway on a volume of its own": (
        data_volume_problems,
        lambda d: d["services"]["gateway"].__setitem__("volumes", ["gatewaydata:/data"]),
    ),
    "migrate without the data volume": (data_volume_problems, lambda d: d["services"]["migrate"].pop("volumes")),
    "api without OH_DATA_DIR": (
        data_volume_problems,
        lambda d: d["services"]["api"].__setitem__(
            "environment", {k: v for k, v in d["services"]["api"]["environment"].items() if k != "OH_DATA_DIR"}
        ),
    ),
    "worker without the server password": (
        database_problems,
        lambda d: d["services"]["worker"].__setitem__(
            "environment",
            {k: v for k, v in d["services"]["worker"]["environment"].items() if k != "OH_DB_PASSWORD_MAIN"},
        ),
    ),
    "gateway with another password": (
        database_problems,
        lambda d: d["services"]["gateway"].__setitem__(
            "environment",
            {**d["services"]["gateway"]["environment"], "OH_DB_PASSWORD_MAIN": "${REDIS_PASSWORD:?x}"},
        ),
    ),
    "api off the database network": (
        database_problems,
        lambda d: d["services"]["api"].__setitem__("networks", ["public"]),
    ),
    "synapse cannot reach the gateway": (
        gateway_problems,
        lambda d: d["services"]["gateway"].__setitem__("networks", ["elsewhere"]),
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_checks_find_faults(fault: str) -> None:
    check, change = FAULTS[fault]
    assert check(_mutate("node.yml", change)) != []


def _env_without(service: dict[str, Any], name: str) -> None:
    service["environment"] = {k: v for k, v in _environment(service).items() if k != name}


FEDERATION_FAULTS = {
    # The defects of the file before: dk-api could not reach ca-postgres...
    "dk-api off ca's server": (
        database_problems,
        lambda d: d["services"]["dk-api"].__setitem__("networks", ["dk", "federation"]),
    ),
    # ... and only the setup job had the server passwords.
    "ca-worker without dk's password": (
        database_problems,
        lambda d: _env_without(d["services"]["ca-worker"], "OH_DB_PASSWORD_DK"),
    ),
    "dk-gateway with ca's password for dk": (
        database_problems,
        lambda d: d["services"]["dk-gateway"].__setitem__(
            "environment", {**_environment(d["services"]["dk-gateway"]), "OH_DB_PASSWORD_DK": "${CA_POSTGRES_PASSWORD}"}
        ),
    ),
    "ca-api on dk's data volume": (
        data_volume_problems,
        lambda d: d["services"]["ca-api"].__setitem__("volumes", ["dk-nodedata:/data"]),
    ),
    "ca without its one-shot job": (data_volume_problems, lambda d: d["services"]["ca-setup"].pop("volumes")),
}


@pytest.mark.parametrize("fault", list(FEDERATION_FAULTS))
def test_checks_find_faults_in_the_federation(fault: str) -> None:
    check, change = FEDERATION_FAULTS[fault]
    assert check(load("federation.yml")) == []
    assert check(_mutate("federation.yml", change)) != []


def test_checks_find_faults_in_the_federation_config() -> None:
    def leak(doc: dict[str, Any]) -> None:
        doc["configs"]["nats-hub"]["content"] = doc["configs"]["nats-hub"]["content"].replace(
            '"${NATS_LEAF_PASSWORD:?set NATS_LEAF_PASSWORD in .env}"', "s3cret"
        )

    assert secret_problems(_mutate("federation.yml", leak)) != []


@pytest.mark.parametrize("name", FILES)
def test_node_settings_are_real_settings(name: str) -> None:
    """Every OH_* variable a compose file sets is a setting the node reads (a renamed setting
    would otherwise be silently ignored in production)."""
    from core.settings import env_names

    known = set(env_names())
    for service, spec in load(name)["services"].items():
        env = spec.get("environment") or {}
        names = env.keys() if isinstance(env, dict) else [item.split("=", 1)[0] for item in env]
        unknown = sorted(
            n for n in names if n.startswith("OH_") and n not in known and not n.startswith("OH_DB_PASSWORD_")
        )
        assert unknown == [], f"{name}: {service} sets unknown settings {unknown}"


# --- the image ------------------------------------------------------------------------------
def dockerfile_stages(text: str) -> list[tuple[str, list[str]]]:
    """Each build stage's name (its ``AS`` name, else its index) and lines, in order."""
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            name = words[3] if len(words) >= 4 and words[2].upper() == "AS" else str(len(stages))
            stages.append((name, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def dockerfile_copies(text: str, stage: str | None = None) -> list[str]:
    """Sources the Dockerfile copies from the build context (not ``--from`` a stage): in every
    stage, or only in the stage named ``stage``."""
    out = []
    for name, lines in dockerfile_stages(text):
        if stage is not None and name != stage:
            continue
        for line in lines:
            words = line.split()
            if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
                out += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return out


def web_problems(text: str) -> list[str]:
    """The front-end libraries come from npm as web/package-lock.json pins them (``npm ci``),
    without dev dependencies (axe-core is for the tests) or install scripts, in a stage of their
    own; the final image copies that stage's node_modules to where OH_WEB_VENDOR_DIR points."""
    stages = dockerfile_stages(text)
    web = [name for name, lines in stages if any("web/package-lock.json" in ln for ln in lines)]
    if len(web) != 1:
        return [f"one stage must copy web/package-lock.json (found {web})"]
    lines = dict(stages)[web[0]]
    runs = [ln for ln in lines if ln.split()[:1] == ["RUN"]]
    problems = []
    if any(re.search(r"\bnpm\s+(install|i|add|update)\b", ln) for ln in runs):
        problems.append(f"stage {web[0]} runs npm install: the lockfile is only followed by npm ci")
    ci = [ln for ln in runs if re.search(r"\bnpm\s+ci\b", ln)]
    if not ci:
        problems.append(f"stage {web[0]} does not run npm ci")
    for flag in ("--omit=dev", "--ignore-scripts"):
        if ci and not all(flag in ln for ln in ci):
            problems.append(f"stage {web[0]}'s npm ci lacks {flag}")
    final = stages[-1][1]
    targets = [
        ln.split()[-1].rstrip("/")
        for ln in final
        if ln.split()[:1] == ["COPY"] and f"--from={web[0]}" in ln.split() and "node_modules" in ln
    ]
    vendor = re.search(r"OH_WEB_VENDOR_DIR=(\S+)", "\n".join(final))
    if not targets:
        problems.append(f"the final image does not copy node_modules from stage {web[0]}")
    elif vendor is None:
        problems.append("the final image sets no OH_WEB_VENDOR_DIR")
    elif vendor.group(1).rstrip("/") not in targets:
        problems.append(f"OH_WEB_VENDOR_DIR={vendor.group(1)}, but node_modules is copied to {targets}")
    return problems


def dockerfile_problems(text: str) -> list[str]:
    """The image installs the product's packages (pyproject's list) and nothing of the dev
    stack, runs as a non-root user, and declares the data directory (OH_DATA_DIR) as a volume
    owned by that user, so a fresh named volume is writable."""
    problems = []
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copies = dockerfile_copies(text)
    for package in (p.rstrip("*") for p in packages):
        if package not in copies:
            problems.append(f"the image does not copy package {package}/")
    if "." in copies or any(c.startswith("devstack") for c in copies):
        problems.append(f"the image copies more than the product (the dev stack stays out): {copies}")
    if re.search(r"\bdevstack\b", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))):
        problems.append("the image names devstack")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    if not users or users[-1] in {"root", "0"}:
        problems.append("the image must run as a non-root user")
    data_dir = re.search(r"OH_DATA_DIR=(\S+)", text)
    if data_dir is None:
        problems.append("the image sets no OH_DATA_DIR")
    else:
        path = data_dir.group(1)
        if not re.search(rf"^VOLUME\s+(\[\s*\"{re.escape(path)}\"\s*\]|{re.escape(path)})\s*$", text, re.MULTILINE):
            problems.append(f"OH_DATA_DIR {path} is not declared a VOLUME")
        if users and not re.search(rf"chown\s+{re.escape(users[-1])}\S*\s+{re.escape(path)}\b", text):
            problems.append(f"OH_DATA_DIR {path} is not owned by {users[-1]}")
    return problems + web_problems(text)


DOCKERFILE = COMPOSE / "Dockerfile"


def test_dockerfile() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    "fault",
    [
        ("COPY node/ node/\n", ""),
        ("COPY node/ node/\n", "COPY node/ node/\nCOPY devstack/ devstack/\n"),
        ("COPY schemas/ schemas/\n", "COPY . .\n"),
        ("USER oneheart\n", ""),
        ('VOLUME ["/data"]\n', ""),
        ("chown oneheart:oneheart /data", "true"),
        ("npm ci --omit=dev", "npm install --omit=dev"),
        ("npm ci --omit=dev", "npm ci"),
        (" --ignore-scripts", ""),
        ("COPY --from=web /web/node_modules/ /app/web/node_modules/\n", ""),
        ("OH_WEB_VENDOR_DIR=/app/web/node_modules", "OH_WEB_VENDOR_DIR=/app/node_modules"),
    ],
    ids=[
        "node missing",
        "devstack copied",
        "everything copied",
        "runs as root",
        "no volume",
        "volume not owned",
        "npm install, not the lockfile",
        "dev dependencies in the image",
        "npm install scripts run",
        "libraries not in the image",
        "vendor dir elsewhere",
    ],
)
def test_dockerfile_checks_find_faults(fault: tuple[str, str]) -> None:
    text = DOCKERFILE.read_text()
    assert fault[0] in text
    assert dockerfile_problems(text.replace(fault[0], fault[1], 1)) != []


# --- rendered by a real Compose implementation ----------------------------------------------
REQUIRED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


@pytest.fixture(scope="module")
def podman_compose() -> str:
    """podman-compose (the dev extra) with Debian's podman (installed when missing)."""
    program = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
    if not Path(program).exists():
        pytest.fail("podman-compose is missing: install the dev extra (pip install -e '.[dev]')")
    if shutil.which("podman") is None:
        from devstack.system import apt_install

        apt_install("podman")
    return program


def _config(podman_compose: str, name: str, folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    # Only the .env: no variable of the caller's shell fills in for a missing one.
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("OH_")}
    return subprocess.run(
        [podman_compose, "-f", name, "config"], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def render(podman_compose: str, name: str, folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``podman-compose config`` of a copy of compose/ with a .env of distinct dummy secrets."""
    shutil.copytree(COMPOSE, folder / "compose", ignore=shutil.ignore_patterns(".env"))
    names = sorted(set(REQUIRED_VAR.findall((COMPOSE / name).read_text())))
    dummies = {n: f"dummy-{n.lower()}-{secrets.token_hex(8)}" for n in names}
    (folder / "compose" / ".env").write_text("".join(f"{k}={v}\n" for k, v in dummies.items()))
    proc = _config(podman_compose, name, folder / "compose", names)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = yaml.safe_load(proc.stdout)
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), proc.stdout[:500]
    return doc, dummies


RENDERED_CHECKS = [
    depends_on_problems,
    reference_problems,
    exposure_problems,
    healthcheck_problems,
    data_volume_problems,
    database_problems,
    gateway_problems,
]


@pytest.mark.parametrize("name", FILES)
def test_rendered_by_podman_compose(podman_compose: str, name: str, tmp_path: Path) -> None:
    doc, dummies = render(podman_compose, name, tmp_path)
    for check in RENDERED_CHECKS:
        assert check(doc) == [], check.__name__
    services = doc["services"]
    assert _by_role(doc, "gateway"), "no Matrix gateway"
    # Every server's password reaches api, worker and gateway: the dummy of its own variable.
    passwords = {v for k, v in dummies.items() if re.fullmatch(r"(\w+_)?POSTGRES_PASSWORD", k)}
    servers = _servers(doc)
    assert len(servers) == len(passwords) >= 1
    for role in ROLES:
        for service in _by_role(doc, role):
            env = _environment(services[service])
            held = {env[f"OH_DB_PASSWORD_{alias.upper()}"] for alias in servers}
            assert held == passwords, f"{service} holds {held}"
            assert env["OH_DATA_DIR"] in _mounts(services[service]).values()
    # A missing secret stops Compose with its name.
    first = next(iter(dummies))
    env_file = tmp_path / "compose" / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in dummies.items() if k != first))
    proc = _config(podman_compose, name, tmp_path / "compose", list(dummies))
    assert proc.returncode != 0 and first in proc.stderr
