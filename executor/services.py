"""The half of the composition root that builds the stores (``app.py`` re-exports it).

One factory, like Celery's ``app/backends.py``: a small alias table from the URL scheme of where
the records live to the module that opens every store, imported only when chosen. The CLI, the
server and the worker all build their stores here (a worker with its server's URL and token);
a run receives them through ``RunContext`` and nothing else opens a store by its path. Kept apart
from ``app.py`` so that commands that only read the stores (``executor kv``, ``executions``)
start without loading the engine and the flow models.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from executor.errors import UsageError
from executor.settings import Settings
from executor.store.api import Held, Services

if TYPE_CHECKING:
    from executor.store.local import LocalServices

STORES: dict[str, str] = {
    "sqlite": "executor.store.local:open_local",
    "postgresql": "executor.store.local:open_local",
    "postgres": "executor.store.local:open_local",
    "postgresql+psycopg": "executor.store.local:open_local",
    "http": "executor.worker.remote:open_remote",
    "https": "executor.worker.remote:open_remote",
}
"""URL scheme of the records -> ``module:function`` that opens every store; only the module
chosen is imported (SQLite start-up loads neither a database driver nor an HTTP client)."""


class OpenStores(Protocol):
    """Opens the stores: the records at ``target`` (a server's URL for ``held`` runs), the file
    stores of this host, the namespace-file versions overlay workspaces mount (``in_use``)."""

    def __call__(
        self,
        settings: Settings,
        target: Path | str,
        held: Held | None,
        in_use: Callable[[], set[Path]],
    ) -> Services: ...


def scheme_of(target: Path | str) -> str:
    """The scheme that chooses the stores: ``sqlite`` for a file, a URL's own otherwise."""
    if isinstance(target, Path):
        return "sqlite"
    return target.split("://", 1)[0].lower() if "://" in target else ""


def _opener(scheme: str) -> OpenStores:
    found = STORES.get(scheme)
    if found is None:
        raise UsageError(
            f"no store for {scheme or 'this'!r} URLs: the records live in a database "
            f"({', '.join(s for s in STORES if not s.startswith('http'))}) or, for a worker's "
            "run, on a server (http, https)"
        )
    module, name = found.split(":")
    opener: OpenStores = getattr(importlib.import_module(module), name)
    return opener


def services(settings: Settings, held: Held | None = None) -> Services:
    """Every store a run reaches, built once (the CLI's run, a server, a worker's run).

    ``held``: a run a worker holds on a server: its stores are the server's, through its API.

    Raises:
        UsageError: no store speaks the scheme of the records' URL.
    """
    from executor.engine.overlay import lowers_in_use

    target: Path | str = held.server if held is not None else settings.db_path
    in_use = functools.partial(lowers_in_use, settings.overlays_dir)
    return _opener(scheme_of(target))(settings, target, held, in_use)


def local_services(settings: Settings) -> LocalServices:
    """This host's own stores, as their own classes: what the CLI and the server own.

    Raises:
        UsageError: the records are not a database of this host.
    """
    from executor.store.local import LocalServices

    built = services(settings)
    if not isinstance(built, LocalServices):
        raise UsageError(f"the records at {built.records.where} are not a database of this host")
    return built
