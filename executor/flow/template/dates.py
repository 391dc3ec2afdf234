"""Kestra's ``date`` filter: Java ``DateTimeFormatter`` patterns and named formats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from executor.flow.template.printing import fail_if_undefined

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NAMED_FORMATS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "iso_local_date": "yyyy-MM-dd",
    "iso_local_time": "HH:mm:ss",
    "iso_local_date_time": "yyyy-MM-dd'T'HH:mm:ss",
    "iso_offset_date_time": "yyyy-MM-dd'T'HH:mm:ssXXX",
}
_STRPTIME = {
    "y": "%Y",
    "d": "%d",
    "H": "%H",
    "h": "%I",
    "m": "%M",
    "s": "%S",
    "S": "%f",
    "a": "%p",
    "X": "%z",
    "x": "%z",
    "Z": "%z",
    "D": "%j",
}


def _date(
    value: Any,
    format: str = "iso",
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> str | None:
    """Kestra's ``date`` filter: Java ``DateTimeFormatter`` patterns or a named format."""
    fail_if_undefined(value)
    if value is None:
        return None
    tz = zone(timeZone) if timeZone is not None else None
    moment = _to_datetime(value, existingFormat)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz or UTC)
    elif tz is not None:
        moment = moment.astimezone(tz)
    return _format_date(moment, _NAMED_FORMATS.get(format, format))


_UNITS = {
    "NANOS": timedelta(microseconds=0.001),
    "MICROS": timedelta(microseconds=1),
    "MILLIS": timedelta(milliseconds=1),
    "SECONDS": timedelta(seconds=1),
    "MINUTES": timedelta(minutes=1),
    "HOURS": timedelta(hours=1),
    "HALF_DAYS": timedelta(hours=12),
    "DAYS": timedelta(days=1),
    "WEEKS": timedelta(weeks=1),
}
_MONTHS_IN = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def _date_add(
    value: Any,
    amount: int,
    unit: str,
    format: str = "iso",
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> str | None:
    """Kestra's ``dateAdd(amount, unit)``: Java ``ChronoUnit`` names, formatted as ``date``."""
    fail_if_undefined(value)
    if value is None:
        return None
    moment = _zoned(_to_datetime(value, existingFormat), timeZone)
    name = str(unit).upper()
    if name in _UNITS:
        moment = moment + _UNITS[name] * int(amount)
    elif name in _MONTHS_IN:
        moment = _add_months(moment, int(amount) * _MONTHS_IN[name])
    else:
        known = ", ".join([*_UNITS, *_MONTHS_IN])
        raise ValueError(f"dateAdd: unknown unit {unit!r} (one of {known})")
    return _format_date(moment, _NAMED_FORMATS.get(format, format))


def _add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, the day clamped to the month's last (Jan 31 + 1 month = Feb 28/29)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _zoned(moment: datetime, time_zone: str | None) -> datetime:
    tz = zone(time_zone) if time_zone is not None else None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz or UTC)
    return moment.astimezone(tz) if tz is not None else moment


def _epoch(scale: int) -> Any:
    def timestamp(
        value: Any, timeZone: str | None = None, existingFormat: str | None = None
    ) -> int | None:
        fail_if_undefined(value)
        if value is None:
            return None
        moment = _zoned(_to_datetime(value, existingFormat), timeZone)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        whole = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        return whole * scale // 1_000_000

    return timestamp


_timestamp = _epoch(1)
_timestamp_milli = _epoch(1_000)
_timestamp_micro = _epoch(1_000_000)
_timestamp_nano = _epoch(1_000_000_000)


def zone(name: str) -> Any:
    """The time zone called ``name`` (an IANA name, or ``UTC``/``Z``/``GMT``)."""
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _to_datetime(value: Any, existing_format: str | None) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, dt_time(12, 0))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        if existing_format is not None:
            return datetime.strptime(value, _strptime_format(existing_format))
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO-8601 date; give its pattern as existingFormat"
            ) from None
    raise TypeError(f"date needs a date or an ISO-8601 string, got {type(value).__name__}")


def _date_pattern(pattern: str) -> Iterator[str | tuple[str, int]]:
    """Split a Java date pattern into literal text and ``(letter, repeat count)`` fields."""
    pos, size = 0, len(pattern)
    while pos < size:
        char = pattern[pos]
        if char == "'":
            if pattern.startswith("''", pos):
                yield "'"
                pos += 2
                continue
            literal, pos = _quoted(pattern, pos + 1)
            yield literal
        elif char.isascii() and char.isalpha():
            end = pos
            while end < size and pattern[end] == char:
                end += 1
            yield char, end - pos
            pos = end
        else:
            yield char
            pos += 1


def _quoted(pattern: str, pos: int) -> tuple[str, int]:
    """The quoted text starting at ``pos`` (``''`` is a quote), and the position after it."""
    literal: list[str] = []
    while True:
        if pos >= len(pattern):
            raise ValueError(f"a quote is never closed in date pattern {pattern!r}")
        if pattern[pos] == "'":
            if not pattern.startswith("''", pos):
                return "".join(literal), pos + 1
            literal.append("'")
            pos += 2
            continue
        literal.append(pattern[pos])
        pos += 1


def _format_date(moment: datetime, pattern: str) -> str:
    return "".join(
        part if isinstance(part, str) else _date_field(moment, *part)
        for part in _date_pattern(pattern)
    )


def _date_field(moment: datetime, letter: str, count: int) -> str:
    def padded(number: int) -> str:
        return f"{number:0{count}d}"

    if letter in "yu":
        return f"{moment.year % 100:02d}" if count == 2 else padded(moment.year)
    if letter in "ML":
        if count >= 3:
            return _MONTHS[moment.month - 1] if count >= 4 else _MONTHS[moment.month - 1][:3]
        return padded(moment.month)
    simple = {
        "d": moment.day,
        "D": moment.timetuple().tm_yday,
        "H": moment.hour,
        "k": moment.hour or 24,
        "h": moment.hour % 12 or 12,
        "K": moment.hour % 12,
        "m": moment.minute,
        "s": moment.second,
    }
    if letter in simple:
        return padded(simple[letter])
    if letter == "S":
        return f"{moment.microsecond:06d}000"[:count]
    if letter == "n":
        return padded(moment.microsecond * 1000)
    return _named_field(moment, letter, count)


def _named_field(moment: datetime, letter: str, count: int) -> str:
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "E":
        day = _DAYS[moment.weekday()]
        return day if count >= 4 else day[:3]
    if letter in "XxZ":
        return _offset(moment.utcoffset() or timedelta(0), letter, count)
    if letter == "z":
        return moment.tzname() or ""
    if letter == "V":
        return str(getattr(moment.tzinfo, "key", moment.tzname() or ""))
    if letter == "G":
        return "AD"
    raise ValueError(f"unsupported letter {letter!r} in date pattern")


def _offset(offset: timedelta, letter: str, count: int) -> str:
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    if seconds == 0 and (letter == "X" or (letter == "Z" and count == 5)):
        return "Z"
    if letter == "Z":
        separator = ":" if count >= 4 else ""
        return f"{sign}{hours:02d}{separator}{minutes:02d}"
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    separator = ":" if count >= 3 else ""
    return f"{sign}{hours:02d}{separator}{minutes:02d}"


def _strptime_format(pattern: str) -> str:
    out: list[str] = []
    for part in _date_pattern(pattern):
        if isinstance(part, str):
            out.append(part.replace("%", "%%"))
            continue
        letter, count = part
        if letter == "y" and count == 2:
            out.append("%y")
        elif letter == "M":
            out.append("%B" if count >= 4 else "%b" if count == 3 else "%m")
        elif letter == "E":
            out.append("%A" if count >= 4 else "%a")
        elif letter in _STRPTIME:
            out.append(_STRPTIME[letter])
        else:
            raise ValueError(f"unsupported letter {letter!r} in existingFormat {pattern!r}")
    return "".join(out)
