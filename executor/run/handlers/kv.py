"""``core.kv.Set``, ``Get``, ``GetKeys`` and ``Delete``: the run's KV store (``RunContext``)."""

from __future__ import annotations

from typing import Any

from executor.errors import UsageError
from executor.flow.tasks_kv import KvDeleteTask, KvGetKeysTask, KvGetTask, KvSetTask, KvTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.api import KvStore
from executor.store.kv import check_key, check_namespace, typed


def _namespace(task: KvTask, job: HostJob) -> str:
    if task.namespace is None:
        return job.ctx.loaded.flow.namespace
    return _checked(check_namespace, job.text(task.namespace).strip(), "namespace")


def _key(value: str, job: HostJob) -> str:
    return _checked(check_key, job.text(value).strip(), "key")


def _checked(check: Any, value: str, name: str) -> str:
    try:
        return str(check(value))
    except UsageError as exc:
        raise TaskInputError(f"'{name}': {exc.message}") from None


def _store(job: HostJob) -> KvStore:
    return job.ctx.stores().kv


def _value(task: KvSetTask, job: HostJob) -> Any:
    """The rendered value, keeping its type when it is one expression (Kestra's renderTyped)."""
    if isinstance(task.value, str):
        return job.ctx.renderer.evaluate(task.value, job.variables, where=job.where)
    return job.render(task.value)


def _set(task: KvSetTask, job: HostJob) -> AttemptResult:
    namespace, key = _namespace(task, job), _key(task.key, job)
    try:
        kv_type, value = typed(_value(task, job), task.kvType)
    except UsageError as exc:
        raise TaskInputError(f"'value': {exc.message}") from None
    description = job.text(task.kvDescription) if task.kvDescription else None
    overwrite = job.flag(task.overwrite, "overwrite", True)
    _store(job).put(
        namespace,
        key,
        kv_type,
        value,
        description=description,
        ttl=task.ttl,
        overwrite=overwrite,
    )
    ttl = f", expires in {task.ttl}" if task.ttl else ""
    job.log(Level.INFO, f"set {namespace}/{key} ({kv_type}{ttl})")
    return AttemptResult(State.SUCCESS)


def _missing(key: str, namespace: str) -> TaskInputError:
    return TaskInputError(
        f"no value for key '{key}' in namespace '{namespace}' and 'errorOnMissing' is true"
    )


def _get(task: KvGetTask, job: HostJob) -> AttemptResult:
    namespace, key = _namespace(task, job), _key(task.key, job)
    entry = _store(job).get(namespace, key)
    if entry is None and job.flag(task.errorOnMissing, "errorOnMissing"):
        raise _missing(key, namespace)
    return AttemptResult(State.SUCCESS, outputs={"value": entry.value if entry else None})


def _get_keys(task: KvGetKeysTask, job: HostJob) -> AttemptResult:
    namespace = _namespace(task, job)
    prefix = job.text(task.prefix) if task.prefix is not None else None
    keys = [entry.key for entry in _store(job).entries(namespace, prefix)]
    return AttemptResult(State.SUCCESS, outputs={"keys": keys})


def _delete(task: KvDeleteTask, job: HostJob) -> AttemptResult:
    namespace, key = _namespace(task, job), _key(task.key, job)
    deleted = _store(job).delete(namespace, key)
    if not deleted and job.flag(task.errorOnMissing, "errorOnMissing"):
        raise _missing(key, namespace)
    return AttemptResult(State.SUCCESS, outputs={"deleted": deleted})


kv_set_attempt = host_attempt(_set)
kv_get_attempt = host_attempt(_get)
kv_get_keys_attempt = host_attempt(_get_keys)
kv_delete_attempt = host_attempt(_delete)


HANDLES: dict[type[Any], Handler[Any]] = {
    KvSetTask: with_attempts(kv_set_attempt),
    KvGetTask: with_attempts(kv_get_attempt),
    KvGetKeysTask: with_attempts(kv_get_keys_attempt),
    KvDeleteTask: with_attempts(kv_delete_attempt),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
