"""The host HTTP call (`executor.run.http.send`) against a real server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from executor.run.http import HttpCall, HttpFailure, send
from tests.receivers import Answer, HttpReceiver, http_receiver


@pytest.fixture
def server() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def test_body_headers_and_final_url(server: HttpReceiver) -> None:
    server.answers["/a"] = Answer(body=b"hello", headers={"X-Multi": "1"})
    response = send(HttpCall("GET", f"{server.url}/a", headers={"X-Me": "yes"}))
    assert (response.code, response.body, response.length) == (200, b"hello", 5)
    assert response.headers["X-Multi"] == ["1"]
    assert server.received[0].headers["X-Me"] == "yes"


def test_a_body_over_the_cap_is_refused(server: HttpReceiver) -> None:
    server.answers["/big"] = Answer(body=b"x" * 5000, chunks=5)
    with pytest.raises(HttpFailure, match="larger than the limit of 1000 bytes"):
        send(HttpCall("GET", f"{server.url}/big", max_bytes=1000))


def test_a_sink_gets_the_body_in_chunks(server: HttpReceiver) -> None:
    server.answers["/f"] = Answer(body=b"0123456789" * 10_000)
    got: list[bytes] = []
    response = send(HttpCall("GET", f"{server.url}/f"), lambda chunks: got.extend(chunks))
    assert b"".join(got) == b"0123456789" * 10_000
    assert (response.body, response.length) == (b"", 100_000)


def test_a_silent_server_times_out(server: HttpReceiver) -> None:
    server.answers["/slow"] = Answer(delay=3)
    with pytest.raises(HttpFailure, match=r"sent nothing for 0\.5s"):
        send(HttpCall("GET", f"{server.url}/slow", read_timeout=0.5))


def test_a_passed_deadline_stops_reading(server: HttpReceiver) -> None:
    """A body still arriving when the task's deadline passes is abandoned."""
    server.answers["/drip"] = Answer(body=b"y" * 400, chunks=4, delay=0.5)
    with pytest.raises(HttpFailure, match="timeout passed while reading"):
        send(HttpCall("GET", f"{server.url}/drip", deadline=time.monotonic() + 0.7))


def test_redirect_loop_and_bad_urls(server: HttpReceiver) -> None:
    server.answers["/loop"] = Answer(status=302, body=b"", headers={"Location": "/loop"})
    with pytest.raises(HttpFailure, match="more than 30 redirects"):
        send(HttpCall("GET", f"{server.url}/loop"))
    with pytest.raises(HttpFailure, match="not an http"):
        send(HttpCall("GET", "ftp://example.test/x"))


def test_nothing_listening() -> None:
    with http_receiver() as gone:
        url = gone.url
    with pytest.raises(HttpFailure, match="cannot connect"):
        send(HttpCall("GET", url))
