"""The production topology as processes, as compose/node.yml runs it, without containers.

A wheel of the product is built from exactly what compose/Dockerfile's build stage copies and
installed into a fresh venv (its dependencies come from the suite's venv, its code only from the
wheel; no dev stack). The front-end libraries are the repository's web/node_modules (what
``npm ci`` installed from web/package-lock.json) without its dev dependencies, copied where the
image's stage ``web`` puts them, and OH_WEB_VENDOR_DIR names them as the image does. As a
non-root user, with a read-only code and working directory and a writable data directory (the
volume, OH_DATA_DIR), with the environment node.yml sets pointed at the suite's real services:
the one-shot ``migrate`` command, two api replicas, the worker and the gateway. A player signs in
through api 1 (the built-in OIDC provider) and the token works on api 2.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml
from devstack.postgres import ensure_database
from devstack.system import free_port, wait_for

from devstack import nats as stack_nats
from tests.conftest import ADMIN_TOKEN, Env
from tests.test_auth import PASSWORD, WEB, login
from tests.test_compose import COMPOSE, REPO, _environment, _words, dockerfile_copies

pytestmark = pytest.mark.timeout(300)

USER = "oneheart"  # as in the image
PRODUCT = ("core", "territories", "services", "federation", "node", "schemas")


@dataclass
class Installed:
    root: Path  # everything of this module, under /tmp (reachable by the user)
    venv: Path
    app: Path  # the working directory and HOME: root-owned, read-only for the node
    data: Path  # the data volume: owned by the user
    uid: int
    gid: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def vendor(self) -> Path:
        """The front-end libraries: the image's /app/web/node_modules."""
        return self.app / "web" / "node_modules"

    def environ(self, env: dict[str, str]) -> dict[str, str]:
        """Only what a container would have: no PYTHONPATH, no variable of the suite; the
        image's own setting of where the front-end libraries are."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.app),
            "LANG": "C.UTF-8",
            "OH_WEB_VENDOR_DIR": str(self.vendor),
            **env,
        }

    def as_node(self, env: dict[str, str]) -> dict[str, Any]:
        """How every command runs: as the node's user, in its working directory, with its environment."""
        return {"env": self.environ(env), "cwd": self.app, "user": self.uid, "group": self.gid, "extra_groups": []}

    def run(self, args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            args,
            **self.as_node(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
        return proc

    def start(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (self.root / "logs" / log).open("ab") as out:
            proc = subprocess.Popen(
                args,
                **self.as_node(env),
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / "logs" / name).read_text(errors="replace")


def _user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", *"--system --user-group --no-create-home --shell /usr/sbin/nologin".split(), USER],
            check=True,
        )
        entry = pwd.getpwnam(USER)
    assert entry.pw_uid != 0
    return entry.pw_uid, entry.pw_gid


def _traversable(path: Path) -> list[tuple[Path, int]]:
    """Give "others" search (x) permission on every folder above ``path`` that lacks it (the
    suite's interpreter may live under /root); the changes made, to undo."""
    changed = []
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if folder.is_dir() and not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
            changed.append((folder, mode))
    return changed


def _dependencies(root: Path) -> Path:
    """The suite venv's installed packages except this project and the dev stack: a folder of
    links, put on the new venv's path with a .pth file (whose own .pth files are not run, so no
    editable install of the repository leaks in)."""
    folder = root / "deps"
    folder.mkdir()
    skip = re.compile(r"^(__editable__|oneheart|devstack|_?virtualenv|distutils-precedence\.pth$)", re.I)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name in PRODUCT or skip.match(entry.name):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def _web_libraries(target: Path) -> None:
    """What the image's stage ``web`` installs (``npm ci --omit=dev``): the repository's
    web/node_modules without the lockfile's dev packages (a nested package comes with its parent)."""
    web = REPO / "web"
    assert (web / "node_modules" / ".package-lock.json").exists(), "run `npm ci` in web/ (scripts/test does)"
    packages = json.loads((web / "package-lock.json").read_text())["packages"]
    for name, entry in packages.items():
        top = name.count("node_modules/") == 1
        if name and top and not entry.get("dev") and not entry.get("link"):
            shutil.copytree(web / name, target / name.removeprefix("node_modules/"))


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    uid, gid = _user()
    root = Path(tempfile.mkdtemp(prefix="oh-prod-", dir="/tmp"))
    root.chmod(0o755)
    (root / "logs").mkdir()
    # The build context: what the Dockerfile's build stage copies, nothing else.
    src = root / "src"
    src.mkdir()
    for pattern in dockerfile_copies((COMPOSE / "Dockerfile").read_text(), stage="build"):
        for path in REPO.glob(pattern):
            target = src / path.relative_to(REPO)
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("OH_")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", ".", "--no-deps", "-w", str(root / "wheels")], cwd=src, env=clean, check=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=clean, check=True)
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=clean,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "oneheart-dependencies.pth").write_text(f"{_dependencies(root)}\n")
    wheels = [str(w) for w in (root / "wheels").glob("oneheart-*.whl")]
    assert len(wheels) == 1, wheels
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index", *wheels],
        cwd=root,
        env=clean,
        check=True,
    )
    shutil.rmtree(src)
    app = root / "app"
    app.mkdir(mode=0o755)
    _web_libraries(app / "web" / "node_modules")
    data = root / "data"
    data.mkdir(mode=0o700)
    os.chown(data, uid, gid)
    changed = _traversable(Path(os.path.realpath(venv / "bin" / "python")).parent)
    inst = Installed(root, venv, app, data, uid, gid)
    yield inst
    for proc in inst.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    for folder, mode in changed:
        folder.chmod(mode)
    if not os.environ.get("OH_TEST_KEEP"):  # keep the venv, data and logs to look into
        shutil.rmtree(root, ignore_errors=True)


def test_the_package_is_installed_without_the_dev_stack(installed: Installed) -> None:
    code = installed.run(["python", "-c", "import node, core; print(node.__file__, core.__file__)"], {}).stdout
    assert all(path.startswith(str(installed.venv)) for path in code.split()), code
    missing = subprocess.run(
        [installed.venv / "bin" / "python", "-c", "import devstack"],
        env=installed.environ({}),
        cwd=installed.app,
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "No module named 'devstack'" in missing.stderr, missing.stderr
    usage = installed.run(["oneheart", "--help"], {}).stdout
    assert re.search(r"^\W*serve\s", usage, re.M) and re.search(r"^\W*gateway\s", usage, re.M), usage
    assert not re.search(r"^\W*stack\s", usage, re.M), usage
    # The code is not the node's to change.
    probe = subprocess.run(
        ["test", "-w", str(installed.venv / "bin"), "-o", "-w", str(installed.app)],
        user=installed.uid,
        group=installed.gid,
        extra_groups=[],
    )
    assert probe.returncode != 0


def test_the_wheel_holds_every_file_of_the_product(installed: Installed) -> None:
    """Templates, catalogs and static files are package data: a file of the product's folders
    that the wheel lacks would be missing in the image (documentation aside)."""
    wheel = next((installed.root / "wheels").glob("oneheart-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", *PRODUCT], capture_output=True, check=True)
    tracked = [name for name in listed.stdout.decode().split("\0") if name]
    assert tracked, "git ls-files listed nothing"
    missing = [name for name in tracked if name not in names and not name.endswith(".md")]
    assert missing == [], f"not in the wheel (see [tool.setuptools.package-data]): {missing}"


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS of its own: the suite's workers share durable consumer names with this worker."""
    folder = tmp_path_factory.mktemp("prod-nats")
    yield stack_nats.start_nats(folder, free_port())
    stack_nats.stop_nats(folder)


@pytest.fixture(scope="module")
def registry_dsn() -> Iterator[str]:
    base = os.environ.get("OH_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oh_prod_{os.getpid()}"
    yield ensure_database(base, name)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "node.yml").read_text())["services"]


def compose_environment(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """node.yml's environment for a service, each value that names a secret or another
    container replaced by the suite's own (an unknown one fails: map it here)."""
    out = {}
    for name, value in _environment(service).items():
        if name in values:
            out[name] = values[name]
        elif "${" not in value and "://" not in value:
            out[name] = value
        else:
            raise AssertionError(f"node.yml sets {name}={value!r}: tell test_production what it is here")
    return out


def _with_port(words: list[str], port: int) -> list[str]:
    """A server's compose command, bound to loopback on a port of our own."""
    assert "--host" in words, words
    at = words.index("--host")
    return [*words[:at], "--host", "127.0.0.1", *words[at + 2 :], "--port", str(port)]


def _up(url: str, proc: subprocess.Popen[bytes], inst: Installed, log: str) -> None:
    def check() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{log} exited ({proc.returncode}):\n{inst.log(log)[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(check, 60, log)


async def test_two_apis_a_worker_and_a_gateway_share_the_node(
    installed: Installed, env: Env, ipfs: str, nats: str, registry_dsn: str
) -> None:
    inst = installed
    services = _compose()
    ports = {"api-1": free_port(), "api-2": free_port(), "gateway": free_port()}
    public = f"http://127.0.0.1:{ports['api-1']}"  # the address in front of both replicas
    server_password = urlsplit(registry_dsn).password or ""
    values = {
        "OH_DATA_DIR": str(inst.data),
        "OH_PUBLIC_URL": public,
        "OH_REGISTRY_DSN": registry_dsn,
        "OH_DB_PASSWORD_MAIN": server_password,
        "OH_NATS_URL": nats,
        "OH_REDIS_URL": env.settings.redis.url,
        "OH_IPFS_URL": ipfs,
        "OH_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    envs = {name: compose_environment(services[name], values) for name in ("migrate", "api", "worker", "gateway")}
    assert len({tuple(sorted(e.items())) for e in envs.values()}) == 1, "node.yml gives its services one environment"
    environ = envs["api"]

    # The one-shot job, as node.yml writes it: the server `main` is the registry's database here.
    bare = re.sub(r"//([^:@/]*)(:[^@]*)?@", r"//\1@", registry_dsn)
    migrate = [
        re.sub(r"postgresql://\S*@postgres:5432/oneheart", bare, re.sub(r"\$\{NODE_REGION[^}]*\}", "eu-north", w))
        for w in _words(services["migrate"])
    ]
    inst.run(migrate, environ)
    keys = sorted((inst.data / "secrets" / "node-keys").glob("*.json"))
    assert len(keys) == 1 and keys[0].stat().st_uid == inst.uid, keys

    # `up`: both replicas, the worker and the gateway start on the volume the job prepared ...
    api = _words(services["api"])
    procs = {
        "api-1": inst.start(_with_port(api, ports["api-1"]), environ, "api-1.log"),
        "api-2": inst.start(_with_port(api, ports["api-2"]), environ, "api-2.log"),
        "worker": inst.start(_words(services["worker"]), environ, "worker.log"),
        "gateway": inst.start(_with_port(_words(services["gateway"]), ports["gateway"]), environ, "gateway.log"),
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        # ... while the operator takes the first steps: a territory, its provider (the node's
        # own), an app and a player.
        inst.run(["oneheart", "territory", "create", "dk", "--name", "Denmark", "--server", "main"], environ)
        out = inst.run(
            ["oneheart", *"idp-client add node --name Node".split(), "--redirect-uri", f"{public}/api/auth/callback"],
            environ,
        ).stdout
        secret = re.search(r"client_secret: (\S+)", out).group(1)  # type: ignore[union-attr]
        flags = ["--issuer", f"{public}/oidc", "--client-secret-stdin"]
        inst.run(
            ["oneheart", *"auth set-provider dk --scope openid --scope profile --client-id node".split(), *flags],
            environ,
            stdin=secret + "\n",
        )
        inst.run(["oneheart", "auth", "add-app", WEB[0], "--name", "Web", "--redirect-uri", WEB[1]], environ)
        inst.run(
            ["oneheart", "user", "add", "astrid", "--display-name", "Astrid", "--password-stdin"],
            environ,
            stdin=PASSWORD + "\n",
        )
        for name in ("api-1", "api-2", "gateway"):
            _up(urls[name], procs[name], inst, f"{name}.log")
        await _one_node(inst, urls, keys[0].stem)
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} stopped:\n{inst.log(f'{name}.log')[-3000:]}"
            assert "Traceback" not in inst.log(f"{name}.log"), inst.log(f"{name}.log")[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=30)
    # Everything the node wrote is in its volume, and its own.
    foreign = [p for p in inst.data.rglob("*") if p.stat().st_uid != inst.uid]
    assert foreign == [], foreign


async def _one_node(inst: Installed, urls: dict[str, str], kid: str) -> None:
    """Two replicas, one node: the same keys, and a token of one works on the other."""
    async with httpx.AsyncClient(timeout=30) as c:
        for name in ("api-1", "api-2"):
            ready = await c.get(f"{urls[name]}/ready")
            assert ready.status_code == 200, (name, ready.text)
        # The docs page's files: our start script (package data in the wheel) and Swagger UI
        # from the front-end libraries, where the image puts them.
        # A page, in a language (templates and catalogs are in the wheel too).
        signin = await c.get(f"{urls['api-1']}/app/signin", headers={"Accept-Language": "da"})
        assert signin.status_code == 200 and signin.headers["content-language"] == "da", signin.text[:500]
        for path in ("/docs", "/static/app/swagger-init.js", "/static/vendor/swagger-ui/swagger-ui-bundle.js"):
            got = await c.get(f"{urls['api-1']}{path}")
            assert got.status_code == 200, (path, got.status_code, got.text[:300])
        jwks = [(await c.get(f"{urls[n]}/.well-known/jwks.json")).json() for n in ("api-1", "api-2")]
        assert jwks[0] == jwks[1] and [k["kid"] for k in jwks[0]["keys"]] == [kid], jwks

        # Signed in through api 1 ...
        try:
            signed_in = await login(_At(urls["api-1"]), "astrid")  # type: ignore[arg-type]
        except AssertionError as exc:
            raise AssertionError(f"{exc}\napi-1's log:\n{inst.log('api-1.log')[-4000:]}") from None
        access = str(signed_in.tokens["access_token"])
        # ... accepted by api 2; and the token api 2 refreshes is accepted by api 1.
        me = await c.get(f"{urls['api-2']}/api/players/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200, me.text
        assert me.json()["display_name"] == "Astrid" and me.json()["territory"] == "dk"
        refreshed = await c.post(
            f"{urls['api-2']}/api/auth/refresh", json={"refresh_token": signed_in.tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        again = await c.get(
            f"{urls['api-1']}/api/players/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        )
        assert again.status_code == 200, again.text
        assert (await c.get(f"{urls['gateway']}/health")).status_code == 200


@dataclass
class _At:
    """What tests.test_auth.login needs of a node: its URL."""

    url: str
