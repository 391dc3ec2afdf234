"""The one name rule: what a namespace, a flow or input id, a task id and a KV key may be.

Kestra's rules, written once: the flow model validates with these patterns, the stores and
the CLI with these functions, so a name one of them accepts is never refused by another.
"""

from __future__ import annotations

import re

from executor.errors import UsageError

NAMESPACE = r"^[a-z0-9](?:[a-z0-9_-]|\.(?:[a-z0-9_-]|$))*$"
"""Lowercase letters, digits, ``.``, ``_``, ``-``; no empty part (``a..b``): it is a path too."""

NAME = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
"""Flow ids, input ids, KV keys: letters, digits, ``.``, ``_``, ``-``."""

TASK_ID = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
"""Task and trigger ids: no ``.`` (they stand in ``outputs.<id>.<name>``)."""

_NAMESPACE = re.compile(NAMESPACE)
_NAME = re.compile(NAME)


def is_namespace(name: str) -> bool:
    """Whether ``name`` is a valid namespace."""
    return _NAMESPACE.match(name) is not None


def check_namespace(name: str) -> str:
    """``name`` when it is a valid namespace (``company.team``).

    Raises:
        UsageError: not lowercase letters, digits, dots, dashes and underscores.
    """
    if not is_namespace(name):
        raise UsageError(f"{name!r} is not a namespace (lowercase letters, digits, '.', '_', '-')")
    return name


def check_key(key: str) -> str:
    """``key`` when Kestra would accept it as a KV key.

    Raises:
        UsageError: naming the rule.
    """
    if not _NAME.match(key):
        raise UsageError(
            f"{key!r} is not a KV key (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit)"
        )
    return key
