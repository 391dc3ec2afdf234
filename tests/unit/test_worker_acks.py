"""The acknowledgement retried on the worker's event loop until the broker takes it."""

from __future__ import annotations

from typing import Any

from executor.worker.acks import RETRY_MAX_SECONDS, ack_later


class Away(Exception):
    """The broker cannot be reached."""


class Message:
    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.acknowledged = False
        self.delivery_tag = "tag-1"
        self.tries = 0
        self.channel = type("Channel", (), {"closed": False})()

    def ack(self) -> None:
        self.tries += 1
        if self.tries <= self.refusals:
            raise Away("connection refused")
        self.acknowledged = True


class Loop:
    """Timers kept to be fired by the test, in order."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, Any, tuple[Any, ...]]] = []

    def call_later(self, delay: float, callback: Any, *args: Any) -> None:
        self.timers.append((delay, callback, args))

    def fire(self) -> float:
        delay, callback, args = self.timers.pop(0)
        callback(*args)
        return delay


def test_the_ack_is_tried_again_with_backoff_until_the_broker_takes_it() -> None:
    loop, message = Loop(), Message(refusals=6)
    ack_later(loop, message, (Away,))
    delays = []
    while loop.timers:
        delays.append(loop.fire())
    assert message.acknowledged and message.tries == 7
    assert delays == [0.5, 1.0, 2.0, 4.0, RETRY_MAX_SECONDS, RETRY_MAX_SECONDS]


def test_an_ack_already_taken_is_not_sent_again() -> None:
    loop, message = Loop(), Message(refusals=0)
    message.acknowledged = True
    ack_later(loop, message, (Away,))
    assert message.tries == 0 and not loop.timers


def test_an_error_other_than_the_broker_away_ends_the_retries() -> None:
    class Closed(Message):
        def ack(self) -> None:
            raise RuntimeError("channel closed")

    loop, message = Loop(), Closed(refusals=0)
    ack_later(loop, message, (Away,))
    assert not loop.timers


def test_a_closed_channel_owes_nothing() -> None:
    loop, message = Loop(), Message(refusals=1)
    message.channel.closed = True
    ack_later(loop, message, (Away,))
    assert message.tries == 0 and not loop.timers
