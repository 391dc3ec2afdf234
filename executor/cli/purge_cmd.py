"""``executor purge``: remove ended executions older than an age, with their logs and files."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from executor.cli.context import AppContext, pass_app
from executor.errors import UsageError


def older_than(text: str, option: str = "--older-than") -> datetime:
    """The moment an ISO-8601 age (``P30D``, ``PT12H``) before now.

    Raises:
        UsageError: not a duration, or not a positive one.
    """
    from executor.flow.durations import parse_duration

    try:
        age = parse_duration(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected an ISO-8601 duration such as P30D, P1DT12H or PT6H"
        ) from None
    if age.total_seconds() <= 0:
        raise UsageError(f"{option} {text!r}: must be more than zero")
    return datetime.now(UTC) - age


@click.command("purge")
@click.option(
    "--older-than",
    "age",
    required=True,
    metavar="DURATION",
    help="Remove executions that ended longer ago than this (ISO-8601: P30D, PT12H).",
)
@click.option("--namespace", default=None, help="Only this namespace and those below it.")
@click.option("--flow", "flow_id", default=None, help="Only this flow (needs --namespace).")
@click.option(
    "--states",
    default=None,
    metavar="STATE[,STATE...]",
    help="Only executions that ended in these states (SUCCESS, WARNING, FAILED, KILLED, "
    "CANCELLED, SKIPPED) [default: all of them].",
)
@click.option("--keep-logs", is_flag=True, help="Keep the log lines of what is removed.")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@pass_app
def purge(
    app: AppContext,
    age: str,
    namespace: str | None,
    flow_id: str | None,
    states: str | None,
    keep_logs: bool,
    dry_run: bool,
) -> None:
    """Remove executions that ended longer ago than --older-than: their records, task runs,
    log lines and stored files, in batches (running executions go on writing meanwhile).

    \b
    Executions that have not ended (queued, running, paused) are never removed.
    Namespace files and KV pairs are not touched.

    \b
    Examples:
      executor purge --older-than P30D --dry-run
      executor purge --older-than P7D --namespace company.team --states SUCCESS
    """
    from executor.store.purge import ExecutionSelection, PurgeParts, terminal_states

    ended_before = older_than(age)
    if flow_id is not None and namespace is None:
        raise UsageError("--flow needs --namespace (a flow id is unique within its namespace)")
    chosen = terminal_states([s for s in (states or "").split(",") if s.strip()], "--states")
    selection = ExecutionSelection(
        ended_before=ended_before, namespace=namespace, flow_id=flow_id, states=chosen
    )
    stores = app.stores()
    counts = stores.records.purge(
        selection, PurgeParts(logs=not keep_logs), stores.artifacts, dry_run=dry_run
    )
    verb = "would remove" if dry_run else "removed"
    logs = "log lines kept" if keep_logs else f"{counts.logs} log line(s)"
    click.echo(
        f"{verb} {counts.executions} execution(s) ended before "
        f"{ended_before.isoformat(timespec='seconds')}: {logs}, {counts.files} file(s)"
    )
