"""Top-level command group and the mapping of errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from executor.cli.context import AppContext, input_option, parse_inputs, pass_app
from executor.errors import (
    ExecutorError,
    FlowValidationError,
    HostFileError,
    UsageError,
)
from executor.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ENGINE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from executor.version import executor_version

    click.echo(f"executor {executor_version()}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Print the executor's version and exit (the same as GET /api/v1/configs says).",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    envvar="EXECUTOR_HOME",
    help="State directory (runs, artifacts, namespace files, cache). "
    "Default: $XDG_STATE_HOME/executor.",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    envvar="EXECUTOR_LOG_FORMAT",
    show_default=True,
    help="How the executor's own log lines look on stderr (not the tasks' logs).",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None, log_format: str) -> None:
    """Run Kestra-style flows, one long-lived container per WorkingDirectory.

    \b
    Every child task of a WorkingDirectory runs as one `docker exec` in the same
    container, on a shared workspace volume; nothing is copied in and out per task.

    \b
    Examples:
      executor run examples/etl_csv.yaml
      executor run examples/git_python.yaml -i repo_url=file:///tmp/hello
      executor run examples/shards.yaml     # concurrent shards in one container
      executor resume ID -i approved=true   # let a PAUSED execution go on
      executor validate flow.yaml
      executor images build
      executor gc

    \b
    Exit codes: 0 SUCCESS or WARNING, 1 FAILED, 2 invalid flow or usage,
    3 engine unavailable, 4 store problem, 5 host file system error,
    6 server refused to start, 130 interrupted.
    """
    settings = Settings.from_env()
    if home is not None:
        settings = Settings(**{**settings.__dict__, "home": home.expanduser().resolve()})
    from executor import log as logging_setup

    logging_setup.configure("json" if log_format == "json" else "console")
    ctx.obj = AppContext(settings, json_logs=log_format == "json")


@cli.command()
@click.argument("flow", type=click.Path(path_type=Path))
@input_option("A flow input; repeat for several.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the execution as one JSON document (Kestra's execution shape).",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Where Subflow tasks look flows up by namespace and id [default: FLOW's directory].",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the final summary.")
@click.option("--debug", is_flag=True, help="Also show the executor's debug lines.")
@click.option(
    "--server",
    "server_url",
    default=None,
    metavar="URL",
    help="Run on an `executor server` (store the flow there, submit, follow it live). "
    "Credentials: KESTRA_USER/KESTRA_PASSWORD or KESTRA_API_TOKEN.",
)
@pass_app
def run(
    app: AppContext,
    flow: Path,
    inputs: tuple[str, ...],
    as_json: bool,
    flows_dir: Path | None,
    quiet: bool,
    debug: bool,
    server_url: str | None,
) -> None:
    """Run FLOW (a Kestra flow YAML file) and wait for it to end.

    In a terminal, a live tree of the tasks with the task logs scrolling above it;
    in a pipe or CI, one timestamped line per log line. Everything is recorded in
    the store: see `executor executions`, `show`, `logs`. The exit code says how
    it ended.
    """
    from executor import app as root
    from executor.cli.local_run import run_here
    from executor.cli.records_cmd import open_store
    from executor.log import configure as configure_logs
    from executor.model import Execution

    if debug:
        configure_logs("json" if app.json_logs else "console", "debug")
    given = parse_inputs(inputs)
    if server_url is not None:
        from executor.cli.remote_cmd import run_on_server

        run_on_server(flow, given, server_url, quiet=quiet, debug=debug, as_json=as_json)
        return
    loaded = root.load_flow(flow, app.settings.envs)  # once: the view shows it, the run runs it
    open_store(app).close()  # schema, crash recovery: a store problem stops here
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    execution.flow_file = str(flow.resolve())  # what `executor restart` runs again
    run_here(
        app,
        loaded,
        execution,
        given,
        flows_dir=flows_dir,
        quiet=quiet,
        debug=debug,
        as_json=as_json,
    )


@cli.command()
@click.argument("flows", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Where Subflow tasks look flows up [default: each flow's directory].",
)
@click.option(
    "--list-types",
    is_flag=True,
    help="Print the task types this executor runs, one a line, and exit.",
)
@pass_app
def validate(
    app: AppContext, flows: tuple[Path, ...], flows_dir: Path | None, list_types: bool
) -> None:
    """Check FLOWS without running them: every problem, with file:line:column.

    Structure, properties, references between tasks and templates are checked in
    one pass. Subflow tasks are looked up too: a flow that calls itself again is a
    problem; a flow that cannot be found is a warning, as in Kestra (`executor run`
    stops on it).
    """
    from executor.app import uses_subflows
    from executor.flow.loader import load_flow
    from executor.flow.walk import walk
    from executor.subflows import FlowIndex, check_subflows

    if list_types:
        from executor.flow.model import SUPPORTED_TASK_TYPES

        click.echo("\n".join(SUPPORTED_TASK_TYPES))
        return
    if not flows:
        raise UsageError("validate needs at least one FLOW (or --list-types)")

    failed: list[ExecutorError] = []
    hints: list[str] = []  # each said once, after every flow's problems
    for path in flows:
        try:
            loaded = load_flow(path, app.settings.envs)
            if uses_subflows(loaded):
                check_subflows(
                    loaded, FlowIndex(flows_dir or path.resolve().parent), missing=_warn_missing
                )
        except FlowValidationError as exc:
            failed.append(exc)
            click.echo(exc.without_hint, err=True)
            if exc.hint and exc.hint not in hints:
                hints.append(exc.hint)
            continue
        except ExecutorError as exc:
            failed.append(exc)
            click.echo(str(exc), err=True)
            continue
        count = sum(1 for _ in walk(loaded.flow))
        click.echo(f"{path}: valid ({loaded.flow.namespace}.{loaded.flow.id}, {count} tasks)")
    for hint in hints:
        click.echo(hint, err=True)
    if failed:
        sys.exit(EXIT_USAGE)


def _warn_missing(problem: ExecutorError) -> None:
    click.echo(
        f"warning: {problem}; `executor run` stops before anything starts unless it is there",
        err=True,
    )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@pass_app
def gc(app: AppContext, dry_run: bool) -> None:
    """Remove containers, volumes, networks, overlay and partial files left by runs that are gone.

    Only resources labelled by this executor whose owner process no longer runs on
    this host are touched; running executions are left alone.
    """
    from executor import app as root

    engine = root.backend_for(app.settings)
    removed = root.sweep_orphans(engine, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for res in removed:
        click.echo(f"{verb} {res.kind} {res.name}")
    click.echo(f"{verb} {len(removed)} orphaned resource(s)")
    for scratch in root.sweep_overlays(app.settings, engine, dry_run=dry_run):
        click.echo(f"{verb} overlay directory {scratch}")
    parts = root.sweep_partial_files(app.settings, dry_run=dry_run)
    for part in parts:
        click.echo(f"{verb} partial file {part}")
    click.echo(f"{verb} {len(parts)} partial file(s) left by writers that are gone")


def _register() -> None:
    from executor.cli.images_cmd import images

    cli.add_command(images)

    from executor.cli.records_cmd import COMMANDS as record_commands

    for command in record_commands:
        cli.add_command(command)

    from executor.cli.resume_cmd import resume

    cli.add_command(resume)

    from executor.cli.restart_cmd import replay, restart

    cli.add_command(restart)
    cli.add_command(replay)

    from executor.cli.server_cmd import server

    cli.add_command(server)

    from executor.cli.worker_cmd import worker, workers

    cli.add_command(worker)
    cli.add_command(workers)

    from executor.cli.remote_cmd import flows

    cli.add_command(flows)

    from executor.cli.triggers_cmd import triggers

    cli.add_command(triggers)

    from executor.cli.workspace_cmd import cache, namespace, storage

    for group in (namespace, cache, storage):
        cli.add_command(group)

    from executor.cli.kv_cmd import kv

    cli.add_command(kv)

    from executor.cli.db_cmd import db

    cli.add_command(db)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; an ExecutorError becomes one line on stderr and its exit code."""
    try:
        cli.main(args=argv, prog_name="executor", standalone_mode=False)
    except ExecutorError as exc:
        click.echo(f"executor: {exc}", err=True)
        return exc.exit_code
    except OSError as exc:
        # A host file-system failure no command translated itself: still one line, not a trace.
        error = HostFileError.of(exc, "file system")
        click.echo(f"executor: {error}", err=True)
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("executor: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_FAILED
    except KeyboardInterrupt:
        click.echo("executor: interrupted", err=True)
        return EXIT_INTERRUPTED
    return EXIT_OK
