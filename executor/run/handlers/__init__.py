"""Which handler runs which task: adding a task type is one module and one line here.

A handler is ``(task, task_run, scope, ctx) -> State``: it does the task's work and says how it
ended; ``run.runner.run_task`` does what every task shares around it.
"""

from __future__ import annotations

from typing import Any

from executor.errors import ExecutorError
from executor.flow import model as m
from executor.flow.tasks_cli import (
    AnsibleTask,
    AwsCliTask,
    DbtCliTask,
    DbtCommandTask,
    ModalTask,
    SparkTask,
    SqlMeshTask,
    TerraformTask,
    TrivyTask,
)
from executor.flow.tasks_core import (
    AssertTask,
    ConcatTask,
    DeleteFilesTask,
    DownloadFilesTask,
    ExitTask,
    LabelsTask,
    LogFetchTask,
    PurgeFilesTask,
    SizeTask,
    SplitTask,
    StorageDeleteTask,
    UploadFilesTask,
    WriteTask,
)
from executor.flow.tasks_docker import DockerRunTask
from executor.flow.tasks_git import PushTask
from executor.flow.tasks_http import DownloadTask, RequestTask
from executor.flow.tasks_jdbc import (
    JdbcBatch,
    JdbcQueries,
    JdbcQuery,
    PostgresCopyIn,
    PostgresCopyOut,
)
from executor.flow.tasks_kv import KvDeleteTask, KvGetKeysTask, KvGetTask, KvSetTask
from executor.flow.tasks_notify import MailSendTask, WebhookTask
from executor.flow.tasks_scripts import JBangScriptTask, LanguageCommandsTask, LanguageScriptTask
from executor.run.handlers.attempts import Handler, with_attempts
from executor.run.handlers.cli import cli_attempt, dbt_attempt
from executor.run.handlers.compress import COMPRESS_ATTEMPTS
from executor.run.handlers.docker_run import docker_run_attempt
from executor.run.handlers.docker_tasks import DOCKER_ATTEMPTS
from executor.run.handlers.execution_tasks import (
    assert_attempt,
    exit_attempt,
    labels_attempt,
    log_fetch_attempt,
)
from executor.run.handlers.files import files_attempt
from executor.run.handlers.flowable import run_allow_failure, run_if, run_sequential, run_switch
from executor.run.handlers.git_push import PUSH_ATTEMPT
from executor.run.handlers.gitlab import GITLAB_ATTEMPTS
from executor.run.handlers.gitops import GITOPS_ATTEMPTS
from executor.run.handlers.http import download_attempt, request_attempt
from executor.run.handlers.jdbc import (
    batch_attempt,
    copy_in_attempt,
    copy_out_attempt,
    query_attempt,
)
from executor.run.handlers.jira import JIRA_ATTEMPTS
from executor.run.handlers.kv import (
    kv_delete_attempt,
    kv_get_attempt,
    kv_get_keys_attempt,
    kv_set_attempt,
)
from executor.run.handlers.loops import run_each_parallel, run_each_sequential, run_for_each
from executor.run.handlers.mail import mail_attempt
from executor.run.handlers.n8n import N8N_ATTEMPTS
from executor.run.handlers.notify import webhook_attempt
from executor.run.handlers.odoo import ODOO_ATTEMPTS
from executor.run.handlers.parallel import run_dag, run_parallel
from executor.run.handlers.pause import run_pause
from executor.run.handlers.redis_tasks import REDIS_ATTEMPTS
from executor.run.handlers.s3 import S3_ATTEMPTS
from executor.run.handlers.script import script_attempt
from executor.run.handlers.serdes import SERDES_ATTEMPTS
from executor.run.handlers.sockets import SOCKET_ATTEMPTS
from executor.run.handlers.storage import (
    concat_attempt,
    delete_files_attempt,
    download_files_attempt,
    purge_attempt,
    size_attempt,
    split_attempt,
    storage_delete_attempt,
    upload_files_attempt,
    write_attempt,
)
from executor.run.handlers.subflow import run_subflow
from executor.run.handlers.values import (
    fail_attempt,
    log_attempt,
    output_values_attempt,
    return_attempt,
)
from executor.run.handlers.workdir import in_own_workdir, run_working_directory

HANDLERS: dict[type[Any], Handler[Any]] = {
    m.WorkingDirectoryTask: run_working_directory,
    m.ScriptTask: in_own_workdir(with_attempts(script_attempt)),
    m.CloneTask: in_own_workdir(with_attempts(files_attempt)),
    m.LocalFilesTask: in_own_workdir(with_attempts(files_attempt)),
    m.LogTask: with_attempts(log_attempt),
    m.ReturnTask: with_attempts(return_attempt),
    m.OutputValuesTask: with_attempts(output_values_attempt),
    m.FailTask: with_attempts(fail_attempt),
    m.SequentialTask: run_sequential,
    m.AllowFailureTask: run_allow_failure,
    m.IfTask: run_if,
    m.SwitchTask: run_switch,
    m.ParallelTask: run_parallel,
    m.DagTask: run_dag,
    m.ForEachTask: run_for_each,
    m.EachSequentialTask: run_each_sequential,
    m.EachParallelTask: run_each_parallel,
    m.PauseTask: run_pause,
    m.SubflowTask: run_subflow,
    RequestTask: with_attempts(request_attempt),
    DownloadTask: with_attempts(download_attempt),
    WebhookTask: with_attempts(webhook_attempt),
    KvSetTask: with_attempts(kv_set_attempt),
    KvGetTask: with_attempts(kv_get_attempt),
    KvGetKeysTask: with_attempts(kv_get_keys_attempt),
    KvDeleteTask: with_attempts(kv_delete_attempt),
    MailSendTask: with_attempts(mail_attempt),
    LabelsTask: with_attempts(labels_attempt),
    ExitTask: with_attempts(exit_attempt),
    AssertTask: with_attempts(assert_attempt),
    LogFetchTask: with_attempts(log_fetch_attempt),
    WriteTask: with_attempts(write_attempt),
    SizeTask: with_attempts(size_attempt),
    ConcatTask: with_attempts(concat_attempt),
    SplitTask: with_attempts(split_attempt),
    StorageDeleteTask: with_attempts(storage_delete_attempt),
    PurgeFilesTask: with_attempts(purge_attempt),
    UploadFilesTask: with_attempts(upload_files_attempt),
    DownloadFilesTask: with_attempts(download_files_attempt),
    DeleteFilesTask: with_attempts(delete_files_attempt),
    LanguageCommandsTask: in_own_workdir(with_attempts(script_attempt)),
    LanguageScriptTask: in_own_workdir(with_attempts(script_attempt)),
    JBangScriptTask: in_own_workdir(with_attempts(script_attempt)),
    **dict.fromkeys(
        (TerraformTask, AnsibleTask, SqlMeshTask, ModalTask, SparkTask, AwsCliTask, TrivyTask),
        in_own_workdir(with_attempts(cli_attempt)),
    ),
    DbtCliTask: in_own_workdir(with_attempts(dbt_attempt)),
    DbtCommandTask: in_own_workdir(with_attempts(dbt_attempt)),
    JdbcQuery: with_attempts(query_attempt),
    JdbcQueries: with_attempts(query_attempt),
    JdbcBatch: with_attempts(batch_attempt),
    PostgresCopyIn: with_attempts(copy_in_attempt),
    PostgresCopyOut: with_attempts(copy_out_attempt),
    **{kind: with_attempts(attempt) for kind, attempt in SERDES_ATTEMPTS.items()},
    **{kind: with_attempts(attempt) for kind, attempt in COMPRESS_ATTEMPTS.items()},
    **{kind: with_attempts(attempt) for kind, attempt in S3_ATTEMPTS.items()},
    **{kind: with_attempts(attempt) for kind, attempt in REDIS_ATTEMPTS.items()},
    **{kind: with_attempts(attempt) for kind, attempt in GITOPS_ATTEMPTS.items()},
    PushTask: with_attempts(PUSH_ATTEMPT),
    **{kind: with_attempts(attempt) for kind, attempt in DOCKER_ATTEMPTS.items()},
    DockerRunTask: in_own_workdir(with_attempts(docker_run_attempt)),
    **{kind: with_attempts(attempt) for kind, attempt in SOCKET_ATTEMPTS.items()},
    **{
        kind: with_attempts(attempt)
        for family in (GITLAB_ATTEMPTS, JIRA_ATTEMPTS, N8N_ATTEMPTS, ODOO_ATTEMPTS)
        for kind, attempt in family.items()
    },
}


def handler_for(task: m.Task) -> Handler[Any]:
    """The handler of ``task``'s kind."""
    try:
        return HANDLERS[type(task)]
    except KeyError:
        raise ExecutorError(f"task type {task.type} has no handler") from None
