"""The ``kestra`` module shipped into containers speaks the protocol our parser reads."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import executor.run
from executor.run.protocol import Metric, ProtocolLogLine, ProtocolMessage, parse_line

MODULE_DIR = Path(executor.run.__file__).parent / "kestra"


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(MODULE_DIR)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=MODULE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def messages(code: str) -> list[ProtocolMessage]:
    result = run_script(code)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    parsed = [parse_line(line) for line in lines]
    assert all(message is not None for message in parsed), lines
    return [message for message in parsed if message is not None]


def test_outputs_prints_one_protocol_line() -> None:
    """``Kestra.outputs`` prints exactly one line holding the outputs."""
    assert messages("""
        from kestra import Kestra
        Kestra.outputs({"rows": 42, "name": "ünïcode", "nested": {"list": [1, None, True]}})
    """) == [
        ProtocolMessage(
            outputs={"rows": 42, "name": "ünïcode", "nested": {"list": [1, None, True]}}
        )
    ]


def test_counter_and_timer_send_metrics() -> None:
    """Counters and timers (seconds, with or without tags) arrive as metrics."""
    assert messages("""
        from kestra import Kestra
        Kestra.counter("rows", 10, {"table": "users"})
        Kestra.counter("calls", 1)
        Kestra.timer("load", 1.5, tags={"step": "a"})
    """) == [
        ProtocolMessage(metrics=[Metric("rows", "counter", 10.0, {"table": "users"})]),
        ProtocolMessage(metrics=[Metric("calls", "counter", 1.0, {})]),
        ProtocolMessage(metrics=[Metric("load", "timer", 1.5, {"step": "a"})]),
    ]


def test_timer_times_a_callable_and_returns_its_result() -> None:
    """A callable duration is run and timed in seconds; its result is handed back."""
    result = messages("""
        import time
        from kestra import Kestra
        value = Kestra.timer("work", lambda: time.sleep(0.2) or "done")
        Kestra.outputs({"value": value})
    """)
    assert len(result) == 2
    (metric,) = result[0].metrics
    assert (metric.name, metric.type) == ("work", "timer")
    assert 0.2 <= metric.value < 5
    assert result[1].outputs == {"value": "done"}


def test_logger_records_become_protocol_log_lines() -> None:
    """Each record is one ``logs`` line on stdout, with Kestra's level names."""
    assert messages("""
        from kestra import Kestra
        log = Kestra.logger()
        log.debug("d %s", 1)
        log.info("i")
        log.warning("w")
        log.error("e")
        log.critical("c")
        assert Kestra.logger() is log
        log.info("once")
    """) == [
        ProtocolMessage(logs=[ProtocolLogLine("DEBUG", "d 1")]),
        ProtocolMessage(logs=[ProtocolLogLine("INFO", "i")]),
        ProtocolMessage(logs=[ProtocolLogLine("WARN", "w")]),
        ProtocolMessage(logs=[ProtocolLogLine("ERROR", "e")]),
        ProtocolMessage(logs=[ProtocolLogLine("ERROR", "c")]),
        ProtocolMessage(logs=[ProtocolLogLine("INFO", "once")]),
    ]


def test_logged_exception_keeps_its_traceback_in_one_line() -> None:
    """``logger.exception`` sends the traceback inside the message, still on a single line."""
    result = messages("""
        from kestra import Kestra
        try:
            1 / 0
        except ZeroDivisionError:
            Kestra.logger().exception("failed\\nbadly")
    """)
    (line,) = result[0].logs
    assert line.level == "ERROR"
    assert line.message.startswith("failed\nbadly\nTraceback")
    assert "ZeroDivisionError" in line.message


def test_lines_are_flushed_immediately() -> None:
    """A line is on stdout even when the process dies without flushing its buffers."""
    result = run_script("""
        import os
        from kestra import Kestra
        Kestra.outputs({"a": 1})
        os._exit(3)
    """)
    assert result.returncode == 3
    assert parse_line(result.stdout) == ProtocolMessage(outputs={"a": 1})


def test_unserialisable_values_are_sent_as_text() -> None:
    """A value JSON cannot hold (a date) is sent as its text rather than crashing the script."""
    assert messages("""
        import datetime
        from kestra import Kestra
        Kestra.outputs({"day": datetime.date(2024, 1, 2)})
    """) == [ProtocolMessage(outputs={"day": "2024-01-02"})]


@pytest.mark.parametrize("version", [(3, 7), (3, 8)])
def test_module_is_python_37_syntax_and_stdlib_only(version: tuple[int, int]) -> None:
    """The module parses as old Python and imports only the standard library."""
    source = (MODULE_DIR / "kestra.py").read_text()
    tree = ast.parse(source, feature_version=version)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_directory_is_not_a_package() -> None:
    """The directory only holds the module put on PYTHONPATH, not a package of ours."""
    assert not (MODULE_DIR / "__init__.py").exists()
