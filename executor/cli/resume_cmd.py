"""``executor resume ID``: let a paused execution go on, with the inputs its Pause asks for."""

from __future__ import annotations

import time

import click

from executor.cli.context import AppContext, input_option, parse_inputs, pass_app
from executor.cli.records_cmd import open_store
from executor.errors import ExecutorError, UsageError
from executor.model import State
from executor.run.resume_check import check_resume

_POLL = 0.2


@click.command("resume")
@click.argument("execution_id", metavar="ID")
@input_option("An onResume input of the Pause; repeat for several.")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the paused executor to take the request.",
)
@pass_app
def resume(
    app: AppContext, execution_id: str, inputs: tuple[str, ...], wait_seconds: float
) -> None:
    """Resume execution ID, PAUSED by a Pause task without a duration.

    The inputs are checked against the Pause's `onResume` first: a missing or
    badly typed one is refused at once (exit 2) and nothing is asked. The executor
    that runs the execution (in another terminal, in the background, or a server)
    then picks the request up and goes on; the Pause's outputs hold the inputs as
    `outputs.<pause id>.onResume.<name>`.

    \b
    Example:
      executor resume 5Iw8dTlC0aWbGhWTYGDzd -i approved=true -i reason="looks good"
    """
    given = parse_inputs(inputs)
    with open_store(app) as store:
        full_id = store.resolve_id(execution_id)
        # checked before anything is stored: a missing or bad input is said at once (exit 2)
        check = check_resume(store.get_execution(full_id).execution, given)
        if not check.ok:
            raise UsageError(check.message(command_line=True))
        store.request_resume(full_id, given)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if store.execution_state(full_id) != State.PAUSED:
                click.echo(f"execution {full_id} resumed")
                return
            time.sleep(_POLL)
    raise ExecutorError(
        f"execution {full_id} is still PAUSED after {wait_seconds:g}s: is its executor "
        "running? (a refused input is logged there: `executor logs` shows it)"
    )
