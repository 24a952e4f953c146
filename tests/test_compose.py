"""Structural checks of the production Compose files (no Docker engine needed).

Each check returns the problems it finds, so the same code is run on the real files (no
problems allowed) and on copies with a fault put in (the fault must be found).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "compose"
FILES = ["node.yml", "federation.yml"]

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


def _role(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    words = command.split() if isinstance(command, str) else [str(c) for c in command]
    if words[:2] == ["oneheart", "serve"]:
        return "api"
    if words[:2] == ["oneheart", "worker"]:
        return "worker"
    return None


def image_problems(doc: dict[str, Any]) -> list[str]:
    """api and worker run the same image, built from compose/Dockerfile, with secrets from .env."""
    services = doc["services"]
    roles = {name: _role(s) for name, s in services.items()}
    apis = [n for n, r in roles.items() if r == "api"]
    workers = [n for n, r in roles.items() if r == "worker"]
    if not apis or not workers:
        return [f"needs an api and a worker service (found api={apis}, worker={workers})"]
    problems = []
    first = services[apis[0]]
    for name in apis + workers:
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
    for name in apis:
        command = [str(c) for c in services[name]["command"]]
        if "--host" not in command or command[command.index("--host") + 1] != "0.0.0.0":
            problems.append(f"{name}: `oneheart serve` must bind 0.0.0.0 inside the container")
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
        for part in ("postgres", "synapse", "api", "worker"):
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
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_checks_find_faults(fault: str) -> None:
    check, change = FAULTS[fault]
    assert check(_mutate("node.yml", change)) != []


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
