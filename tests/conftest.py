"""Shared fixtures: a private EXECUTOR_HOME per test, and the leak check for the whole session."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# pytest-xdist's worker processes ignore SIGINT, and a process started with SIGINT ignored keeps
# ignoring it (Python installs its KeyboardInterrupt handler only where SIGINT is not ignored):
# the executors the tests interrupt must get Ctrl-C as a user's terminal gives it.
signal.signal(signal.SIGINT, signal.default_int_handler)

DATA = Path(__file__).parent / "data"
FLOWS = DATA / "flows"


def _engine_answers() -> bool:
    try:
        from executor.engine.docker.client import connect

        connect(os.environ.get("DOCKER_HOST"), timeout=10)
    except Exception:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests run last; without an engine they fail in CI and skip on a laptop."""
    items.sort(key=lambda item: 1 if item.get_closest_marker("integration") else 0)
    if any(item.get_closest_marker("integration") for item in items) and not _engine_answers():
        in_ci = bool(os.environ.get("CI"))
        for item in items:
            if item.get_closest_marker("integration"):
                if in_ci:
                    item.add_marker(pytest.mark.xfail(reason="", run=False, strict=True))
                else:
                    item.add_marker(
                        pytest.mark.skip(
                            reason="no Docker engine answers; run `make engine` (CI fails instead)"
                        )
                    )
        if in_ci:
            raise pytest.UsageError("CI needs a Docker engine: run `make engine` first")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private EXECUTOR_HOME so tests never touch the user's state."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("EXECUTOR_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A running PostgreSQL (see tests/postgres.py), its admin URL."""
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test only."""
    from tests.postgres import fresh_database

    with fresh_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's record store lives: a new SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "home" / "executor.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def shared_images_lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The images lock written by `make images`, copied for tests that need resolved images."""
    return tmp_path_factory.mktemp("lock")


def copy_flow(name: str, dest: Path) -> Path:
    """A copy of a test flow in ``dest`` (so a test can edit it freely)."""
    target = dest / name
    shutil.copy(FLOWS / name, target)
    return target


@pytest.fixture(scope="session", autouse=True)
def no_leftovers() -> Iterator[None]:
    """After the session no labelled container, volume or network of ours may remain.

    Only resources made during this session whose owner is this process or has exited count:
    another executor running on the same engine is left alone.
    """
    import time

    started = time.time()
    yield
    if not _engine_answers():
        return
    from executor.engine import labels
    from executor.engine.docker.backend import DockerBackend
    from executor.engine.docker.client import connect

    engine = DockerBackend(connect(os.environ.get("DOCKER_HOST")))

    def leftovers() -> list[Any]:
        return [
            res
            for res in engine.list_resources({labels.MANAGED: "true"})
            if float(res.labels.get(labels.CREATED, "0") or 0) >= started
            and (
                res.labels.get(labels.OWNER_PID) == str(os.getpid())
                or labels.owner_is_gone(res.labels)
            )
        ]

    left = leftovers()
    # test modules run side by side (scripts/run-tests.sh): a test of another process may be
    # between a run it killed on purpose and its own cleanup; what is still there after a
    # while is a leak
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        time.sleep(2)
        still = {(r.kind, r.name) for r in leftovers()}
        left = [r for r in left if (r.kind, r.name) in still]
    for res in left:
        engine.remove_resource(res)
    assert not left, f"resources left behind by the tests: {[(r.kind, r.name) for r in left]}"
