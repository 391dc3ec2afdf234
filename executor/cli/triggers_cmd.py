"""``executor triggers ls|enable|disable|backfill``: the triggers of the flows a server keeps.

On the home's store by default (the server reads the change at its next pass), or on a server's
API with ``--server URL`` (Kestra's trigger API: an ``executor server`` or Kestra itself).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from executor.cli.context import AppContext, pass_app
from executor.errors import NotFoundError, UsageError
from executor.flow.loaded import LoadedFlow
from executor.store.db import Store
from executor.store.flows import StoredFlow

SERVER_HELP = (
    "Act on this server's API (http://HOST:PORT) instead of the home's store."
    " Credentials: KESTRA_USER/KESTRA_PASSWORD or KESTRA_API_TOKEN."
)


@click.group("triggers")
def triggers() -> None:
    """The Schedule, Webhook and Flow triggers of the flows a server keeps."""


def _load(stored: StoredFlow) -> LoadedFlow:
    from executor.flow.loader import load_flow_text

    return load_flow_text(stored.source, Path(f"{stored.namespace}.{stored.id}"))


def _local_rows(store: Store, namespace: str | None) -> list[dict[str, Any]]:
    from executor.server.trigger_rows import kestra_json, trigger_rows

    return [kestra_json(r) for r in trigger_rows(store, _load, namespace=namespace)]


def _remote(url: str) -> Any:
    from executor.cli.remote import RemoteServer

    return RemoteServer(url)


@triggers.command("ls")
@click.option("--namespace", help="Only the triggers of this namespace (and those below it).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (Kestra's shape).")
@click.option("--server", "url", default=None, metavar="URL", help=SERVER_HELP)
@pass_app
def ls(app: AppContext, namespace: str | None, as_json: bool, url: str | None) -> None:
    """List triggers: flow, id, type, cron, next and last tick, status, backfill progress.

    \b
    The server writes this state as it runs (`executor server`); a flow pushed
    while no server runs shows up once one has started.
    """
    if url:
        params = {"size": 1000, **({"namespace": namespace} if namespace else {})}
        rows = _remote(url).request("GET", "/triggers/search", params=params).json()["results"]
    else:
        from executor.cli.records_cmd import open_store

        with open_store(app) as store:
            rows = _local_rows(store, namespace)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no triggers" + (" in this namespace" if namespace else ""), err=True)
        return
    table = [_cells(row["triggerContext"]) for row in rows]
    header = ("FLOW", "TRIGGER", "TYPE", "CRON", "NEXT (UTC)", "LAST (UTC)", "BACKFILL", "STATUS")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header) - 1)]
    for cells in [header, *table]:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        click.echo("  ".join([*padded, cells[-1]]))


def _cells(context: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"{context['namespace']}.{context['flowId']}",
        context["triggerId"],
        str(context.get("type") or "-").rsplit(".", 1)[-1],
        context.get("cron") or "-",
        _shown(context.get("nextExecutionDate")),
        _shown(context.get("date")),
        _progress(context.get("backfill")),
        _status(context),
    )


def _shown(stamp: str | None) -> str:
    return stamp.replace("T", " ").removesuffix("Z")[:19] if stamp else "-"


def _progress(backfill: dict[str, Any] | None) -> str:
    if not backfill:
        return "-"
    done = f"{backfill.get('submitted', 0)}/{backfill.get('total', '?')}"
    if backfill.get("finished"):
        return f"{done} done"
    return f"{done} paused" if backfill.get("paused") else f"{done} running"


def _status(context: dict[str, Any]) -> str:
    if not context.get("disabled"):
        return "enabled"
    why = context.get("why")
    if context.get("stopped"):
        return f"stopped ({context['stopped']})"
    return f"disabled ({why})" if why else "disabled"


def _key_args(func: Any) -> Any:
    for decorator in reversed(
        (
            click.argument("namespace"),
            click.argument("flow_id", metavar="FLOW_ID"),
            click.argument("trigger_id", metavar="TRIGGER_ID"),
        )
    ):
        func = decorator(func)
    return func


def _switch(app: AppContext, key: tuple[str, str, str], off: bool, url: str | None) -> None:
    namespace, flow_id, trigger_id = key
    if url:
        body = {"namespace": namespace, "flowId": flow_id, "triggerId": trigger_id}
        _remote(url).request("PUT", "/triggers", json={**body, "disabled": off})
    else:
        from executor.cli.records_cmd import open_store
        from executor.store.triggers import switch

        with open_store(app) as store:
            if not switch(store, key, off):
                raise NotFoundError(_unknown(key))
    click.echo(f"{namespace}.{flow_id} trigger '{trigger_id}' {'disabled' if off else 'enabled'}")


def _unknown(key: tuple[str, str, str]) -> str:
    return (
        f"no trigger '{key[2]}' of flow {key[0]}.{key[1]} in this home's store"
        " (`executor triggers ls` lists them; a server must have seen the flow)"
    )


@triggers.command("disable")
@_key_args
@click.option("--server", "url", default=None, metavar="URL", help=SERVER_HELP)
@pass_app
def disable(
    app: AppContext, namespace: str, flow_id: str, trigger_id: str, url: str | None
) -> None:
    """Disable a trigger: it starts nothing until enabled (whatever the flow says)."""
    _switch(app, (namespace, flow_id, trigger_id), True, url)


@triggers.command("enable")
@_key_args
@click.option("--server", "url", default=None, metavar="URL", help=SERVER_HELP)
@pass_app
def enable(app: AppContext, namespace: str, flow_id: str, trigger_id: str, url: str | None) -> None:
    """Enable a trigger disabled with `disable` (ticks missed meanwhile do not run)."""
    _switch(app, (namespace, flow_id, trigger_id), False, url)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    found = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} {value!r}: expected NAME=VALUE")
        found[name] = text
    return found


@triggers.command("backfill")
@_key_args
@click.option("--start", help="The first date to backfill (ISO-8601, e.g. 2024-01-01T00:00:00Z).")
@click.option("--end", help="The last date to backfill [default: now].")
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input value.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label to add.")
@click.option("--pause", "action", flag_value="pause", help="Pause the running backfill.")
@click.option("--resume", "action", flag_value="unpause", help="Resume a paused backfill.")
@click.option("--delete", "action", flag_value="delete", help="Drop the backfill.")
@click.option("--server", "url", default=None, metavar="URL", help=SERVER_HELP)
@pass_app
def backfill(
    app: AppContext,
    namespace: str,
    flow_id: str,
    trigger_id: str,
    start: str | None,
    end: str | None,
    inputs: tuple[str, ...],
    labels: tuple[str, ...],
    action: str | None,
    url: str | None,
) -> None:
    """Run a Schedule trigger's ticks between --start and --end, oldest first.

    \b
    One execution per tick, labelled system.backfill=true, with trigger.date the
    tick's date; the server queues them as the flow's concurrency allows.
    With --pause, --resume or --delete: act on the running backfill instead.
    """
    key = (namespace, flow_id, trigger_id)
    body: dict[str, Any] = {"namespace": namespace, "flowId": flow_id, "triggerId": trigger_id}
    if action is None:
        if not start:
            raise UsageError("--start is required to start a backfill")
        body["backfill"] = {
            "start": start,
            "end": end,
            "inputs": _pairs(inputs, "--input"),
            "labels": _pairs(labels, "--label"),
        }
    if url:
        server = _remote(url)
        if action is None:
            answer = server.request("PUT", "/triggers", json=body)
        else:
            answer = server.request("POST", f"/triggers/backfill/{action}", json=body)
        context = answer.json()["triggerContext"]
    else:
        context = _local_backfill(app, key, body.get("backfill"), action)
    shown = _progress(context.get("backfill"))
    click.echo(f"{namespace}.{flow_id} trigger '{trigger_id}': backfill {shown}")


def _local_backfill(
    app: AppContext, key: tuple[str, str, str], asked: Any, action: str | None
) -> dict[str, Any]:
    from datetime import UTC, datetime

    from executor.cli.records_cmd import open_store
    from executor.flow.triggers import ScheduleTrigger
    from executor.server.backfills import loads, new_backfill
    from executor.store.flows import get_flow
    from executor.store.triggers import get_state, set_backfill

    with open_store(app) as store:
        state = get_state(store, *key)
        stored = get_flow(store, key[0], key[1])
        if state is None or stored is None:
            raise NotFoundError(_unknown(key))
        running = loads(state.backfill)
        if action is None:
            trigger = next((t for t in _load(stored).flow.triggers or () if t.id == key[2]), None)
            if not isinstance(trigger, ScheduleTrigger):
                raise UsageError(f"trigger '{key[2]}': only a Schedule trigger can be backfilled")
            if running is not None and not running.finished:
                raise UsageError(
                    f"a backfill of trigger '{key[2]}' is already running"
                    f" ({running.submitted}/{running.total}): --delete it first"
                )
            text: str | None = new_backfill(asked, trigger.schedule(), datetime.now(UTC)).dumps()
        else:
            if running is None:
                raise NotFoundError(f"trigger '{key[2]}' has no backfill")
            text = (
                None
                if action == "delete"
                else running.model_copy(update={"paused": action == "pause"}).dumps()
            )
        if not set_backfill(store, key, text, expected=state.backfill):
            raise UsageError("the backfill moved on meanwhile: try again")
        found = loads(text)
    return {"backfill": found.to_json() if found else None}
