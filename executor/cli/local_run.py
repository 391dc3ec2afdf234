"""Running an execution in this process with the live view, as ``executor run`` does; also
what ``executor restart`` and ``executor replay`` run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from executor.cli.console import summary
from executor.cli.context import AppContext
from executor.errors import Interrupted

if TYPE_CHECKING:
    from executor.engine.api import Resource
    from executor.flow.loaded import LoadedFlow
    from executor.model import Execution

EXIT_OK, EXIT_FAILED = 0, 1


def run_here(
    app: AppContext,
    loaded: LoadedFlow,
    execution: Execution,
    given: dict[str, str],
    *,
    flows_dir: Path | None,
    quiet: bool,
    debug: bool,
    as_json: bool,
    again: bool = False,
) -> None:
    """Run ``execution`` of ``loaded`` here, record it, show it live; exit with its code.

    ``again``: a restart or a replay, recorded before it runs: it runs with the inputs and task
    runs it holds, and a failure to start is recorded as its end (never raised).
    """
    from executor import app as root
    from executor.cli.live import make_view
    from executor.log import LogContext
    from executor.model import Level, State
    from executor.store.recorder import Recorder

    secrets = root.secrets_for(app.settings)
    stores = app.stores()
    recorder = Recorder(
        stores.records, mask=secrets.mask_value, retry=root.store_retry(app.settings)
    )
    view = make_view(loaded.flow, min_level=Level.DEBUG if debug else Level.INFO, quiet=quiet)

    def run_it() -> None:
        root.run_flow(
            app.settings,
            loaded,
            given,
            [LogContext(), recorder, view],
            execution=execution,
            stores=stores,
            secrets=secrets,
            flows_dir=flows_dir,
            flow_repository=root.flows_beside(app.settings, loaded, flows_dir),
            inputs_resolved=again,
        )

    interrupted = False
    with view:
        try:
            store_problem = root.run_recorded(execution, recorder, run_it, "cli", queued=again)
        except KeyboardInterrupt:
            interrupted, store_problem = True, None
    click.echo(summary(execution), err=True)
    if interrupted:
        raise Interrupted(_cleanup_report(root.leftovers(app.settings, execution.id)))
    if store_problem is not None:
        raise store_problem
    if as_json:
        click.echo(json.dumps(secrets.mask_value(execution.to_json()), indent=2, default=str))
    state = execution.state.current
    sys.exit(EXIT_OK if state in (State.SUCCESS, State.WARNING) else EXIT_FAILED)


def _cleanup_report(left: list[Resource] | None) -> str:
    """The last line after an interrupt: what the engine says is left, never a guess."""
    if left is None:
        return "interrupted: the engine could not be asked whether the run's containers are gone"
    if not left:
        return "interrupted: every container and volume of the run was removed"
    names = ", ".join(f"{r.kind} {r.name}" for r in left)
    return f"interrupted: could not remove {names}; `executor gc` removes them after this exits"
