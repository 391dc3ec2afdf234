"""The server's flows as a ``FlowSource``: where a Subflow task finds the flow it names.

Flows are read from the store and loaded by the server's :class:`FlowParser` (in its parse
processes, each revision once).
"""

from __future__ import annotations

from executor.errors import FlowError
from executor.flow.loaded import LoadedFlow
from executor.server.flow_parser import FlowParser
from executor.store.flows import get_flow
from executor.store.local import LocalRecords


class StoredFlows:
    """The stored flows of the record database ``records``, loaded through ``parser``."""

    def __init__(self, records: LocalRecords, parser: FlowParser) -> None:
        self.records = records
        self.parser = parser

    def find(
        self, namespace: str, flow_id: str, revision: int | None = None, where: str | None = None
    ) -> LoadedFlow:
        """The flow's latest revision (or ``revision``), loaded.

        Raises:
            FlowError: the server has no such flow (or no such revision), or it does not load.
        """
        with self.records.connect() as store:
            stored = get_flow(store, namespace, flow_id, revision)
        if stored is None:
            asked = f" revision {revision}" if revision is not None else ""
            raise FlowError(
                f"Unable to find flow '{namespace}'.'{flow_id}'{asked} on this server",
                where=where,
            )
        return self.parser.load_stored(stored)
