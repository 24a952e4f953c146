"""The house rules that the code itself must keep: the import contract (import-linter), every
module importable on its own, one owner of a proof's lifecycle."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "territories", "services", "federation", "node"]
LIFECYCLE = REPO / "services" / "proofs" / "service.py"


def _modules() -> list[str]:
    out = []
    for package in [*PACKAGES, "devstack/devstack"]:
        root = REPO / package
        base = root.parent
        for path in sorted(root.rglob("*.py")):
            if path.name == "__main__.py":
                continue
            parts = path.relative_to(base).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_import_contract_holds() -> None:
    """Layers, the dev stack out of the product, domains apart (contracts in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_contract_catches_a_violation(tmp_path: Path) -> None:
    """A kernel module importing a domain breaks the layers contract (the check can fail)."""
    copy = tmp_path / "repo"
    for package in [*PACKAGES, "devstack"]:
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    (copy / "core" / "oops.py").write_text("from services.zones import service  # noqa\n")
    env = {**os.environ, "PYTHONPATH": f"{copy}:{copy / 'devstack'}"}
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=copy, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0
    assert "core.oops" in proc.stdout


def _import_alone(module: str) -> tuple[str, str | None]:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120, cwd="/"
    )
    return module, (None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1])


def test_every_module_imports_on_its_own() -> None:
    """Each module in a fresh interpreter: no import cycle hides behind an import order."""
    modules = _modules()
    assert len(modules) > 100
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [(m, e) for m, e in pool.map(_import_alone, modules) if e]
    assert failures == []


def _writes_status(tree: ast.AST) -> list[int]:
    """Lines that update ``proofs`` or ``assignments`` rows (``proofs.update()``...)."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("proofs", "assignments")
        ):
            lines.append(node.lineno)
    return lines


def test_one_owner_of_the_proof_lifecycle() -> None:
    """Only services/proofs/service.py writes a proof's or an assignment's status."""
    offenders = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if path == LIFECYCLE:
                continue
            found = _writes_status(ast.parse(path.read_text()))
            if found:
                offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}
    assert _writes_status(ast.parse(LIFECYCLE.read_text())), "the lifecycle module writes them"


def test_domain_files_are_named_by_role() -> None:
    """The same role has the same file name in every domain (controllers, service, dto, models,
    consumers, cli): no store.py, provider.py, broker.py or payout.py."""
    found = [
        f"{domain.name}/{name}"
        for domain in (REPO / "services").iterdir()
        for name in ("store.py", "provider.py", "broker.py", "payout.py")
        if (domain / name).exists()
    ]
    assert found == []
