"""Each concept in its place: the gateway and the client talk to the service over gRPC
only, never by import; rules in the domain, SQL in the store, gRPC statuses in the service's
answers, free of one another's machinery."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import isales_campaign

SOURCE = Path(isales_campaign.__file__).parent
SERVICE = SOURCE / "service"
STORE = SERVICE / "db"
FORBIDDEN = "isales_campaign.service"
PACKAGES = [SOURCE / "gateway", SOURCE / "client"]
#: Clients of the service outside those packages (`isales changes`).
CLIENTS = [SOURCE / "changes_cli.py"]


def _runtime_imports(path: Path) -> set[str]:
    """The modules (and `module.name`s) a file imports when it runs: not those imported
    only for type checking."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(child) for child in ast.walk(node)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "gen" not in p.parts)


def test_only_the_store_speaks_sql() -> None:
    """Outside `service/db/`, SQLAlchemy is a type name at most: no statement is built, no
    text of SQL run."""
    outside = [p for p in _modules(SOURCE) if STORE not in p.parents]
    assert len(outside) >= 40
    for path in outside:
        used = _within(_runtime_imports(path), "sqlalchemy") - {"sqlalchemy", "sqlalchemy.Engine"}
        assert not used, f"{path.relative_to(SOURCE)} imports {used}"
        text = path.read_text(encoding="utf-8")
        for statement in ("SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"):
            assert statement not in text, f"{path.relative_to(SOURCE)} holds SQL"


def test_the_domain_decides_free_of_grpc_and_of_the_store() -> None:
    domain = _modules(SERVICE / "domain")
    assert len(domain) >= 5
    for path in domain:
        imports = _runtime_imports(path)
        for machinery in ("grpc", "sqlalchemy", "isales_campaign.service.db"):
            assert not _within(imports, machinery), f"{path.name} imports {machinery}"


def test_refusals_know_nothing_of_grpc() -> None:
    """A refusal says what is wrong; `answers` alone maps it to a gRPC status (the call
    chain names only the codes it counts: OK, a deadline passed before the call ran, and a
    stream its client left; the standard health service, its own NOT_FOUND for a service it
    does not know)."""
    assert not _within(_runtime_imports(SERVICE / "errors.py"), "grpc")
    named: dict[str, set[str]] = {}
    for path in _modules(SERVICE):
        codes = set(re.findall(r"grpc\.StatusCode\.([A-Z_]+)", path.read_text(encoding="utf-8")))
        if codes:
            named[path.relative_to(SERVICE).as_posix()] = codes
    assert set(named) == {"answers.py", "call_chain.py", "health.py"}
    assert named["call_chain.py"] <= {"OK", "DEADLINE_EXCEEDED", "CANCELLED"}
    assert named["health.py"] == {"NOT_FOUND"}


def test_no_module_imports_the_service() -> None:
    files = [f for package in PACKAGES for f in sorted(package.rglob("*.py"))] + CLIENTS
    assert len(files) >= 10
    for path in files:
        bad = {n for n in _runtime_imports(path) if n == FORBIDDEN or n.startswith(FORBIDDEN + ".")}
        assert not bad, f"{path} imports {bad}"
        assert "isales_campaign import service" not in path.read_text(encoding="utf-8")


def test_importing_the_gateway_loads_no_service_module() -> None:
    code = (
        "import sys, isales_campaign.gateway.app, isales_campaign.gateway.run, "
        "isales_campaign.client, isales_campaign.changes_cli\n"
        f"print([m for m in sys.modules if m.startswith({FORBIDDEN!r})])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_service_knows_nothing_of_the_legacy_api() -> None:
    """The legacy REST API (its paths, wire names and signatures) is the gateway's and the
    client's business: the service speaks its gRPC contract only."""
    files = sorted(SERVICE.rglob("*.py"))
    assert len(files) >= 10
    legacy = "isales_campaign.legacy"
    for path in files:
        bad = {n for n in _runtime_imports(path) if n == legacy or n.startswith(legacy + ".")}
        assert not bad, f"{path} imports {bad}"
