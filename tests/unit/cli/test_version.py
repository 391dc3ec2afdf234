"""``executor --version`` and the server's ``/api/v1/configs`` give the same, installed version."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from executor.cli import main
from executor.server.app import create_app
from executor.server.config import ServerConfig
from executor.settings import Settings


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`executor --version` prints `executor X.Y.Z` (the package's metadata) and exits 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"executor {version('executor')}\n"


def test_configs_reports_the_same_version(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the CLI says is what a Kestra client reads from GET /api/v1/configs."""
    main(["--version"])
    printed = capsys.readouterr().out.split()[1]
    app = create_app(Settings.from_env({"EXECUTOR_HOME": str(home)}), ServerConfig())
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/api/v1/configs").json()["version"] == printed
