"""What every command shares: settings, and the ``-i NAME=VALUE`` option (engines: ``app``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from executor.settings import Settings

if TYPE_CHECKING:
    from executor.store.local import LocalServices


@dataclass
class AppContext:
    """Built once per invocation by the top-level group."""

    settings: Settings
    json_logs: bool = False
    _stores: LocalServices | None = field(default=None, repr=False)

    def stores(self) -> LocalServices:
        """This host's stores, built once, on first use (a command that needs none opens none).

        Raises:
            UsageError: the records' URL names no database of this host.
        """
        if self._stores is None:
            from executor.services import local_services

            self._stores = local_services(self.settings)
        return self._stores


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
