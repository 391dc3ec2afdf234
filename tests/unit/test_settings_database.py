"""EXECUTOR_DATABASE_URL: where the records live."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.settings import Settings


def test_unset_means_sqlite_in_the_home(tmp_path: Path) -> None:
    """Without the variable the store is the SQLite file in EXECUTOR_HOME, as before."""
    settings = Settings.from_env({"EXECUTOR_HOME": str(tmp_path)})
    assert settings.db_path == tmp_path.resolve() / "executor.db"


def test_a_postgresql_url_is_the_store_and_never_shown(tmp_path: Path) -> None:
    """A postgresql:// URL becomes the store; the settings' repr does not show its password."""
    url = "postgresql://u:pw-secret@db:5432/records"
    settings = Settings.from_env({"EXECUTOR_HOME": str(tmp_path), "EXECUTOR_DATABASE_URL": url})
    assert settings.db_path == url
    assert "pw-secret" not in repr(settings)


def test_another_scheme_is_refused_with_the_expected_form(tmp_path: Path) -> None:
    """A URL of a database the executor does not speak to is a usage error saying what to use."""
    env = {"EXECUTOR_HOME": str(tmp_path), "EXECUTOR_DATABASE_URL": "mysql://u@h/db"}
    with pytest.raises(UsageError, match="postgresql://USER:PASSWORD@HOST:PORT/DATABASE"):
        Settings.from_env(env)
