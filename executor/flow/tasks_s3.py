"""Object storage: ``aws.s3.*`` and ``minio.*`` (Upload, Download, Downloads, List, Delete, Copy).

Both speak the S3 API; ``aws.s3`` tasks take ``endpointOverride`` for an S3-compatible server,
``minio`` tasks take ``endpoint``. Properties are Kestra's; those that only an AWS account has
(STS roles, KMS keys, object lock) are accepted and passed to the server when S3 has them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import Model, TaskBase

_KINDS = ("Upload", "Download", "Downloads", "List", "Delete", "Copy")


def _types(kind: str) -> tuple[str, ...]:
    return (f"io.kestra.plugin.aws.s3.{kind}", f"io.kestra.plugin.minio.{kind}")


UPLOAD_TYPES = _types("Upload")
DOWNLOAD_TYPES = _types("Download")
DOWNLOADS_TYPES = _types("Downloads")
LIST_TYPES = _types("List")
DELETE_TYPES = _types("Delete")
COPY_TYPES = _types("Copy")
S3_TYPES = UPLOAD_TYPES + DOWNLOAD_TYPES + DOWNLOADS_TYPES + LIST_TYPES + DELETE_TYPES + COPY_TYPES

Flag = bool | str


class S3Connection(TaskBase):
    """Credentials and where the server is (Kestra's ``AbstractConnection``, MinIO's too)."""

    region: str | None = None
    endpointOverride: str | None = None  # aws.s3
    endpoint: str | None = None  # minio
    accessKeyId: str | None = None
    secretKeyId: str | None = None
    sessionToken: str | None = None
    forcePathStyle: Flag | None = None
    compatibilityMode: Flag | None = None
    requestPayer: str | None = None
    # AWS-only: an STS role to assume; refused when set (no AWS account here).
    stsRoleArn: str | None = None
    stsRoleSessionName: str | None = None
    stsRoleExternalId: str | None = None
    stsRoleSessionDuration: str | None = None
    stsEndpointOverride: str | None = None
    # MinIO's TLS material
    clientPem: str | None = None
    caPem: str | None = None
    ssl: dict[str, Any] | None = None


class S3Upload(S3Connection):
    type: Literal[UPLOAD_TYPES]  # type: ignore[valid-type]
    bucket: str
    key: str
    from_: str | list[str] = Field(alias="from")
    metadata: dict[str, str] | None = None
    cacheControl: str | None = None
    contentType: str | None = None
    contentEncoding: str | None = None
    contentDisposition: str | None = None
    contentLanguage: str | None = None
    contentLength: int | str | None = None
    expires: str | None = None
    acl: str | None = None
    storageClass: str | None = None
    serverSideEncryption: str | None = None
    bucketKeyEnabled: Flag | None = None
    checksumAlgorithm: str | None = None
    checksum: str | None = None
    expectedBucketOwner: str | None = None
    objectLockMode: str | None = None
    objectLockLegalHoldStatus: str | None = None
    objectLockRetainUntilDate: str | None = None
    tagging: dict[str, str] | None = None


class S3Download(S3Connection):
    type: Literal[DOWNLOAD_TYPES]  # type: ignore[valid-type]
    bucket: str
    key: str
    versionId: str | None = None


class S3ListProps(S3Connection):
    """What ``List`` and ``Downloads`` share (Kestra's ``ListInterface``)."""

    bucket: str
    prefix: str | None = None
    delimiter: str | None = None
    marker: str | None = None
    encodingType: str | None = None
    maxKeys: int | str = 1000
    expectedBucketOwner: str | None = None
    regexp: str | None = None
    filter: Literal["FILES", "DIRECTORY", "BOTH"] | str = "BOTH"
    recursive: Flag | None = None  # minio


class S3List(S3ListProps):
    type: Literal[LIST_TYPES]  # type: ignore[valid-type]


class MoveTo(Model):
    bucket: str | None = None
    key: str | None = None


class S3Downloads(S3ListProps):
    type: Literal[DOWNLOADS_TYPES]  # type: ignore[valid-type]
    action: Literal["MOVE", "DELETE", "NONE"] | str | None = None
    moveTo: MoveTo | None = None


class S3Delete(S3Connection):
    type: Literal[DELETE_TYPES]  # type: ignore[valid-type]
    bucket: str
    key: str
    bypassGovernanceRetention: Flag | None = None
    mfa: str | None = None
    versionId: str | None = None


class CopyObject(Model):
    bucket: str | None = None
    key: str | None = None
    versionId: str | None = None
    serverSideEncryption: str | None = None
    kmsKeyId: str | None = None


class S3Copy(S3Connection):
    type: Literal[COPY_TYPES]  # type: ignore[valid-type]
    from_: CopyObject = Field(alias="from")
    to: CopyObject | None = None
    delete: Flag = False
