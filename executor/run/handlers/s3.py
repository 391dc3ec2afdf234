"""``aws.s3.*`` and ``minio.*`` on the host, through boto3 (any S3-compatible server).

Uploads and downloads stream (multipart upload from the stored file, the body read in 1 MiB
chunks into the store); every call has connect and read timeouts, and the task's ``timeout`` is
checked between chunks and objects. Access keys are masked in every log line and reason.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from executor.errors import ExecutorError
from executor.flow.tasks_s3 import (
    S3Connection,
    S3Copy,
    S3Delete,
    S3Download,
    S3Downloads,
    S3List,
    S3ListProps,
    S3Upload,
)
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.bounds import need, plain
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.files.artifacts import SCHEME

CHUNK = 1024 * 1024


def _client(task: S3Connection, job: HostJob) -> Any:
    boto3 = need("boto3", "an S3 task")
    config = need("botocore.config", "an S3 task")
    if task.stsRoleArn:
        raise TaskInputError("'stsRoleArn': assuming an AWS STS role is not supported here")
    minio = str(getattr(task, "type", "")).startswith("io.kestra.plugin.minio.")
    endpoint = (task.endpoint if minio else None) or task.endpointOverride
    url = job.text(endpoint).strip() if endpoint else None
    if url and not re.match(r"https?://", url):
        url = f"https://{url}"
    secrets = [job.text(v) for v in (task.secretKeyId, task.sessionToken) if v]
    job.ctx.secrets.remember(*[s for s in secrets if s])
    path_style = task.forcePathStyle is None or job.flag(task.forcePathStyle, "forcePathStyle")
    return boto3.session.Session().client(
        "s3",
        region_name=job.text(task.region).strip() if task.region else "us-east-1",
        endpoint_url=url,
        aws_access_key_id=job.text(task.accessKeyId) if task.accessKeyId else None,
        aws_secret_access_key=job.text(task.secretKeyId) if task.secretKeyId else None,
        aws_session_token=job.text(task.sessionToken) if task.sessionToken else None,
        config=config.Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path" if (url and path_style) else "auto"},
        ),
    )


def _failed(exc: Exception, what: str) -> TaskInputError:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return TaskInputError(f"{what} failed: {error.get('Code')} {error.get('Message', '')}")
    return TaskInputError(f"{what} failed: {' '.join(str(exc).split())}")


def _on_time(job: HostJob, started: float | None = None) -> None:
    deadline = job.deadline()
    if job.scope.cancel.cancelled:
        raise TaskInputError("stopped: the execution was cancelled")
    if deadline is not None and time.monotonic() > deadline:
        raise TaskInputError(f"timed out after {job.task.timeout}")


def _call(job: HostJob, what: str, fn: Any, **kwargs: Any) -> Any:
    _on_time(job)
    botocore = need("botocore.exceptions", "an S3 task")
    try:
        return fn(**{k: v for k, v in kwargs.items() if v is not None})
    except (botocore.ClientError, botocore.BotoCoreError) as exc:
        raise _failed(exc, what) from None


def _sources(task: S3Upload, job: HostJob) -> list[str]:
    rendered = job.render(task.from_)
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith("["):
            try:
                rendered = json.loads(text)
            except ValueError:
                raise TaskInputError("'from' is neither a URI nor a JSON list of URIs") from None
        else:
            rendered = [text]
    return [str(u).strip() for u in rendered]


def _upload(task: S3Upload, job: HostJob) -> AttemptResult:
    client = _client(task, job)
    bucket, key = job.text(task.bucket).strip(), job.text(task.key).strip()
    sources = _sources(task, job)
    extra: dict[str, Any] = {}
    for prop, arg in (
        ("cacheControl", "CacheControl"),
        ("contentType", "ContentType"),
        ("contentEncoding", "ContentEncoding"),
        ("contentDisposition", "ContentDisposition"),
        ("contentLanguage", "ContentLanguage"),
        ("acl", "ACL"),
        ("storageClass", "StorageClass"),
        ("serverSideEncryption", "ServerSideEncryption"),
        ("expectedBucketOwner", "ExpectedBucketOwner"),
        ("requestPayer", "RequestPayer"),
        ("objectLockMode", "ObjectLockMode"),
        ("objectLockLegalHoldStatus", "ObjectLockLegalHoldStatus"),
        ("checksumAlgorithm", "ChecksumAlgorithm"),
    ):
        value = getattr(task, prop)
        if value is not None:
            extra[arg] = job.text(value)
    if task.metadata:
        extra["Metadata"] = {k: job.text(v) for k, v in task.metadata.items()}
    if task.tagging:
        from urllib.parse import urlencode

        extra["Tagging"] = urlencode({k: job.text(v) for k, v in task.tagging.items()})
    last: dict[str, Any] = {}
    for source in sources:
        target = key if len(sources) == 1 else f"{key.rstrip('/')}/{PurePosixPath(source).name}"
        try:
            fh = job.artifacts().open(source)
        except ExecutorError as exc:
            raise TaskInputError(exc.message) from None
        with fh:
            _call(
                job,
                f"upload to s3://{bucket}/{target}",
                client.upload_fileobj,
                Fileobj=fh,
                Bucket=bucket,
                Key=target,
                ExtraArgs=extra or None,
            )
        head = _call(job, "head", client.head_object, Bucket=bucket, Key=target)
        last = {"eTag": head.get("ETag"), "versionId": head.get("VersionId")}
        job.log(Level.INFO, f"uploaded {source} to s3://{bucket}/{target}")
    return AttemptResult(State.SUCCESS, outputs={"bucket": bucket, "key": key, **last})


def _store_body(job: HostJob, body: Any, name: str, prefix: Any) -> str:
    def chunks() -> Iterator[bytes]:
        for block in body.iter_chunks(CHUNK):
            _on_time(job)
            yield block

    job.artifacts().write(prefix, name, chunks())
    return job.artifacts().uri(prefix, name)


def _download(task: S3Download, job: HostJob) -> AttemptResult:
    client = _client(task, job)
    bucket, key = job.text(task.bucket).strip(), job.text(task.key).strip()
    got = _call(
        job,
        f"download of s3://{bucket}/{key}",
        client.get_object,
        Bucket=bucket,
        Key=key,
        VersionId=job.text(task.versionId) if task.versionId else None,
        RequestPayer=job.text(task.requestPayer) if task.requestPayer else None,
    )
    name = PurePosixPath(key).name or "object"
    uri = _store_body(job, got["Body"], name, job.store_prefix())
    job.log(Level.INFO, f"downloaded s3://{bucket}/{key}")
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "uri": uri,
            "contentLength": got.get("ContentLength"),
            "contentType": got.get("ContentType"),
            "metadata": got.get("Metadata", {}),
            "versionId": got.get("VersionId"),
            "eTag": got.get("ETag"),
        },
    )


def _objects(task: S3ListProps, job: HostJob, client: Any) -> list[dict[str, Any]]:
    bucket = job.text(task.bucket).strip()
    page = job.integer(task.maxKeys, "maxKeys") or 1000
    regexp = re.compile(job.text(task.regexp)) if task.regexp else None
    kind = job.text(task.filter).strip().upper()
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        answer = _call(
            job,
            f"list of s3://{bucket}",
            client.list_objects_v2,
            Bucket=bucket,
            Prefix=job.text(task.prefix) if task.prefix else None,
            Delimiter=job.text(task.delimiter) if task.delimiter else None,
            StartAfter=job.text(task.marker) if task.marker else None,
            EncodingType=job.text(task.encodingType) if task.encodingType else None,
            ExpectedBucketOwner=(
                job.text(task.expectedBucketOwner) if task.expectedBucketOwner else None
            ),
            MaxKeys=page,
            ContinuationToken=token,
        )
        for item in answer.get("Contents", []):
            key = item["Key"]
            is_dir = key.endswith("/")
            if (kind == "FILES" and is_dir) or (kind == "DIRECTORY" and not is_dir):
                continue
            if regexp is not None and not regexp.fullmatch(key):
                continue
            found.append(
                {
                    "key": key,
                    "size": item.get("Size"),
                    "lastModified": plain(item.get("LastModified")),
                    "etag": item.get("ETag"),
                    "storageClass": item.get("StorageClass"),
                    "uri": f"s3://{bucket}/{key}",
                }
            )
        if not answer.get("IsTruncated"):
            return found
        token = answer.get("NextContinuationToken")


def _list(task: S3List, job: HostJob) -> AttemptResult:
    objects = _objects(task, job, _client(task, job))
    job.log(Level.INFO, f"{len(objects)} object(s) found")
    return AttemptResult(State.SUCCESS, outputs={"objects": objects})


def _downloads(task: S3Downloads, job: HostJob) -> AttemptResult:
    client = _client(task, job)
    bucket = job.text(task.bucket).strip()
    objects = [o for o in _objects(task, job, client) if not o["key"].endswith("/")]
    prefix = job.store_prefix()
    files = {}
    for obj in objects:
        got = _call(
            job, f"download of {obj['uri']}", client.get_object, Bucket=bucket, Key=obj["key"]
        )
        obj["uri"] = _store_body(job, got["Body"], obj["key"], prefix)
        files[obj["key"]] = obj["uri"]
    action = job.text(task.action).strip().upper() if task.action else "NONE"
    for obj in objects:
        if action == "DELETE":
            _call(job, "delete", client.delete_object, Bucket=bucket, Key=obj["key"])
        elif action == "MOVE":
            if task.moveTo is None or not task.moveTo.key:
                raise TaskInputError("'action: MOVE' needs 'moveTo.key'")
            target_bucket = job.text(task.moveTo.bucket).strip() if task.moveTo.bucket else bucket
            target = f"{job.text(task.moveTo.key).rstrip('/')}/{PurePosixPath(obj['key']).name}"
            _call(
                job,
                "move",
                client.copy_object,
                Bucket=target_bucket,
                Key=target,
                CopySource={"Bucket": bucket, "Key": obj["key"]},
            )
            _call(job, "delete", client.delete_object, Bucket=bucket, Key=obj["key"])
    job.log(Level.INFO, f"{len(files)} object(s) downloaded")
    return AttemptResult(State.SUCCESS, outputs={"objects": objects, "outputFiles": files})


def _delete(task: S3Delete, job: HostJob) -> AttemptResult:
    client = _client(task, job)
    bucket, key = job.text(task.bucket).strip(), job.text(task.key).strip()
    answer = _call(
        job,
        f"delete of s3://{bucket}/{key}",
        client.delete_object,
        Bucket=bucket,
        Key=key,
        VersionId=job.text(task.versionId) if task.versionId else None,
        MFA=job.text(task.mfa) if task.mfa else None,
        RequestPayer=job.text(task.requestPayer) if task.requestPayer else None,
        BypassGovernanceRetention=(
            job.flag(task.bypassGovernanceRetention, "bypassGovernanceRetention")
            if task.bypassGovernanceRetention is not None
            else None
        ),
    )
    job.log(Level.INFO, f"deleted s3://{bucket}/{key}")
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "deleteMarker": bool(answer.get("DeleteMarker", False)),
            "versionId": answer.get("VersionId"),
        },
    )


def _copy(task: S3Copy, job: HostJob) -> AttemptResult:
    client = _client(task, job)
    source = task.from_
    if not source.bucket or not source.key:
        raise TaskInputError("'from' needs 'bucket' and 'key'")
    src_bucket, src_key = job.text(source.bucket).strip(), job.text(source.key).strip()
    to = task.to
    bucket = job.text(to.bucket).strip() if to and to.bucket else src_bucket
    key = job.text(to.key).strip() if to and to.key else src_key
    copy_source = {"Bucket": src_bucket, "Key": src_key}
    if source.versionId:
        copy_source["VersionId"] = job.text(source.versionId)
    sse = job.text(to.serverSideEncryption) if to and to.serverSideEncryption else None
    answer = _call(
        job,
        f"copy of s3://{src_bucket}/{src_key}",
        client.copy_object,
        Bucket=bucket,
        Key=key,
        CopySource=copy_source,
        ServerSideEncryption=None if sse in (None, "NONE") else sse.replace("AWS_KMS", "aws:kms"),
        SSEKMSKeyId=job.text(to.kmsKeyId) if to and to.kmsKeyId else None,
    )
    if job.flag(task.delete, "delete"):
        _call(job, "delete", client.delete_object, Bucket=src_bucket, Key=src_key)
    job.log(Level.INFO, f"copied s3://{src_bucket}/{src_key} to s3://{bucket}/{key}")
    etag = answer.get("CopyObjectResult", {}).get("ETag")
    return AttemptResult(State.SUCCESS, outputs={"bucket": bucket, "key": key, "eTag": etag})


S3_ATTEMPTS = {
    S3Upload: host_attempt(_upload),
    S3Download: host_attempt(_download),
    S3Downloads: host_attempt(_downloads),
    S3List: host_attempt(_list),
    S3Delete: host_attempt(_delete),
    S3Copy: host_attempt(_copy),
}
_ = SCHEME


HANDLES: dict[type[Any], Handler[Any]] = {
    **{kind: with_attempts(attempt) for kind, attempt in S3_ATTEMPTS.items()},
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
