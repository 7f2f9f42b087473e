"""The gateway (and the client) talk to the service over gRPC only, never by import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import isales_campaign.client
import isales_campaign.gateway

FORBIDDEN = "isales_campaign.service"
PACKAGES = [
    Path(isales_campaign.gateway.__file__).parent,
    Path(isales_campaign.client.__file__).parent,
]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_the_service() -> None:
    files = [f for package in PACKAGES for f in sorted(package.rglob("*.py"))]
    assert len(files) >= 10
    for path in files:
        bad = {n for n in _imports(path) if n == FORBIDDEN or n.startswith(FORBIDDEN + ".")}
        assert not bad, f"{path} imports {bad}"
        assert "isales_campaign import service" not in path.read_text(encoding="utf-8")


def test_importing_the_gateway_loads_no_service_module() -> None:
    code = (
        "import sys, isales_campaign.gateway.app, isales_campaign.gateway.run, "
        "isales_campaign.client\n"
        f"print([m for m in sys.modules if m.startswith({FORBIDDEN!r})])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_service_knows_nothing_of_the_legacy_api() -> None:
    """The legacy REST API (its paths, wire names and signatures) is the gateway's and the
    client's business: the service speaks its gRPC contract only."""
    service = Path(isales_campaign.gateway.__file__).parent.parent / "service"
    files = sorted(service.rglob("*.py"))
    assert len(files) >= 10
    legacy = "isales_campaign.legacy"
    for path in files:
        bad = {n for n in _imports(path) if n == legacy or n.startswith(legacy + ".")}
        assert not bad, f"{path} imports {bad}"
