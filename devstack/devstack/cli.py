"""``oneheart stack``: start, inspect and stop the local development stack."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from devstack import ipfs, nats, postgres, redis
from devstack.system import free_port, port_open, redact_url

stack_app = typer.Typer(
    help="Local development stack: PostgreSQL, NATS JetStream, Redis, IPFS (and Synapse) on 127.0.0.1.",
    no_args_is_help=True,
)
console = Console()
DATABASE = "oneheart"
SERVER_B_PORT = 55433


def _data_dir() -> Path:
    # Same rule as core.settings, without reading any other setting.
    return Path(os.environ.get("OH_DATA_DIR", ".data")).resolve()


def _server_b_path(data_dir: Path) -> Path:
    return data_dir / "postgres" / "b"


def _read_state(data_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((data_dir / "stack.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def read_stack_env(data_dir: Path) -> dict[str, str]:
    """The KEY=VALUE pairs of ``data_dir/stack.env`` (empty when missing)."""
    values: dict[str, str] = {}
    try:
        lines = (data_dir / "stack.env").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _how(before: object, after: object) -> str:
    if before is not None:
        return "ours, already running"
    if after is not None:
        return "[green]started[/green]"
    return "reused (machine)"


def _server_b_port(data_dir: Path, state: dict[str, int]) -> int:
    running = postgres.running_port(_server_b_path(data_dir))
    if running is not None:
        return running
    port = state.get("server_b_port", SERVER_B_PORT)
    return port if not port_open("127.0.0.1", port) else free_port()


DEMO_TERRITORIES = ["dk", "sami"]


def _homeservers(data_dir: Path, state: dict[str, int]) -> list[tuple[str, str, str]]:
    from core.settings import Settings
    from devstack import synapse
    from devstack.matrix import demo_homeservers, ensure_demo_homeservers

    settings = Settings(data_dir=data_dir)
    before = {code: synapse.our_pid(hs) for code, hs in demo_homeservers(settings)}
    rows = []
    for code, server_name in ensure_demo_homeservers(settings, DEMO_TERRITORIES, state):
        url = f"http://127.0.0.1:{state[f'synapse_{code}_client']}"
        rows.append((f"synapse ({code}: {server_name})", url, _how(before.get(code), True)))
    return rows


@stack_app.command()
def up(
    minimal: bool = typer.Option(
        False, "--minimal", help="Skip the demo's second PostgreSQL server and its Matrix homeservers."
    ),
) -> None:
    """Reuse or start PostgreSQL, NATS, Redis, IPFS and (without --minimal) a Synapse per demo
    territory; write DATA_DIR/stack.env."""
    data_dir = _data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    state = _read_state(data_dir)
    env: dict[str, str] = {}
    rows: list[tuple[str, str, str]] = []
    try:
        with console.status("PostgreSQL (registry server)...") as status:
            path_a = postgres.primary_path(data_dir)
            before = postgres.running_port(path_a)
            server = postgres.ensure_primary(data_dir)
            how = _how(before, postgres.running_port(path_a))
            env["OH_REGISTRY_DSN"] = postgres.ensure_database(server, DATABASE)
            rows.append(("postgres (registry)", env["OH_REGISTRY_DSN"], how))

            path_b = _server_b_path(data_dir)
            if not minimal:
                status.update("PostgreSQL (demo server B)...")
                before = postgres.running_port(path_b)
                port = _server_b_port(data_dir, state)
                server_b = postgres.ensure_cluster(path_b, port)
                state["server_b_port"] = port
                env["OH_DEMO_SERVER_B_DSN"] = postgres.ensure_database(server_b, DATABASE)
                rows.append(("postgres (server b)", env["OH_DEMO_SERVER_B_DSN"], _how(before, port)))
            elif (port_b := postgres.running_port(path_b)) is not None:
                env["OH_DEMO_SERVER_B_DSN"] = postgres.database_dsn(postgres.server_dsn(port_b), DATABASE)
                rows.append(("postgres (server b)", env["OH_DEMO_SERVER_B_DSN"], "ours, already running"))

            status.update("NATS JetStream...")
            before = nats.our_port(data_dir)
            env["OH_NATS_URL"] = nats.ensure_nats(data_dir)
            rows.append(("nats (jetstream)", env["OH_NATS_URL"], _how(before, nats.our_port(data_dir))))

            status.update("Redis...")
            before = redis.our_port(data_dir)
            env["OH_REDIS_URL"] = redis.ensure_redis(data_dir)
            rows.append(("redis", env["OH_REDIS_URL"], _how(before, redis.our_port(data_dir))))

            # js-ipfs is installed on first use (npm, a few minutes, once per machine).
            status.update("IPFS..." if ipfs.installed() else "IPFS (installing js-ipfs once: a few minutes)...")
            before = ipfs.our_port(data_dir)
            env["OH_IPFS_URL"] = ipfs.ensure_ipfs(data_dir)
            rows.append(("ipfs", env["OH_IPFS_URL"], _how(before, ipfs.our_port(data_dir))))

            if not minimal:
                # One Synapse per demo territory, federating on loopback (`oneheart matrix attach`
                # then names them in the registry; `oneheart gateway` serves them).
                status.update("Matrix homeservers (Synapse)...")
                rows.extend(_homeservers(data_dir, state))
    except (RuntimeError, TimeoutError, OSError) as exc:
        console.print(f"[red]stack up failed:[/red] {exc}")
        raise typer.Exit(1) from None

    _write_private(data_dir / "stack.json", json.dumps(state, indent=2) + "\n")
    header = "# Written by `oneheart stack up`; real environment variables win over these.\n"
    _write_private(data_dir / "stack.env", header + "".join(f"{k}={v}\n" for k, v in env.items()))

    table = Table(title="OneHeart local stack")
    table.add_column("component")
    table.add_column("address", overflow="fold")
    table.add_column("how")
    for name, address, how in rows:
        table.add_row(name, redact_url(address), how)
    console.print(table)
    console.print(f"settings written to {data_dir / 'stack.env'}")


def _timed(check: Callable[[str], bool], address: str) -> tuple[bool, float]:
    start = time.perf_counter()
    ok = check(address)
    return ok, (time.perf_counter() - start) * 1000


@stack_app.command()
def status() -> None:
    """Show each component's address, whether it answers and how fast."""
    data_dir = _data_dir()
    env = read_stack_env(data_dir)
    components: list[tuple[str, str | None, Callable[[str], bool]]] = [
        ("postgres (registry)", env.get("OH_REGISTRY_DSN"), postgres.can_connect),
        ("postgres (server b)", env.get("OH_DEMO_SERVER_B_DSN"), postgres.can_connect),
        ("nats (jetstream)", env.get("OH_NATS_URL"), nats.jetstream_ready),
        ("redis", env.get("OH_REDIS_URL"), redis.answers),
        ("ipfs", env.get("OH_IPFS_URL"), ipfs.is_ipfs),
    ]
    from core.settings import Settings
    from devstack import synapse
    from devstack.matrix import demo_homeservers

    for code, hs in demo_homeservers(Settings(data_dir=data_dir)):
        components.append((f"synapse ({code}: {hs.server_name})", hs.url, synapse.answers))
    table = Table(title=f"OneHeart local stack ({data_dir / 'stack.env'})")
    table.add_column("component")
    table.add_column("address", overflow="fold")
    table.add_column("state")
    table.add_column("latency", justify="right")
    all_up = True
    with console.status("checking..."):
        for name, address, check in components:
            if address is None:
                table.add_row(name, "-", "[dim]not configured[/dim]", "-")
                continue
            ok, ms = _timed(check, address)
            all_up = all_up and ok
            state = "[green]up[/green]" if ok else "[red]down[/red]"
            table.add_row(name, redact_url(address), state, f"{ms:.1f} ms" if ok else "-")
    console.print(table)
    if not env:
        console.print("no stack.env yet: run `oneheart stack up`")
    if not all_up:
        raise typer.Exit(1)


@stack_app.command()
def down() -> None:
    """Stop what `stack up` started itself; servers the machine already ran are left alone."""
    data_dir = _data_dir()
    stopped: list[str] = []
    with console.status("stopping..."):
        for name, path in (
            ("postgres (registry)", postgres.primary_path(data_dir)),
            ("postgres (server b)", _server_b_path(data_dir)),
        ):
            if postgres.running_port(path) is not None:
                postgres.stop_cluster(path)
                stopped.append(name)
        if nats.our_port(data_dir) is not None:
            nats.stop_nats(data_dir)
            stopped.append("nats (jetstream)")
        if redis.our_port(data_dir) is not None:
            redis.stop_redis(data_dir)
            stopped.append("redis")
        if ipfs.our_port(data_dir) is not None:
            ipfs.stop_ipfs(data_dir)
            stopped.append("ipfs")
        from core.settings import Settings
        from devstack import synapse
        from devstack.matrix import demo_homeservers

        for code, hs in demo_homeservers(Settings(data_dir=data_dir)):
            if synapse.our_pid(hs) is not None:
                synapse.stop_synapse(hs)
                stopped.append(f"synapse ({code})")
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")


@stack_app.command()
def seed(
    territory: list[str] | None = typer.Option(
        None, "--territory", help="Only this demo territory (repeat for more); default: dk and sami."
    ),
) -> None:
    """Demo content so the `demo` account can play at once: zones, quests of every type and a
    few rewards around Copenhagen (dk) and Kautokeino (sami). Idempotent; development only."""
    from devstack.seed import DEMO
    from devstack.seed import seed as seed_demo
    from territories.cli import run

    codes = territory or list(DEMO)
    unknown = sorted(set(codes) - set(DEMO))
    if unknown:
        console.print(f"[red]no demo content for[/red] {', '.join(unknown)} (choose from {', '.join(DEMO)})")
        raise typer.Exit(2)
    report = run(lambda router: seed_demo(router, codes))
    made = ", ".join(f"{n} {what}" for what, n in report.created.items())
    kept = ", ".join(f"{n} {what}" for what, n in report.kept.items())
    console.print(f"demo content in {', '.join(codes)}: created {made}; already there {kept}")


if __name__ == "__main__":
    stack_app()
