"""What every command shares: settings, and the engine connected only when a command needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
