"""Object storage and Redis tasks against real servers on 127.0.0.1: moto's S3 server (one per
module) and redis-server."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import until
from tests.integration.host_flows import logs, run_json, state_of, task_run
from tests.integration.server_helpers import free_port
from tests.integration.workers_helpers import start_redis

pytestmark = pytest.mark.integration

SECRET = "moto-s3cret-key"
ENV = {"SECRET_S3_SECRET": base64.b64encode(SECRET.encode()).decode()}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import boto3

    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key=SECRET,
    )

    def ready() -> bool:
        assert proc.poll() is None, "moto server exited"
        try:
            client.create_bucket(Bucket="lake")
            return True
        except Exception:
            return False

    try:
        until(ready, 60, "moto's S3 server to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _conn(endpoint: str, minio: bool = False) -> str:
    where = f"endpoint: {endpoint}" if minio else f"endpointOverride: {endpoint}"
    return f"""{where}
    accessKeyId: AKIATEST
    secretKeyId: "{{{{ secret('S3_SECRET') }}}}"
    region: us-east-1"""


def test_upload_list_copy_download_delete(home: Path, tmp_path: Path, s3_endpoint: str) -> None:
    aws, minio = _conn(s3_endpoint), _conn(s3_endpoint, minio=True)
    flow = f"""
id: s3
namespace: tests.s3
tasks:
  - id: report
    type: io.kestra.plugin.core.storage.Write
    content: "rows: 3"
    extension: .txt
  - id: up
    type: io.kestra.plugin.aws.s3.Upload
    {aws}
    bucket: lake
    key: raw/report.txt
    from: "{{{{ outputs.report.uri }}}}"
  - id: copy
    type: io.kestra.plugin.minio.Copy
    {minio}
    from: {{bucket: lake, key: raw/report.txt}}
    to: {{bucket: lake, key: archive/report.txt}}
  - id: list
    type: io.kestra.plugin.aws.s3.List
    {aws}
    bucket: lake
    regexp: ".*\\\\.txt"
  - id: get
    type: io.kestra.plugin.minio.Download
    {minio}
    bucket: lake
    key: archive/report.txt
  - id: take
    type: io.kestra.plugin.aws.s3.Downloads
    {aws}
    bucket: lake
    prefix: raw/
    action: DELETE
  - id: after
    type: io.kestra.plugin.aws.s3.List
    {aws}
    bucket: lake
  - id: missing
    type: io.kestra.plugin.aws.s3.Download
    {aws}
    bucket: lake
    key: raw/report.txt
    allowFailure: true
"""
    proc, execution = run_json(home, tmp_path, flow, env=ENV)
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    assert sorted(o["key"] for o in task_run(execution, "list")["outputs"]["objects"]) == [
        "archive/report.txt",
        "raw/report.txt",
    ]
    got = task_run(execution, "get")["outputs"]
    assert got["contentLength"] == len("rows: 3")
    assert list(task_run(execution, "take")["outputs"]["outputFiles"]) == ["raw/report.txt"]
    assert [o["key"] for o in task_run(execution, "after")["outputs"]["objects"]] == [
        "archive/report.txt"
    ]
    assert state_of(execution, "missing") == "WARNING"
    assert "NoSuchKey" in task_run(execution, "missing")["reason"]
    assert SECRET not in logs(home, execution)


def test_redis_strings_lists_and_pubsub(home: Path, tmp_path: Path) -> None:
    assert shutil.which("redis-server"), "scripts/run-tests.sh installs redis-server"
    server, port = start_redis(tmp_path, ["127.0.0.1"])
    url = f"redis://127.0.0.1:{port}/0"
    flow = f"""
id: redis
namespace: tests.redis
tasks:
  - id: set
    type: io.kestra.plugin.redis.string.Set
    url: {url}
    key: answer
    value: {{"n": 42}}
    serdeType: JSON
  - id: get
    type: io.kestra.plugin.redis.string.Get
    url: {url}
    key: answer
    serdeType: JSON
  - id: push
    type: io.kestra.plugin.redis.list.ListPush
    url: {url}
    key: jobs
    from: ["a", "b", "c"]
  - id: pop
    type: io.kestra.plugin.redis.list.ListPop
    url: {url}
    key: jobs
    maxRecords: 2
  - id: publish
    type: io.kestra.plugin.redis.pubsub.Publish
    url: {url}
    channel: news
    from: ["hello"]
  - id: gone
    type: io.kestra.plugin.redis.string.Get
    url: {url}
    key: nothing
    failedOnMissing: true
    allowFailure: true
"""
    try:
        proc, execution = run_json(home, tmp_path, flow)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr + logs(home, execution)
    assert task_run(execution, "get")["outputs"]["data"] == {"n": 42}
    assert task_run(execution, "push")["outputs"]["count"] == 3
    assert task_run(execution, "pop")["outputs"]["count"] == 2
    assert task_run(execution, "publish")["outputs"]["count"] == 1
    assert state_of(execution, "gone") == "WARNING"
