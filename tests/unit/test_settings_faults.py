"""Settings of fault handling: the subflow depth, the patience with an unreachable store, the
server's recovery interval; defaults, overrides, readable refusals."""

from __future__ import annotations

import pytest

from executor.errors import UsageError
from executor.settings import Settings

HOME = {"EXECUTOR_HOME": "/tmp/x"}


def test_the_defaults() -> None:
    """Ten subflows deep; an hour for the store to come back, tries at most 10 s apart; a
    look for lost runs every 30 s."""
    settings = Settings.from_env(HOME)
    assert settings.max_subflow_depth == 10
    assert settings.store_patience_seconds == 3600
    assert settings.store_retry_wait_seconds == 10
    assert settings.recovery_interval_seconds == 30


def test_overrides_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            **HOME,
            "EXECUTOR_MAX_SUBFLOW_DEPTH": "3",
            "EXECUTOR_STORE_PATIENCE": "90",
            "EXECUTOR_STORE_RETRY_WAIT": "0.5",
            "EXECUTOR_RECOVERY_INTERVAL": "2",
        }
    )
    assert settings.max_subflow_depth == 3
    assert settings.store_patience_seconds == 90
    assert settings.store_retry_wait_seconds == 0.5
    assert settings.recovery_interval_seconds == 2


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("EXECUTOR_MAX_SUBFLOW_DEPTH", "-1"),
        ("EXECUTOR_MAX_SUBFLOW_DEPTH", "deep"),
        ("EXECUTOR_STORE_PATIENCE", "-5"),
        ("EXECUTOR_STORE_PATIENCE", "nan"),
        ("EXECUTOR_STORE_RETRY_WAIT", "0"),
        ("EXECUTOR_RECOVERY_INTERVAL", "soon"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_variable(name: str, text: str) -> None:
    with pytest.raises(UsageError, match=f"{name}={text!r}"):
        Settings.from_env({**HOME, name: text})
