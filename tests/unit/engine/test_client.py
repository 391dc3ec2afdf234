"""The one boundary where Docker's and the transport's errors become ours."""

from __future__ import annotations

import pytest
import requests.exceptions
import urllib3.exceptions

from executor.engine.docker.client import RetryPolicy, translated
from executor.errors import EngineLost, EngineUnavailable


def _raw_refused() -> requests.exceptions.ConnectionError:
    refused = ConnectionRefusedError(111, "Connection refused")
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", refused)
    )


def test_a_refused_connection_becomes_engine_lost_naming_the_address() -> None:
    """docker-py's 'Connection aborted' text never goes further: the engine is named instead."""
    with pytest.raises(EngineLost) as caught, translated("inspect exec", "unix:///run/e2.sock"):
        raise _raw_refused()
    message = str(caught.value)
    assert (
        message == "the Docker engine at unix:///run/e2.sock stopped answering (connection refused)"
    )
    assert isinstance(caught.value, EngineUnavailable) and caught.value.exit_code == 3


def test_a_broken_stream_becomes_engine_lost() -> None:
    """urllib3's own errors (raised while a stream is read) are translated too."""
    with pytest.raises(EngineLost, match="stopped answering"), translated("copy out of /x"):
        raise urllib3.exceptions.ProtocolError("Connection broken", ConnectionResetError())


def test_engine_lost_names_the_task_once() -> None:
    """The loss is told as having happened during the task that was running, outermost not."""
    lost = EngineLost("unix:///s", "connection refused").during("x")
    assert lost.during("wd") is lost
    assert (
        str(lost)
        == "the Docker engine at unix:///s stopped answering during task 'x' (connection refused)"
    )


def test_retry_policy_retries_a_lost_engine_then_names_it() -> None:
    """A lost engine is retried (it may be restarting), then reported with the policy's address."""
    calls: list[int] = []

    def refuse() -> None:
        calls.append(1)
        raise _raw_refused()

    policy = RetryPolicy(attempts=3, first_wait=0, max_wait=0).for_engine("tcp://h:2375")
    with pytest.raises(EngineLost, match="tcp://h:2375"):
        policy.call("inspect exec", refuse)
    assert len(calls) == 3
