"""Searching executions page by page, with the filters of Kestra's ``/executions/search``.

A search must cost the same on a history of a thousand executions and of a million, so every
filter is answered by an index whose entries come in the order of the list (newest first):

- a namespace (with the namespaces below it) or a text ``q`` first becomes the list of flows it
  matches, read from the ``executions_by_flow`` index (one lookup per distinct flow, not one per
  execution); each such flow is a *branch*, read from that index in order, and the branches are
  merged. A filter that matches no flow costs those lookups and nothing more.
- ``q`` matches the start of an execution id (a range of the id's index) or a part of a flow id
  or a namespace (the flows above);
- a flow id with a state becomes its flows too, one branch per flow and state
  (``executions_by_flow_state``);
- a flow id alone, a state, a time range: one branch over their own indexes.

The total is counted up to :data:`COUNT_CAP` past the page (``exact`` says whether it is all of
them), so no request counts a whole history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from executor.model import State
from executor.store.db import Store
from executor.store.dialect import Connection
from executor.store.queries import namespace_clause, prefix_upper
from executor.store.records import ts

COUNT_CAP = 1_000
"""Matches counted past the page asked; beyond it, the total says "more than"."""
MAX_BRANCHES = 64
"""More flows than this in a filter: one query filters the newest executions instead (so many
flows match that a page is found among the newest rows at once)."""


@dataclass(frozen=True)
class ExecutionFilter:
    """What to look for; every field left empty matches everything.

    Attributes:
        namespace: this namespace or one below it (``a.b`` matches ``a.b.c``).
        q: the start of an execution id, or text found in a flow id or a namespace.
        labels: every one of these labels, with these values.
        start_after: started at or after this time.
        start_before: started at or before this time.
    """

    namespace: str | None = None
    flow_id: str | None = None
    states: Sequence[State] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    q: str | None = None
    start_after: datetime | None = None
    start_before: datetime | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of a search.

    Attributes:
        ids: the executions of the page, newest first.
        total: how many match, counted up to the page plus :data:`COUNT_CAP`.
        exact: ``total`` is every match; otherwise more than ``total`` match.
    """

    ids: list[str]
    total: int
    exact: bool


@dataclass(frozen=True)
class _Branch:
    where: list[str]
    args: list[Any]


def _common(f: ExecutionFilter, sql: Connection, *, states: bool = True) -> _Branch:
    """The filters every branch applies (those that never choose an index; ``states=False``:
    the branches are split by state)."""
    where: list[str] = []
    args: list[Any] = []
    if f.states and states:
        where.append(f"state IN ({','.join('?' * len(f.states))})")
        args += [s.value for s in f.states]
    label, label_key = sql.json_key("labels")
    for key, value in f.labels.items():
        where.append(f"{label} = ?")
        args += [label_key(key), value]
    if f.start_after is not None:
        where.append("start_date >= ?")
        args.append(ts(f.start_after))
    if f.start_before is not None:
        where.append("start_date <= ?")
        args.append(ts(f.start_before))
    if f.parent_id:
        where.append(f"{sql.json_path('extra', 'parentId')} = ?")
        args.append(f.parent_id)
    return _Branch(where, args)


def distinct_flows(store: Store, namespace: str | None = None) -> list[tuple[str, str]]:
    """Every (namespace, flow id) that has executions (under ``namespace`` when given), sorted.

    A loose scan of ``executions_by_flow``: each step seeks the next flow of the namespace, or
    the first flow of the next namespace (a few index lookups per flow, however many executions
    each has).
    """
    sql = store.dialect
    ns = sql.bytewise("namespace")
    bounds, args = "", list[Any]()
    if namespace:
        clause, args = namespace_clause(sql, namespace)
        bounds = " AND " + clause
    first_ns = f"(SELECT min({ns}) FROM executions WHERE 1 = 1{bounds})"
    next_flow = "(SELECT min(flow_id) FROM executions WHERE {ns} = p.ns AND flow_id > p.flow)"
    next_flow = next_flow.format(ns=ns)
    next_ns = f"(SELECT min({ns}) FROM executions WHERE {ns} > p.ns{bounds})"
    rows = store.read(
        "WITH RECURSIVE p(ns, flow) AS ("
        f" SELECT {first_ns}, (SELECT min(flow_id) FROM executions WHERE {ns} = {first_ns})"
        " UNION ALL SELECT"
        f" CASE WHEN {next_flow} IS NOT NULL THEN p.ns ELSE {next_ns} END,"
        f" coalesce({next_flow},"
        f" (SELECT min(flow_id) FROM executions WHERE {ns} = {next_ns}))"
        " FROM p WHERE p.ns IS NOT NULL)"
        " SELECT ns, flow FROM p WHERE ns IS NOT NULL",
        [*args, *args, *args, *args],
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def _branches(store: Store, f: ExecutionFilter) -> list[_Branch] | None:
    """The disjoint branches of the search, each served in order by one index (``None``: too
    many flows match, search the newest executions with the whole filter instead)."""
    sql = store.dialect
    common = _common(f, sql)
    if not (f.namespace or f.q or (f.flow_id and f.states)):
        where, args = list(common.where), list(common.args)
        if f.flow_id:
            where.insert(0, "flow_id = ?")
            args.insert(0, f.flow_id)
        return [_Branch(where, args)]
    pairs = distinct_flows(store, f.namespace)
    if f.flow_id:
        pairs = [p for p in pairs if p[1] == f.flow_id]
    if f.q:
        pairs = [p for p in pairs if f.q in p[0] or f.q in p[1]]
    states: list[State | None] = list(dict.fromkeys(f.states)) or [None]
    if len(pairs) * len(states) > MAX_BRANCHES:
        return None
    ns = sql.bytewise("namespace")
    # one branch per flow (and per state asked): an equality on each column of an index but
    # its last, the start date, so each branch comes in the order of the list
    split = _common(f, sql, states=False)
    branches = [
        _Branch(
            [f"{ns} = ?", "flow_id = ?", *(["state = ?"] if state else []), *split.where],
            [p[0], p[1], *([state.value] if state else []), *split.args],
        )
        for p in pairs
        for state in states
    ]
    if f.q:  # executions whose id starts with q, of the flows not matched above
        where, args = _id_prefix(sql, f.q)
        if f.namespace:
            clause, clause_args = namespace_clause(sql, f.namespace)
            where.append(clause)
            args += clause_args
        if f.flow_id:
            where.append("flow_id = ?")
            args.append(f.flow_id)
        for pair in pairs:
            where.append(f"NOT ({ns} = ? AND flow_id = ?)")
            args += list(pair)
        branches.append(_Branch(where + common.where, args + common.args))
    return branches


def _id_prefix(sql: Connection, prefix: str) -> tuple[list[str], list[Any]]:
    column = sql.bytewise("id")
    where, args = [f"{column} >= ?"], [prefix]
    upper = prefix_upper(prefix)
    if upper is not None:
        where.append(f"{column} < ?")
        args.append(upper)
    return where, args


def _newest_filtered(f: ExecutionFilter, sql: Connection) -> _Branch:
    """The whole filter as one branch (when it matches so many flows that a page is found
    among the newest executions at once)."""
    common = _common(f, sql)
    where, args = list(common.where), list(common.args)
    if f.namespace:
        clause, clause_args = namespace_clause(sql, f.namespace)
        where.append(clause)
        args += clause_args
    if f.flow_id:
        where.append("flow_id = ?")
        args.append(f.flow_id)
    if f.q:
        id_where, id_args = _id_prefix(sql, f.q)
        found = [sql.contains(column) for column in ("flow_id", "namespace")]
        where.append(f"(({' AND '.join(id_where)}) OR {' OR '.join(found)})")
        args += [*id_args, f.q, f.q]
    return _Branch(where, args)


def _where(branch: _Branch) -> str:
    return (" WHERE " + " AND ".join(branch.where)) if branch.where else ""


def search_executions(store: Store, f: ExecutionFilter, *, page: int, size: int) -> SearchPage:
    """One page of matching executions (newest first) and how many match.

    Args:
        page: the page, from 1.
        size: executions per page.
    """
    sql = store.dialect
    branches = _branches(store, f)
    if branches is None:
        branches = [_newest_filtered(f, sql)]
    if not branches:
        return SearchPage([], 0, True)
    offset = (page - 1) * size
    cap = offset + size + COUNT_CAP
    order = f"start_date DESC, {sql.insertion_order} DESC"
    args: list[Any] = []
    if len(branches) == 1:
        rows = store.read(
            f"SELECT id FROM executions{_where(branches[0])} ORDER BY {order} LIMIT ? OFFSET ?",
            [*branches[0].args, size, offset],
        )
    else:
        parts = []
        for number, branch in enumerate(branches):
            parts.append(
                f"SELECT * FROM (SELECT id, start_date, {sql.insertion_order} AS o"
                f" FROM executions{_where(branch)} ORDER BY {order} LIMIT ?) AS b{number}"
            )
            args += [*branch.args, offset + size]
        rows = store.read(
            f"SELECT id FROM ({' UNION ALL '.join(parts)}) AS merged"
            " ORDER BY start_date DESC, o DESC LIMIT ? OFFSET ?",
            [*args, size, offset],
        )
    counted = [f"SELECT 1 AS one FROM executions{_where(b)}" for b in branches]
    count_args = [a for b in branches for a in b.args]
    total = int(
        store.read(
            f"SELECT count(*) FROM (SELECT one FROM ({' UNION ALL '.join(counted)}) AS matches"
            " LIMIT ?) AS capped",
            [*count_args, cap + 1],
        )[0][0]
    )
    return SearchPage([str(r[0]) for r in rows], min(total, cap), total <= cap)
