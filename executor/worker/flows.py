"""The flows that Subflow tasks name, as a worker finds them: on the server, through its API."""

from __future__ import annotations

import threading
from pathlib import Path

from executor.errors import FlowError, ServerError
from executor.flow.loader import LoadedFlow, load_flow_text
from executor.worker.client import WorkerClient


class ServerFlows:
    """The server's stored flows as a ``FlowSource`` for one run (each flow fetched once in it:
    the check before the run and the Subflow tasks see the same revision)."""

    def __init__(self, client: WorkerClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, int | None], LoadedFlow] = {}

    def find(
        self, namespace: str, flow_id: str, revision: int | None = None, where: str | None = None
    ) -> LoadedFlow:
        """The flow's latest revision (or ``revision``), loaded.

        Raises:
            FlowError: the server has no such flow (or no such revision), or cannot be asked.
        """
        key = (namespace, flow_id, revision)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
        try:
            found = self.client.flow(namespace, flow_id, revision)
        except ServerError as exc:
            asked = f" revision {revision}" if revision is not None else ""
            problem = "" if exc.status == 404 else f": {exc.message}"
            raise FlowError(
                f"Unable to find flow '{namespace}'.'{flow_id}'{asked} on the server{problem}",
                where=where,
            ) from None
        loaded = load_flow_text(found.source, Path(f"{namespace}.{flow_id}@{found.revision}"))
        with self._lock:
            self._loaded[key] = loaded
        return loaded
