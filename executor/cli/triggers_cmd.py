"""``executor triggers ls``: the server's triggers as its database knows them."""

from __future__ import annotations

import json

import click

from executor.cli.context import AppContext, pass_app
from executor.store.records import parse_ts
from executor.store.triggers import TriggerState, list_states


@click.group("triggers")
def triggers() -> None:
    """The Schedule and Webhook triggers of the flows a server keeps."""


@triggers.command("ls")
@click.option("--namespace", help="Only the triggers of this namespace.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of triggers.")
@pass_app
def ls(app: AppContext, namespace: str | None, as_json: bool) -> None:
    """List triggers: flow, id, type, cron, next and last tick, and whether they are disabled.

    \b
    The server writes this state as it runs (`executor server`); a flow pushed
    while no server runs shows up once one has started.
    """
    from executor.cli.records_cmd import open_store

    with open_store(app) as store:
        found = [s for s in list_states(store) if namespace in (None, s.namespace)]
    if as_json:
        click.echo(json.dumps([_json(s) for s in found], indent=2))
        return
    if not found:
        click.echo("no triggers" + (" in this namespace" if namespace else ""), err=True)
        return
    rows = [
        (
            f"{s.namespace}.{s.flow_id}",
            s.trigger_id,
            s.type.rsplit(".", 1)[-1],
            s.cron or "-",
            _shown(s.next_date) if not (s.disabled or s.stopped) else "-",
            _shown(s.last_date),
            _status(s),
        )
        for s in found
    ]
    header = ("FLOW", "TRIGGER", "TYPE", "CRON", "NEXT (UTC)", "LAST (UTC)", "STATUS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


def _shown(stamp: str | None) -> str:
    return parse_ts(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def _status(state: TriggerState) -> str:
    if state.stopped:
        return f"stopped ({state.stopped})"
    return "disabled" if state.disabled else "enabled"


def _json(state: TriggerState) -> dict[str, object]:
    return {
        "namespace": state.namespace,
        "flowId": state.flow_id,
        "triggerId": state.trigger_id,
        "type": state.type,
        "cron": state.cron,
        "nextExecutionDate": state.next_date,
        "date": state.last_date,
        "executionId": state.last_execution_id,
        "disabled": state.disabled or bool(state.stopped),
        "stopped": state.stopped,
    }
