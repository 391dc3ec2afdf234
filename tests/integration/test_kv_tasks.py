"""KV tasks and kv() through `executor run`, and `executor kv`, on the real records database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import cli
from tests.integration.host_flows import run_json, state_of, task_run

pytestmark = pytest.mark.integration

WRITE = """
id: kv_write
namespace: tests.kv
tasks:
  - id: put_orders
    type: io.kestra.plugin.core.kv.Set
    key: orders
    value: '{"count": 3}'
    kvType: JSON
  - id: put_total
    type: io.kestra.plugin.core.kv.Set
    key: total
    value: "{{ 40 + 2 }}"
    kvDescription: computed
  - id: keep
    type: io.kestra.plugin.core.kv.Set
    key: total
    value: "0"
    overwrite: false
    allowFailure: true
"""

READ = """
id: kv_read
namespace: tests.kv
tasks:
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: orders
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
    prefix: o
  - id: sum
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.get.value.count + kv('total') }}"
  - id: drop
    type: io.kestra.plugin.core.kv.Delete
    key: orders
  - id: gone
    type: io.kestra.plugin.core.kv.Get
    key: orders
    errorOnMissing: true
"""


def test_values_set_by_one_execution_are_read_by_the_next(home: Path, tmp_path: Path) -> None:
    """Set in one run; Get, GetKeys, kv() and Delete in another; `executor kv` sees the same."""
    proc, written = run_json(home, tmp_path, WRITE)
    assert proc.returncode == 0, proc.stderr
    assert state_of(written, "keep") == "WARNING"  # overwrite: false on a live key
    assert "already exists and 'overwrite' is false" in task_run(written, "keep")["reason"]

    shown = cli(home, "kv", "get", "tests.kv", "total")
    assert (shown.returncode, shown.stdout.strip()) == (0, "42")
    listed = cli(home, "kv", "ls", "tests.kv")
    assert listed.stdout.split() == ["orders", "JSON", "total", "NUMBER"]

    proc, read = run_json(home, tmp_path, READ)
    assert proc.returncode == 1
    assert task_run(read, "get")["outputs"]["value"] == {"count": 3}
    assert task_run(read, "keys")["outputs"]["keys"] == ["orders"]
    assert task_run(read, "sum")["outputs"]["value"] == "45"
    assert task_run(read, "drop")["outputs"]["deleted"] is True
    assert "no value for key 'orders' in namespace 'tests.kv'" in task_run(read, "gone")["reason"]
    assert cli(home, "kv", "get", "tests.kv", "orders").returncode == 4


def test_kv_cli_set_ttl_and_remove(home: Path) -> None:
    """`executor kv set --type --ttl`, `ls` shows the expiry, `rm` removes, bad input exits 2."""
    assert cli(home, "kv", "set", "tests.kv", "flag", "true", "--type", "BOOLEAN").returncode == 0
    assert cli(home, "kv", "set", "tests.kv", "tmp", "x", "--ttl", "PT1H").returncode == 0
    listed = cli(home, "kv", "ls", "tests.kv").stdout
    assert "flag\tBOOLEAN" in listed and "tmp\tSTRING  expires " in listed
    assert cli(home, "kv", "get", "tests.kv", "flag").stdout.strip() == "true"
    assert cli(home, "kv", "rm", "tests.kv", "flag").returncode == 0
    missing = cli(home, "kv", "rm", "tests.kv", "flag")
    assert missing.returncode == 4 and "no value for key 'flag'" in missing.stderr
    bad = cli(home, "kv", "set", "tests.kv", "n", "abc", "--type", "NUMBER")
    assert bad.returncode == 2 and "'abc' is not a NUMBER value" in bad.stderr
    assert "Traceback" not in bad.stderr + missing.stderr


def test_a_value_of_the_wrong_type_fails_the_task(home: Path, tmp_path: Path) -> None:
    """kvType NUMBER with text: the task fails naming 'value' and the type; nothing is stored."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: kv_bad
        namespace: tests.kv
        tasks:
          - id: put
            type: io.kestra.plugin.core.kv.Set
            key: n
            value: not-a-number
            kvType: NUMBER
        """,
    )
    assert proc.returncode == 1
    assert "'value': 'not-a-number' is not a NUMBER value" in task_run(execution, "put")["reason"]
    assert cli(home, "kv", "get", "tests.kv", "n").returncode == 4
