"""Odoo's ``Query`` against a local XML-RPC server speaking Odoo's documented external API.

The server on 127.0.0.1 serves ``/xmlrpc/2/common`` (``authenticate`` gives a user id, or false
for a wrong password) and ``/xmlrpc/2/object`` (``execute_kw`` on an in-memory ``sale.order``
table: ``search_read``, ``read``, ``search``, ``search_count``, ``create``, ``write``,
``unlink``) and answers errors with faults shaped as Odoo's (a traceback ending with the error).
It is not Odoo itself.
"""

from __future__ import annotations

import base64
import json
import threading
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xmlrpc.server import MultiPathXMLRPCServer, SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

import pytest

from tests.integration.host_flows import logs, run_json, state_of, task_run

pytestmark = pytest.mark.integration

PASSWORD = "odoo-Api-K3y-9QxW"
SECRETS = {"SECRET_ODOO_PASSWORD": base64.b64encode(PASSWORD.encode()).decode()}
UID = 2
ORDERS = [
    {
        "id": 7,
        "name": "S00007",
        "partner_id": [14, "Acme"],
        "date_order": "2024-05-01 09:00:00",
        "amount_total": 120.5,
        "currency_id": [1, "EUR"],
        "state": "sale",
    },
    {
        "id": 8,
        "name": "S00008",
        "partner_id": [15, "Globex"],
        "date_order": "2024-05-01 17:30:00",
        "amount_total": 80.0,
        "currency_id": [2, "USD"],
        "state": "done",
    },
    {
        "id": 9,
        "name": "S00009",
        "partner_id": [14, "Acme"],
        "date_order": "2024-05-01 18:00:00",
        "amount_total": 99.0,
        "currency_id": [1, "EUR"],
        "state": "draft",
    },
    {
        "id": 10,
        "name": "S00010",
        "partner_id": [16, "Initech"],
        "date_order": "2024-05-02 08:00:00",
        "amount_total": 10.0,
        "currency_id": [1, "EUR"],
        "state": "sale",
    },
]


def _fault(error: str) -> xmlrpc.client.Fault:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/dist-packages/odoo/service/model.py", line 59, in wrapper\n'
        "    return f(dbname, *args, **kwargs)\n"
        f"{error}\n"
    )
    return xmlrpc.client.Fault(1, trace)


def _match(row: dict[str, Any], domain: list[Any]) -> bool:
    ops = {
        "=": lambda a, b: a == b,
        "in": lambda a, b: a in b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }
    return all(ops[op](row[name], value) for name, op, value in domain)


@dataclass
class FakeOdoo:
    """Odoo's two XML-RPC services over an in-memory sale.order table; every call recorded."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=lambda: [dict(r) for r in ORDERS])

    def authenticate(self, db: str, login: str, password: str, context: dict[str, Any]) -> Any:
        self.calls.append(("authenticate", (db, login, password, context)))
        return UID if (db, login, password) == ("sales", "bot@example.com", PASSWORD) else False

    def execute_kw(
        self,
        db: str,
        uid: int,
        password: str,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.calls.append(("execute_kw", (db, uid, password, model, method, args, kwargs)))
        if (uid, password) != (UID, PASSWORD):
            raise xmlrpc.client.Fault(3, "Access Denied")
        if model != "sale.order":
            raise _fault(f"KeyError: '{model}'")
        kwargs = kwargs or {}
        fields = kwargs.get("fields")
        for name in fields or ():
            if name not in ORDERS[0]:
                raise _fault(f"ValueError: Invalid field '{name}' on model 'sale.order'")
        if method in ("search_read", "search", "search_count"):
            found = [r for r in self.rows if _match(r, args[0])]
            found = found[kwargs.get("offset", 0) :]
            if "limit" in kwargs:
                found = found[: kwargs["limit"]]
            if method == "search_count":
                return len(found)
            if method == "search":
                return [r["id"] for r in found]
            return [{"id": r["id"], **{f: r[f] for f in fields}} if fields else r for r in found]
        if method == "read":
            return [
                {"id": r["id"], **{f: r[f] for f in fields or r}}
                for r in self.rows
                if r["id"] in args[0]
            ]
        if method == "create":
            new = {**ORDERS[0], **args[0], "id": 100 + len(self.rows)}
            self.rows.append(new)
            return new["id"]
        if method == "write":
            for row in self.rows:
                if row["id"] in args[0]:
                    row.update(args[1])
            return True
        if method == "unlink":
            self.rows = [r for r in self.rows if r["id"] not in args[0]]
            return True
        raise _fault(f"AttributeError: The method '{method}' does not exist on the model")


class _Paths(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def odoo() -> Iterator[tuple[str, FakeOdoo]]:
    fake = FakeOdoo()
    server = MultiPathXMLRPCServer(
        ("127.0.0.1", 0),
        requestHandler=_Paths,
        logRequests=False,
        allow_none=True,
        use_builtin_types=True,
    )
    for path, function in (
        ("/xmlrpc/2/common", fake.authenticate),
        ("/xmlrpc/2/object", fake.execute_kw),
    ):
        dispatcher = SimpleXMLRPCDispatcher(allow_none=True, use_builtin_types=True)
        dispatcher.register_function(function)
        server.add_dispatcher(path, dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _defaults(url: str) -> str:
    return f"""
        pluginDefaults:
          - type: io.kestra.plugin.odoo.Query
            values:
              url: "{url}/"
              db: sales
              username: bot@example.com
              password: "{{{{ secret('ODOO_PASSWORD') }}}}"
    """


def test_odoo_operations_and_outputs(
    odoo: tuple[str, FakeOdoo], home: Path, tmp_path: Path
) -> None:
    """SEARCH_READ to an Ion file read by IonToJson, FETCH_ONE, SEARCH, SEARCH_COUNT, CREATE
    and WRITE: the XML-RPC calls Odoo gets and Kestra's outputs."""
    url, fake = odoo
    fake.calls.clear()
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: odoo_demo
        namespace: tests.services
        variables:
          day: "2024-05-01"
        tasks:
          - id: orders
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: SEARCH_READ
            filters:
              - ["state", "in", ["sale", "done"]]
              - ["date_order", ">=", "{{{{ vars.day }}}} 00:00:00"]
              - ["date_order", "<=", "{{{{ vars.day }}}} 23:59:59"]
            fields: [name, partner_id, amount_total]
            limit: 100000
            fetchType: STORE
          - id: to_jsonl
            type: io.kestra.plugin.serdes.json.IonToJson
            from: "{{{{ outputs.orders.uri }}}}"
          - id: first
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: search_read
            fields: [name]
            offset: 1
            fetchType: FETCH_ONE
          - id: ids
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: SEARCH
            filters: '[["state", "=", "sale"]]'
            fetchType: FETCH
          - id: count
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: SEARCH_COUNT
          - id: create
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: CREATE
            values:
              name: S00100
              amount_total: 1.5
          - id: write
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: WRITE
            ids: ["{{{{ outputs.create.ids[0] }}}}"]
            values:
              state: done
        {_defaults(url)}
        """,
        env=SECRETS,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    auth = ("authenticate", ("sales", "bot@example.com", PASSWORD, {}))
    assert fake.calls[0] == auth
    assert fake.calls[1] == (
        "execute_kw",
        (
            "sales",
            UID,
            PASSWORD,
            "sale.order",
            "search_read",
            [
                [
                    ["state", "in", ["sale", "done"]],
                    ["date_order", ">=", "2024-05-01 00:00:00"],
                    ["date_order", "<=", "2024-05-01 23:59:59"],
                ]
            ],
            {"fields": ["name", "partner_id", "amount_total"], "limit": 100000},
        ),
    )
    stored = task_run(execution, "orders")["outputs"]
    assert stored["size"] == 2 and stored["uri"].endswith("/orders.ion")
    jsonl = (
        home
        / "artifacts"
        / task_run(execution, "to_jsonl")["outputs"]["uri"].removeprefix("kestra:///")
    )
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [
        {"id": 7, "name": "S00007", "partner_id": [14, "Acme"], "amount_total": 120.5},
        {"id": 8, "name": "S00008", "partner_id": [15, "Globex"], "amount_total": 80.0},
    ]
    assert fake.calls[3][1][4:] == ("search_read", [[]], {"fields": ["name"], "offset": 1})
    assert task_run(execution, "first")["outputs"] == {
        "size": 1,
        "row": {"id": 8, "name": "S00008"},
    }
    assert fake.calls[5][1][4:] == ("search", [[["state", "=", "sale"]]], None)
    assert task_run(execution, "ids")["outputs"] == {"size": 2, "rows": [{"id": 7}, {"id": 10}]}
    assert task_run(execution, "count")["outputs"] == {"size": 4}
    assert fake.calls[9][1][4:] == ("create", [{"name": "S00100", "amount_total": 1.5}], None)
    assert task_run(execution, "create")["outputs"] == {"size": 1, "ids": [104]}
    assert fake.calls[11][1][4:] == ("write", [[104], {"state": "done"}], None)
    assert task_run(execution, "write")["outputs"] == {"size": 1, "ids": [104]}
    assert PASSWORD not in logs(home, execution) + proc.stdout + proc.stderr


def test_odoo_refusals_are_one_line(odoo: tuple[str, FakeOdoo], home: Path, tmp_path: Path) -> None:
    """A wrong password (authenticate gives false), an invalid field (a fault), a URL that is
    not Odoo's: each fails its task with one line naming it; the password shows nowhere."""
    url, _ = odoo
    proc, execution = run_json(
        home,
        tmp_path,
        f"""
        id: odoo_errors
        namespace: tests.services
        tasks:
          - id: wrong_password
            type: io.kestra.plugin.odoo.Query
            password: "x{{{{ secret('ODOO_PASSWORD') }}}}"
            model: sale.order
            operation: SEARCH_COUNT
            allowFailure: true
          - id: not_odoo
            type: io.kestra.plugin.odoo.Query
            url: "{url}/web"
            model: sale.order
            operation: SEARCH_COUNT
            allowFailure: true
          - id: bad_field
            type: io.kestra.plugin.odoo.Query
            model: sale.order
            operation: SEARCH_READ
            fields: [name, colour]
            fetchType: FETCH
        {_defaults(url)}
        """,
        env=SECRETS,
    )
    assert proc.returncode == 1
    reasons = {
        t: task_run(execution, t)["reason"] for t in ("wrong_password", "not_odoo", "bad_field")
    }
    for task_id, reason in reasons.items():
        assert f"task '{task_id}'" in reason and "\n" not in reason, reason
    assert state_of(execution, "wrong_password") == "WARNING"
    assert (
        "Odoo refused the login of 'bot@example.com' to database 'sales': wrong login or password"
        in reasons["wrong_password"]
    )
    assert f"Odoo answered 404 Not Found at {url}/web/xmlrpc/2/common" in reasons["not_odoo"]
    assert state_of(execution, "bad_field") == "FAILED"
    assert (
        "Odoo refused search_read on sale.order: ValueError: Invalid field 'colour' on model "
        "'sale.order'" in reasons["bad_field"]
    )
    assert PASSWORD not in json.dumps(reasons) + logs(home, execution) + proc.stdout + proc.stderr
