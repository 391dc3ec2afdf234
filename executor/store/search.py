"""Searching executions page by page, with the filters of Kestra's ``/executions/search``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from executor.model import State
from executor.store.db import Store
from executor.store.dialect import Connection
from executor.store.records import ts


@dataclass(frozen=True)
class ExecutionFilter:
    """What to look for; every field left empty matches everything.

    Attributes:
        namespace: this namespace or one below it (``a.b`` matches ``a.b.c``).
        q: text found in the id, the flow id or the namespace.
        labels: every one of these labels, with these values.
    """

    namespace: str | None = None
    flow_id: str | None = None
    states: Sequence[State] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    q: str | None = None
    start_after: datetime | None = None
    start_before: datetime | None = None
    parent_id: str | None = None


def _where(f: ExecutionFilter, sql: Connection) -> tuple[str, list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if f.namespace:
        where.append("(namespace = ? OR substr(namespace, 1, ?) = ?)")
        args += [f.namespace, len(f.namespace) + 1, f.namespace + "."]
    if f.flow_id:
        where.append("flow_id = ?")
        args.append(f.flow_id)
    if f.states:
        where.append(f"state IN ({','.join('?' * len(f.states))})")
        args += [s.value for s in f.states]
    label, label_key = sql.json_key("labels")
    for key, value in f.labels.items():
        where.append(f"{label} = ?")
        args += [label_key(key), value]
    if f.q:
        found = [sql.contains(column) for column in ("id", "flow_id", "namespace")]
        where.append(f"({' OR '.join(found)})")
        args += [f.q, f.q, f.q]
    if f.start_after is not None:
        where.append("start_date >= ?")
        args.append(ts(f.start_after))
    if f.start_before is not None:
        where.append("start_date <= ?")
        args.append(ts(f.start_before))
    if f.parent_id:
        where.append(f"{sql.json_path('extra', 'parentId')} = ?")
        args.append(f.parent_id)
    return (" WHERE " + " AND ".join(where)) if where else "", args


def search_executions(
    store: Store, f: ExecutionFilter, *, page: int, size: int
) -> tuple[list[str], int]:
    """Ids of one page of matching executions (newest first) and how many match in all.

    Args:
        page: the page, from 1.
        size: executions per page.
    """
    where, args = _where(f, store.dialect)
    total = int(store.read(f"SELECT count(*) FROM executions{where}", args)[0][0])
    rows = store.read(
        f"SELECT id FROM executions{where}"
        f" ORDER BY start_date DESC, {store.dialect.insertion_order} DESC LIMIT ? OFFSET ?",
        [*args, size, (page - 1) * size],
    )
    return [str(r[0]) for r in rows], total
