"""What every command shares: settings, and the engine connected only when a command needs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from executor.settings import Settings


@dataclass
class AppContext:
    """Built once per invocation by the top-level group."""

    settings: Settings
    json_logs: bool = False
    _client: Any = field(default=None, repr=False)

    def docker_client(self) -> Any:
        """The connected ``docker.DockerClient`` (raises EngineUnavailable when none answers)."""
        if self._client is None:
            from executor.engine.client import connect

            self._client = connect(self.settings.docker_host)
        return self._client


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
