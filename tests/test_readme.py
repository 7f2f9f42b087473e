"""The README's examples work as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServerFactory

README = Path(__file__).resolve().parent.parent / "README.md"


def python_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_grpc_example(sqlite_url: str, make_server: ServerFactory) -> None:
    running = make_server(sqlite_url)
    grpc_example = next(e for e in python_examples() if "CampaignServiceStub" in e)
    code = grpc_example.replace("127.0.0.1:50051", f"127.0.0.1:{running.port}")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "CAMPAIGN_STATUS_EXECUTING"]
