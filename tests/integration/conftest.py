"""Integration fixtures: every test's own executions leave no container, volume or network."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executor.engine import labels
from tests.integration.helpers import our_resources
from tests.integration.server_helpers import LiveServer


@pytest.fixture
def executions_leave_nothing(home: Path) -> Iterator[None]:
    """After the test, no resource of an execution recorded in its home remains."""
    yield
    db = home / "executor.db"
    if not db.exists():
        return
    from executor.store.db import Store

    with Store(db) as store:
        ids = [e.id for e in store.list_executions()]
    left = [res for eid in ids for res in our_resources(**{labels.EXECUTION: eid})]
    if left:
        from executor.engine.docker.backend import DockerBackend
        from executor.engine.docker.client import connect

        engine = DockerBackend(connect(os.environ.get("DOCKER_HOST")))
        for res in left:
            engine.remove_resource(res)
    assert not left, f"resources left behind: {[(r.kind, r.name) for r in left]}"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """CLI processes a test starts; any still running at the end are interrupted, then killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def server(home: Path, executions_leave_nothing: None) -> Iterator[LiveServer]:
    """An ``executor server`` (2 workers) on the test's home; stopped, and its executions'
    resources checked gone, after the test."""
    with LiveServer(home) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for the UI tests of one module."""
    from playwright.sync_api import sync_playwright

    from tests.integration.browser import launch

    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()
