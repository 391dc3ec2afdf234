"""The server's trust boundary, against real ``executor server`` processes: a real chromium page
from another origin and a rebound name, wrong Host and foreign Origin headers, flow bodies of
the wrong type, host-opening task options (server, worker and ``executor run``), the exact
webhook route, and credentials kept out of the server's log after a 500."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from executor.store.db import Store
from executor.store.flows import save_flow
from tests.integration.browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, watched_page
from tests.integration.helpers import until
from tests.integration.server_helpers import (
    BUSYBOX,
    LiveServer,
    free_port,
    logs_of,
    push_flow,
    start,
    wait_state,
)
from tests.integration.workers_helpers import Cluster, start_redis

pytestmark = pytest.mark.integration

REBOUND = "rebound.test"  # chromium resolves it to 127.0.0.1: a DNS rebinding, for real
YAML = {"Content-Type": "application/x-yaml"}


def log_flow(flow_id: str, namespace: str = "guard.test", message: str = "hello") -> str:
    return (
        f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n"
        f"  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
    )


def host_network_flow(flow_id: str, namespace: str = "guard.test") -> str:
    """A script task on the host's network that prints the host name it sees."""
    return (
        f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n"
        "  - id: net\n"
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BUSYBOX}\n"
        "    taskRunner:\n"
        "      type: io.kestra.plugin.scripts.runner.docker.Docker\n"
        "      networkMode: host\n"
        "    commands:\n"
        '      - echo "host is $(hostname)"\n'
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One default server (loopback, no credentials, host options refused) for the module."""
    with LiveServer(tmp_path_factory.mktemp("guard") / "home") as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium that resolves ``rebound.test`` to 127.0.0.1."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"],
        )
        yield launched
        launched.close()


@pytest.fixture
def attacker() -> Iterator[tuple[str, dict[str, str]]]:
    """Another local origin (127.0.0.1, another port) serving the pages put in its dict."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", pages
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _flow_exists(client: httpx.Client, namespace: str, flow_id: str) -> bool:
    return client.get(f"/api/v1/flows/{namespace}/{flow_id}").status_code == 200


def _executions_of(client: httpx.Client, namespace: str, flow_id: str) -> int:
    found = client.get(
        "/api/v1/executions/search", params={"namespace": namespace, "flowId": flow_id}
    ).json()
    total: int = found["total"]
    return total


# ----- item 1: drive-by code execution


def test_a_page_from_another_origin_creates_no_flow_and_runs_nothing(
    server: LiveServer, browser: Any, attacker: tuple[str, dict[str, str]]
) -> None:
    """A page on another local origin POSTs a flow as text/plain and executions (no-cors
    "simple" requests, no preflight), on both prefixes: nothing is created, nothing runs, even
    of a flow the operator stored."""
    with server.client() as client:
        push_flow(client, log_flow("kept", "guard.driveby"))
    origin, pages = attacker
    attack = json.dumps(
        [
            ["POST", "/api/v1/flows", log_flow("planted", "guard.driveby", "pwned"), "text/plain"],
            ["POST", "/api/v1/main/flows", log_flow("planted2", "guard.driveby"), "text/plain"],
            ["POST", "/api/v1/executions/guard.driveby/planted", None, None],
            ["POST", "/api/v1/executions/guard.driveby/kept", None, None],
            ["POST", "/api/v1/main/executions/guard.driveby/kept", None, None],
        ]
    )
    pages["/attack.html"] = f"""<!doctype html><title>waiting</title><script>
      (async () => {{
        const sent = [];
        for (const [method, path, text, type] of {attack}) {{
          const body = text === null ? new FormData() : text;
          const headers = type ? {{"Content-Type": type}} : {{}};
          try {{
            await fetch("{server.url}" + path, {{method, body, headers, mode: "no-cors"}});
            sent.push(path);
          }} catch (e) {{ sent.push("failed " + e); }}
        }}
        document.title = "done " + sent.length;
      }})();
    </script>"""
    with watched_page(browser) as page:
        page.goto(f"{origin}/attack.html")
        page.wait_for_function("document.title === 'done 5'", timeout=WAIT_MS)
    with server.client() as client:
        assert not _flow_exists(client, "guard.driveby", "planted")
        assert not _flow_exists(client, "guard.driveby", "planted2")
        assert _executions_of(client, "guard.driveby", "kept") == 0
        assert _executions_of(client, "guard.driveby", "planted") == 0


def test_a_rebound_name_is_refused_so_no_answer_is_read(server: LiveServer, browser: Any) -> None:
    """A page whose own name now resolves to 127.0.0.1 (DNS rebinding) talks to the server
    "same-origin": its Host is not the server's, so it gets 421 and reads nothing."""
    with watched_page(browser) as page:
        shown = page.goto(f"http://{REBOUND}:{server.port}/ui/flows")
        assert shown is not None and shown.status == 421
        flow = log_flow("rebound", "guard.rebinding")
        answer = page.evaluate(
            """async (flow) => {
                const r = await fetch("/api/v1/flows", {method: "POST", body: flow,
                    headers: {"Content-Type": "application/x-yaml"}});
                return [r.status, await r.text()];
            }""",
            flow,
        )
    assert answer[0] == 421 and REBOUND in json.loads(answer[1])["message"]
    with server.client() as client:
        assert not _flow_exists(client, "guard.rebinding", "rebound")


def test_wrong_host_is_421_in_kestras_shape(server: LiveServer) -> None:
    """Any name but the server's: 421 on reads and writes; loopback names with any port pass."""
    with server.client() as client:
        for host in ("evil.example", f"evil.example:{server.port}", "localhost.evil.example"):
            got = client.get("/api/v1/configs", headers={"Host": host})
            assert got.status_code == 421, (host, got.text)
            body = got.json()
            assert "not a name of this server" in body["message"]
            assert body["_links"]["self"]["href"] == "/api/v1/configs"
        refused = client.post(
            "/api/v1/flows",
            content=log_flow("misdirected"),
            headers={**YAML, "Host": "evil.example"},
        )
        assert refused.status_code == 421
        assert not _flow_exists(client, "guard.test", "misdirected")
        for host in (f"localhost:{server.port}", "127.0.0.1", f"[::1]:{server.port}", "LOCALHOST."):
            assert client.get("/api/v1/configs", headers={"Host": host}).status_code == 200


def test_foreign_origin_or_referer_cannot_change_anything(server: LiveServer) -> None:
    """POST, PUT and DELETE from another origin (Origin, or Referer alone, or "null"): 403 and
    nothing changed; the server's own origin (its UI) and no Origin at all (curl) may."""
    own = server.url
    with server.client() as client:
        push_flow(client, log_flow("target", "guard.origin"))
        foreign = [
            {"Origin": "http://127.0.0.1:1"},
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Referer": "http://evil.example/page.html"},
            {"Sec-Fetch-Site": "cross-site"},
        ]
        for headers in foreign:
            attempts = [
                client.post("/api/v1/flows", content=log_flow("made"), headers={**YAML, **headers}),
                client.put(
                    "/api/v1/flows/guard.origin/target",
                    content=log_flow("target", "guard.origin", "changed"),
                    headers={**YAML, **headers},
                ),
                client.post(
                    "/api/v1/main/executions/guard.origin/target", files={}, headers=headers
                ),
                client.delete("/api/v1/flows/guard.origin/target", headers=headers),
            ]
            for answer in attempts:
                assert answer.status_code == 403, (headers, answer.request.url, answer.text)
                assert "another origin" in answer.json()["message"]
        assert not _flow_exists(client, "guard.test", "made")
        source = client.get("/api/v1/flows/guard.origin/target", params={"source": True})
        assert "changed" not in source.json()["source"]
        assert _executions_of(client, "guard.origin", "target") == 0
        # reading stays open to any origin (a browser cannot read the answer: no CORS headers)
        assert client.get("/api/v1/configs", headers={"Origin": "https://evil.example"}).is_success
        assert (
            "access-control-allow-origin"
            not in client.get("/api/v1/configs", headers={"Origin": "https://evil.example"}).headers
        )
        # the server's own pages, and curl-like tools without Origin, without credentials
        same = client.put(
            "/api/v1/flows/guard.origin/target",
            content=log_flow("target", "guard.origin", "by-the-ui"),
            headers={**YAML, "Origin": own, "Referer": f"{own}/ui/flows"},
        )
        assert same.status_code == 200, same.text
        run = client.post("/api/v1/executions/guard.origin/target", files={})
        assert run.status_code == 200, run.text
        assert wait_state(client, run.json()["id"], {"SUCCESS"})["state"]["current"] == "SUCCESS"
    curl = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
         f"{own}/api/v1/flows/guard.origin/target"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert curl.stdout == "204", curl.stdout + curl.stderr


def test_a_flow_body_is_yaml_json_or_multipart_else_415(server: LiveServer) -> None:
    """text/plain, a form, or no type at all: 415 naming the types; YAML and JSON are taken."""
    with server.client() as client:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            for method, path in (
                ("POST", "/api/v1/flows"),
                ("POST", "/api/v1/main/flows/validate"),
                ("POST", "/api/v1/flows/guard.types"),
                ("PUT", "/api/v1/flows/guard.types/typed"),
            ):
                answer = client.request(
                    method, path, content=log_flow("typed", "guard.types"), headers=headers
                )
                assert answer.status_code == 415, (method, path, content_type, answer.text)
                assert "application/x-yaml" in answer.json()["message"]
        assert not _flow_exists(client, "guard.types", "typed")
        as_json = json.dumps(
            {
                "id": "typed",
                "namespace": "guard.types",
                "tasks": [{"id": "say", "type": "io.kestra.plugin.core.log.Log", "message": "j"}],
            }
        )
        made = client.post(
            "/api/v1/flows", content=as_json, headers={"Content-Type": "application/json"}
        )
        assert made.status_code == 200, made.text
        assert client.post(
            "/api/v1/flows/validate",
            content=log_flow("other"),
            headers={"Content-Type": "application/x-yaml; charset=utf-8"},
        ).is_success


# ----- item 1: host-opening task options


def test_host_options_are_refused_by_the_server_with_the_task_and_the_option(
    server: LiveServer,
) -> None:
    """networkMode: host, deviceRequests and a Clone of file://: 422 on create, update and
    validate, each naming its task, the option and how to allow it."""
    opening = (
        "id: opener\nnamespace: guard.hostopts\ntasks:\n"
        "  - id: net\n"
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        "    taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker, "
        "networkMode: host}\n"
        "    commands: [hostname]\n"
        "  - id: gpu\n"
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        "    docker: {deviceRequests: [{count: -1, capabilities: [[gpu]]}]}\n"
        "    commands: [nvidia-smi]\n"
        "  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n"
        "    tasks:\n"
        "      - id: repo\n"
        "        type: io.kestra.plugin.git.Clone\n"
        "        url: file:///etc\n"
    )
    with server.client() as client:
        made = client.post("/api/v1/flows", content=opening, headers=YAML)
        assert made.status_code == 422, made.text
        message = made.json()["message"]
        for part in (
            "task 'net': networkMode: host opens the host",
            "task 'gpu': deviceRequests opens the host",
            "task 'repo': url: file:///etc opens the host",
            "allowHostOptions: true",
            "EXECUTOR_SERVER_ALLOW_HOST_OPTIONS=true",
        ):
            assert part in message, message
        assert "Traceback" not in message
        assert not _flow_exists(client, "guard.hostopts", "opener")
        push_flow(client, log_flow("opener", "guard.hostopts"))
        updated = client.put(
            "/api/v1/flows/guard.hostopts/opener",
            content=host_network_flow("opener", "guard.hostopts"),
            headers=YAML,
        )
        assert updated.status_code == 422 and "networkMode: host" in updated.json()["message"]
        checked = client.post("/api/v1/flows/validate", content=opening, headers=YAML).json()
        assert "networkMode: host opens the host" in checked[0]["constraints"]
        bulk = client.post(
            "/api/v1/flows/guard.hostopts",
            content=host_network_flow("other", "guard.hostopts"),
            headers=YAML,
        )
        assert bulk.status_code == 422 and "networkMode: host" in bulk.json()["message"]


def test_a_flow_stored_before_the_rule_is_refused_to_run_with_the_same_reason(
    server: LiveServer,
) -> None:
    """A host-opening flow already in the store: its execution is a 422 naming the option; as
    a subflow (checked only at run time) the Subflow task fails with the same reason, and a
    Clone URL that renders to file:// fails its task too."""
    with Store(server.home / "executor.db") as store:
        save_flow(store, "guard.stored", "old", host_network_flow("old", "guard.stored"))
    parent = (
        "id: parent\nnamespace: guard.stored\ntasks:\n"
        "  - id: child\n    type: io.kestra.plugin.core.flow.Subflow\n"
        "    namespace: guard.stored\n    flowId: old\n"
    )
    clone = (
        "id: cloner\nnamespace: guard.stored\n"
        "inputs: [{id: repo, type: STRING}]\ntasks:\n"
        "  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n"
        "      - id: get\n        type: io.kestra.plugin.git.Clone\n"
        '        url: "{{ inputs.repo }}"\n'
        f"      - id: ls\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        f"        containerImage: {BUSYBOX}\n        commands: [ls]\n"
    )
    with server.client() as client:
        refused = client.post("/api/v1/executions/guard.stored/old", files={})
        assert refused.status_code == 422, refused.text
        assert "task 'net': networkMode: host opens the host" in refused.json()["message"]
        assert _executions_of(client, "guard.stored", "old") == 0
        push_flow(client, parent)
        run = client.post("/api/v1/executions/guard.stored/parent", files={}).json()
        ended = wait_state(client, run["id"], {"FAILED", "SUCCESS", "WARNING"})
        assert ended["state"]["current"] == "FAILED"
        assert any("networkMode: host opens the host" in m for m in logs_of(client, run["id"]))
        assert _executions_of(client, "guard.stored", "old") == 0
        push_flow(client, clone)
        cloned = client.post(
            "/api/v1/executions/guard.stored/cloner", files={"repo": (None, "file:///etc")}
        ).json()
        ended = wait_state(client, cloned["id"], {"FAILED", "SUCCESS", "WARNING"})
        assert ended["state"]["current"] == "FAILED"
        assert any("url: file:///etc opens the host" in m for m in logs_of(client, cloned["id"])), (
            logs_of(client, cloned["id"])
        )


def test_host_options_run_when_the_server_allows_them_and_under_executor_run(
    tmp_path: Path,
) -> None:
    """allowHostOptions: the flow is stored and its task sees the host's name; `executor run`
    keeps them without any configuration."""
    home = tmp_path / "allowing"
    allowing = LiveServer(home, env={"EXECUTOR_SERVER_ALLOW_HOST_OPTIONS": "true"})
    with allowing, allowing.client() as client:
        push_flow(client, host_network_flow("open"))
        run = client.post("/api/v1/executions/guard.test/open", files={}).json()
        assert wait_state(client, run["id"], {"SUCCESS", "FAILED"})["state"]["current"] == (
            "SUCCESS"
        ), logs_of(client, run["id"])
        assert f"host is {socket.gethostname()}" in logs_of(client, run["id"])
    flow = tmp_path / "open.yaml"
    flow.write_text(host_network_flow("open"))
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run", str(flow), "-q"],
        env={**os.environ, "EXECUTOR_HOME": str(tmp_path / "cli")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_worker_refuses_host_options_as_its_server_does(tmp_path: Path) -> None:
    """Through a broker and a worker: the subflow that opens the host is refused on the
    worker with the server's reason (the server does not allow host options)."""
    redis, port = start_redis(tmp_path, ["127.0.0.1"])
    cluster = Cluster(tmp_path, "127.0.0.1", f"redis://127.0.0.1:{port}/0")
    try:
        cluster.start_server()
        cluster.start_worker("w1")
        with Store(tmp_path / "server" / "executor.db") as store:
            save_flow(store, "guard.worker", "old", host_network_flow("old", "guard.worker"))
        with cluster.client() as client:
            push_flow(
                client,
                "id: parent\nnamespace: guard.worker\ntasks:\n"
                "  - id: child\n    type: io.kestra.plugin.core.flow.Subflow\n"
                "    namespace: guard.worker\n    flowId: old\n",
            )
            run = client.post("/api/v1/executions/guard.worker/parent", files={}).json()
            ended = wait_state(client, run["id"], {"FAILED", "SUCCESS", "WARNING"})
            log = logs_of(client, run["id"])
            assert ended["state"]["current"] == "FAILED", log
            assert any("attempt 1 on worker w1" in m for m in log), log
            assert any("networkMode: host opens the host" in m for m in log), log
    finally:
        cluster.stop()
        redis.stop()


# ----- item 2: the webhook route


def test_only_the_exact_webhook_route_is_open(tmp_path: Path) -> None:
    """With users: a flow named like the webhook route, or an execution whose id is
    ``webhook``, needs credentials on both prefixes; the webhook route itself stays open."""
    users = {"EXECUTOR_SERVER_USERS": "alice:s3cret"}
    with LiveServer(tmp_path / "home", env=users, auth=("alice", "s3cret")) as live:
        with live.client() as client:
            push_flow(client, log_flow("someflow", "webhook"))
        closed = [
            ("POST", "/api/v1/executions/webhook/someflow"),
            ("POST", "/api/v1/main/executions/webhook/someflow"),
            ("GET", "/api/v1/executions/webhook/follow"),
            ("GET", "/api/v1/main/executions/webhook/follow"),
            ("DELETE", "/api/v1/executions/webhook/kill"),
            ("GET", "/api/v1/executions/webhook/file?path=kestra:///x"),
            ("GET", "/api/v1/main/executions/webhook/file/metas?path=kestra:///x"),
            ("DELETE", "/api/v1/executions/webhook/someflow/key/extra"),
        ]
        for method, path in closed:
            answer = httpx.request(method, f"{live.url}{path}", files={}, timeout=30)
            assert answer.status_code == 401, (method, path, answer.text)
        with live.client() as client:
            assert _executions_of(client, "webhook", "someflow") == 0
        for prefix in ("/api/v1", "/api/v1/main"):
            hook = httpx.post(f"{live.url}{prefix}/executions/webhook/webhook/someflow/k")
            assert hook.status_code == 404 and "Webhook not found" in hook.json()["message"]


# ----- item 4: credentials in the server log


FAILING_SERVER = """
import sys
from pathlib import Path

from fastapi import APIRouter, Request

from executor import log
from executor.server.config import ServerConfig
from executor.server.serve import serve
from executor.settings import Settings

router = APIRouter()


@router.get("/api/v1/boom")
def boom(request: Request) -> None:
    headers = dict(request.headers)  # a local holding every header, as the framework's do
    raise RuntimeError(f"a bug with {len(headers)} headers")


log.configure("console")
settings = Settings.from_env()
serve(settings, ServerConfig.load(settings.home, port=int(sys.argv[1]), workers=1), [router])
"""


PROXY = base64.b64encode(b"s3cret-proxy").decode()


def test_secrets_stay_out_of_the_log_after_a_500(tmp_path: Path) -> None:
    """A route that fails inside the real server stack (a test-only route): the 500 is logged
    with its traceback, but no token, password or cookie of the request is in the log."""
    script = tmp_path / "failing_server.py"
    script.write_text(FAILING_SERVER)
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "EXECUTOR_HOME": str(home),
        "EXECUTOR_SERVER_USERS": "alice:s3cret-password",
        "EXECUTOR_SERVER_TOKENS": "s3cret-token",
        "COLUMNS": "200",
    }
    process = start([sys.executable, str(script), str(port)], tmp_path / "server.log", env)
    url = f"http://127.0.0.1:{port}/api/v1/boom"
    try:

        def answers() -> bool:
            assert process.proc.poll() is None, process.output()
            try:
                return httpx.get(url, timeout=2).status_code == 401
            except httpx.TransportError:
                return False

        until(answers, 90, process.output)
        sent = [
            {"Authorization": "Bearer s3cret-token", "Cookie": "session=s3cret-cookie"},
            {"Authorization": "Basic " + base64.b64encode(b"alice:s3cret-password").decode()},
            {"Authorization": "Bearer s3cret-token", "Proxy-Authorization": f"Basic {PROXY}"},
        ]
        for headers in sent:
            answer = httpx.get(url, headers=headers, timeout=30)
            assert answer.status_code == 500
            assert answer.json()["message"] == "Internal server error: RuntimeError"
        until(lambda: process.output().count("a bug with") >= 3, 30, process.output)
    finally:
        process.stop()
    output = process.output()
    assert "request failed" in output and "RuntimeError" in output
    for secret in (
        "s3cret-token",
        "s3cret-password",
        "s3cret-cookie",
        base64.b64encode(b"alice:s3cret-password").decode(),
        PROXY,
    ):
        assert secret not in output, f"{secret} in the log:\n{output}"
