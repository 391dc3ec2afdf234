"""``executor images``: build the local images, list them, and alias references to them.

Progress goes to stderr, results to stdout; problems are raised as ExecutorError subclasses for
the main CLI to report.
"""

from __future__ import annotations

import json
from typing import Any

import click

from executor.cli.context import AppContext, pass_app
from executor.images import (
    BuildEvent,
    BuildResult,
    ImageBuilder,
    ImageState,
    ProgressSink,
    add_alias,
    image_states,
    normalize_reference,
)


@click.group("images")
def images() -> None:
    """Build and list the executor's local images (no registry needed)."""


@images.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when up to date.")
@click.option("-v", "--verbose", is_flag=True, help="Also show the recipes' and Docker's output.")
@pass_app
def build_cmd(app: AppContext, names: tuple[str, ...], force: bool, verbose: bool) -> None:
    """Build the named images: busybox, debian, python when none is named; on request the
    deploy images (executor, postgres, redis: see compose.yaml) and node, r, dbt."""
    from executor.app import image_builder_engine

    engine = image_builder_engine(app.settings)
    builder = ImageBuilder(app.settings, engine, _progress_printer(verbose))
    for result in builder.build(names, force=force):
        click.echo(_result_line(result))


def _progress_printer(verbose: bool) -> ProgressSink:
    def show(event: BuildEvent) -> None:
        if event.step != "output" or verbose:
            click.echo(
                f"[{event.image} {event.elapsed:6.1f}s] {event.step}: {event.message}", err=True
            )

    return show


def _result_line(result: BuildResult) -> str:
    outcome = f"built in {result.seconds:.1f}s ({result.reason})" if result.built else result.reason
    return f"{result.name:<8} {result.ref:<26} {result.image_id[:19] or '-':<19}  {outcome}"


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_app
def list_cmd(app: AppContext, as_json: bool) -> None:
    """Show each catalogue image: its id in the engine, its lock entry, whether it is stale."""
    from executor.app import image_builder_engine

    states = image_states(app.settings, image_builder_engine(app.settings).image_id)
    if as_json:
        click.echo(json.dumps([_state_dict(state) for state in states], indent=2))
        return
    click.echo(f"{'NAME':<8} {'REFERENCE':<26} {'IMAGE ID':<19}  {'BUILT AT':<25}  STATUS")
    for state in states:
        built_at = state.lock.built_at if state.lock else "-"
        image_id = (state.engine_id or "-")[:19]
        click.echo(
            f"{state.name:<8} {state.ref:<26} {image_id:<19}  {built_at:<25}  {state.status}"
        )


def _state_dict(state: ImageState) -> dict[str, Any]:
    lock = state.lock
    return {
        "name": state.name,
        "ref": state.ref,
        "id": state.engine_id,
        "locked_id": lock.id if lock else None,
        "input_hash": state.input_hash,
        "locked_input_hash": lock.input_hash if lock else None,
        "built_at": lock.built_at if lock else None,
        "status": state.status,
        "up_to_date": state.stale_reason is None,
    }


@images.command("alias")
@click.argument("ref")
@click.argument("target")
@pass_app
def alias_cmd(app: AppContext, ref: str, target: str) -> None:
    """Resolve REF (an fnmatch pattern such as 'python:3.*') to the local image TARGET."""
    add_alias(app.settings, ref, target)
    click.echo(f"{ref} -> {normalize_reference(target)}  ({app.settings.aliases_file})")
