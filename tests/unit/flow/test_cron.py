"""Cron expressions read as Kestra's Schedule reads them: nicknames, seconds, zones, DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import islice

import pytest

from executor.flow.cron import Cron

T0 = datetime(2024, 5, 15, 10, 20, 30, tzinfo=UTC)  # a Wednesday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("nickname", "expected"),
    [
        ("@hourly", utc(2024, 5, 15, 11, 0)),
        ("@daily", utc(2024, 5, 16, 0, 0)),
        ("@midnight", utc(2024, 5, 16, 0, 0)),
        ("@weekly", utc(2024, 5, 19, 0, 0)),  # Sunday
        ("@monthly", utc(2024, 6, 1, 0, 0)),
        ("@yearly", utc(2025, 1, 1, 0, 0)),
        ("@annually", utc(2025, 1, 1, 0, 0)),
    ],
)
def test_kestra_nicknames(nickname: str, expected: datetime) -> None:
    """Each of Kestra's cron nicknames gives its next tick."""
    assert Cron(nickname).next_after(T0) == expected


def test_nickname_with_seconds_fires_at_second_zero() -> None:
    """A nickname also works on a trigger with withSeconds: true."""
    assert Cron("@hourly", with_seconds=True).next_after(T0) == utc(2024, 5, 15, 11, 0, 0)


def test_six_fields_put_the_seconds_first() -> None:
    """withSeconds: the first of six fields is the second, as in Kestra (cron-utils)."""
    cron = Cron("*/10 * * * * *", with_seconds=True)
    assert list(islice(cron.ticks_after(T0), 3)) == [
        utc(2024, 5, 15, 10, 20, 40),
        utc(2024, 5, 15, 10, 20, 50),
        utc(2024, 5, 15, 10, 21, 0),
    ]
    assert Cron("* * * * * *", with_seconds=True).next_after(T0) == utc(2024, 5, 15, 10, 20, 31)


def test_seven_is_sunday() -> None:
    """Both 0 and 7 name Sunday in the day-of-week field."""
    assert Cron("0 8 * * 7").next_after(T0) == Cron("0 8 * * 0").next_after(T0)
    assert Cron("0 8 * * 7").next_after(T0).weekday() == 6


@pytest.mark.parametrize(
    ("expression", "with_seconds", "message"),
    [
        ("* * * * * *", False, "5 fields expected, got 6"),
        ("* * * * *", True, "6 fields expected, got 5"),
        ("61 * * * *", False, "invalid cron expression '61 * * * *'"),
        ("every day", False, "5 fields expected"),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(
    expression: str, with_seconds: bool, message: str
) -> None:
    """A wrong field count or value is one readable error."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Cron(expression, with_seconds=with_seconds)


def test_unknown_time_zone_is_refused() -> None:
    """A zone that is not a tz database id is named in the error."""
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Pari'"):
        Cron("@daily", timezone="Europe/Pari")


def test_time_zone_moves_the_tick() -> None:
    """9:00 in New York is 13:00 UTC in summer; the tick is given in the trigger's zone."""
    tick = Cron("0 9 * * *", timezone="America/New_York").next_after(T0)
    assert tick.astimezone(UTC) == utc(2024, 5, 15, 13, 0)
    assert tick.isoformat() == "2024-05-15T09:00:00-04:00"


def test_spring_forward_runs_a_missing_wall_time_right_after_the_jump() -> None:
    """02:30 does not exist on 31 March 2024 in Paris: that day it runs at 03:00, then 02:30."""
    cron = Cron("30 2 * * *", timezone="Europe/Paris")
    ticks = list(islice(cron.ticks_after(utc(2024, 3, 30, 12, 0)), 2))
    assert [t.isoformat() for t in ticks] == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]


def test_fall_back_runs_a_fixed_hour_once() -> None:
    """02:30 happens twice on 27 October 2024 in Paris: a daily job runs once, the first time."""
    cron = Cron("30 2 * * *", timezone="Europe/Paris")
    ticks = list(islice(cron.ticks_after(utc(2024, 10, 26, 12, 0)), 2))
    assert [t.astimezone(UTC) for t in ticks] == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 28, 1, 30),
    ]


def test_fall_back_runs_an_hourly_job_every_elapsed_hour() -> None:
    """An hourly job runs in both passes of the repeated hour: one tick per elapsed hour."""
    cron = Cron("@hourly", timezone="Europe/Paris")
    ticks = list(islice(cron.ticks_after(utc(2024, 10, 26, 23, 30)), 4))
    assert [t.astimezone(UTC) for t in ticks] == [
        utc(2024, 10, 27, 0, 0),
        utc(2024, 10, 27, 1, 0),
        utc(2024, 10, 27, 2, 0),
        utc(2024, 10, 27, 3, 0),
    ]


def test_previous_before_is_strictly_before() -> None:
    """The previous tick of a tick is the one before it, not itself."""
    cron = Cron("*/15 * * * *")
    assert cron.previous_before(utc(2024, 5, 15, 10, 30)) == utc(2024, 5, 15, 10, 15)
