"""``executor kv ls|get|set|rm``: the KV store that ``core.kv.*`` tasks and ``kv()`` use."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from executor.cli.context import AppContext, pass_app
from executor.errors import NotFoundError, UsageError


def _duration(text: str | None) -> timedelta | None:
    if text is None:
        return None
    from pydantic import TypeAdapter, ValidationError

    try:
        value = TypeAdapter(timedelta).validate_python(text)
    except ValidationError:
        raise UsageError(f"--ttl {text!r}: expected an ISO-8601 duration such as PT1H") from None
    if value.total_seconds() <= 0:
        raise UsageError(f"--ttl {text!r}: must be positive")
    return value


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@click.group("kv")
def kv() -> None:
    """Key-value pairs per namespace (what core.kv tasks and kv() read and write)."""


@kv.command("ls")
@click.argument("namespace", required=False)
@click.option("--prefix", default=None, help="Only keys starting with this.")
@pass_app
def kv_ls(app: AppContext, namespace: str | None, prefix: str | None) -> None:
    """List the keys of NAMESPACE (or the namespaces that hold any, when none is given)."""
    from executor.store.kv import check_namespace

    store = app.stores().kv
    if namespace is None:
        for name in store.namespaces():
            click.echo(name)
        return
    entries = store.entries(check_namespace(namespace), prefix)
    for entry in entries:
        expires = (
            f"  expires {entry.expires.isoformat(timespec='seconds')}" if entry.expires else ""
        )
        click.echo(f"{entry.key}\t{entry.type}{expires}")


@kv.command("get")
@click.argument("namespace")
@click.argument("key")
@pass_app
def kv_get(app: AppContext, namespace: str, key: str) -> None:
    """Print the value of KEY in NAMESPACE (exit 4 when there is none)."""
    from executor.store.kv import check_key, check_namespace

    entry = app.stores().kv.get(check_namespace(namespace), check_key(key))
    if entry is None:
        raise NotFoundError(f"no value for key '{key}' in namespace '{namespace}'")
    click.echo(_shown(entry.value))


@kv.command("set")
@click.argument("namespace")
@click.argument("key")
@click.argument("value")
@click.option(
    "--type",
    "kv_type",
    type=click.Choice(["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]),
    default="STRING",
    show_default=True,
    help="How VALUE is read and kept.",
)
@click.option("--ttl", default=None, metavar="DURATION", help="Forget it after this (PT1H).")
@click.option("--description", default=None, help="A note kept with the value.")
@pass_app
def kv_set(
    app: AppContext,
    namespace: str,
    key: str,
    value: str,
    kv_type: str,
    ttl: str | None,
    description: str | None,
) -> None:
    """Set KEY in NAMESPACE to VALUE."""
    from executor.store.kv import check_key, check_namespace, typed

    kind, converted = typed(value, kv_type)
    app.stores().kv.put(
        check_namespace(namespace),
        check_key(key),
        kind,
        converted,
        description=description,
        ttl=_duration(ttl),
    )
    click.echo(f"set {namespace}/{key} ({kind})")


@kv.command("rm")
@click.argument("namespace")
@click.argument("key")
@pass_app
def kv_rm(app: AppContext, namespace: str, key: str) -> None:
    """Remove KEY from NAMESPACE (exit 4 when it had no value)."""
    from executor.store.kv import check_key, check_namespace

    deleted = app.stores().kv.delete(check_namespace(namespace), check_key(key))
    if not deleted:
        raise NotFoundError(f"no value for key '{key}' in namespace '{namespace}'")
    click.echo(f"removed {namespace}/{key}")
