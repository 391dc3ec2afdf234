"""What every command shares: settings, and the ``-i NAME=VALUE`` option (engines: ``app``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from executor.settings import Settings


@dataclass
class AppContext:
    """Built once per invocation by the top-level group."""

    settings: Settings
    json_logs: bool = False


pass_app = click.make_pass_decorator(AppContext)
F = TypeVar("F", bound=Callable[..., Any])


def input_option(help_text: str) -> Callable[[F], F]:
    """``-i/--input NAME=VALUE``, repeatable (``run`` and ``resume``)."""
    return click.option(
        "-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE", help=help_text
    )


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as a mapping (raises UsageError for a pair without ``=``)."""
    from executor.errors import UsageError

    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"-i expects NAME=VALUE, got {pair!r}")
        values[name] = value
    return values
