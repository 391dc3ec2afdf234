"""Kestra's Ion files: text Ion, one value per line, read and written as a stream.

Kestra's ``FileSerde`` writes every row of a stored result (``jdbc`` ``STORE``, ``serdes``
``*ToIon``, ``storage.Write``) as one text-Ion value followed by a newline: structs with bare or
quoted field names, strings, integers, decimals (``12.50``), floats (``1.5e0``), booleans,
``null``, timestamps (``2024-01-02T03:04:05.000Z``, a date as ``2024-01-02``), blobs
(``{{ base64 }}``) and strings annotated with a Java type (``LocalDateTime::"2024-01-02T03:04"``).
This module reads the whole text-Ion grammar those files use (comments, symbols, s-expressions
as lists, clobs) and writes the same shape Kestra writes, so files pass both ways.

It is a small reader and writer rather than the ``amazon-ion`` package: that package loads a file
as one document (no row-at-a-time stream) and gives its own value classes; here a row is plain
Python (``dict``, ``list``, ``str``, ``int``, ``Decimal``, ``float``, ``bool``, ``None``,
``datetime``, ``date``, ``bytes``), read one line's value at a time with bounded memory.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, Any

MAX_VALUE_CHARS = 64 * 1024 * 1024  # one row larger than this is refused, not buffered


class IonError(ValueError):
    """The text is not Ion (the message says where)."""


# ----- writing


_BARE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
_KEYWORDS = {"null", "true", "false", "nan"}


def _symbol(name: str) -> str:
    if _BARE.match(name) and name not in _KEYWORDS and not name.startswith("null"):
        return name
    return "'" + _escape(name, "'") + "'"


def _escape(text: str, quote: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent) if exponent else 0}"


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise IonError(f"{value} has no Ion decimal form")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    if exponent >= 0:
        return ("-" if sign else "") + text + f"d{exponent}"
    body = text.rjust(-exponent + 1, "0")
    return ("-" if sign else "") + body[:exponent] + "." + body[exponent:]


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        return "LocalDateTime::" + '"' + value.isoformat() + '"'
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def dumps(value: Any) -> str:
    """``value`` as one line of text Ion, as Kestra writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, str):
        return '"' + _escape(value, '"') + '"'
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        kind = "OffsetTime" if value.tzinfo else "LocalTime"
        return f'{kind}::"{value.isoformat()}"'
    if isinstance(value, timedelta):
        return '"' + _iso_duration(value) + '"'
    if isinstance(value, bytes | bytearray | memoryview):
        return "{{" + base64.b64encode(bytes(value)).decode() + "}}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_symbol(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return '"' + _escape(str(value), '"') + '"'  # UUIDs, IP addresses: as text, like Kestra


def _iso_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"PT{seconds:g}S"


def write_rows(rows: Iterable[Any]) -> Iterator[bytes]:
    """Each row as its line of text Ion, encoded (chunks for ``write_file``)."""
    for row in rows:
        yield (dumps(row) + "\n").encode()


# ----- reading


_TS = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(?:(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2}))?)?)?)?T?"
)
_NUMBER = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9_.]+(?:[eEdD][-+]?[0-9]+)?)")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_OPERATOR = re.compile(r"[!#%&*+\-./;<=>?@^`|~]+")
_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "/": "/",
    "?": "?",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
_JAVA_TYPES: dict[str, Callable[[str], Any]] = {
    "LocalDateTime": datetime.fromisoformat,
    "LocalDate": date.fromisoformat,
    "LocalTime": time.fromisoformat,
    "OffsetTime": time.fromisoformat,
    "OffsetDateTime": datetime.fromisoformat,
    "Instant": lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")),
    "ZonedDateTime": lambda s: datetime.fromisoformat(re.sub(r"\[.*\]$", "", s)),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> IonError:
        return IonError(f"{what} at character {self.pos + 1}")

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r\n\f\v,":  # commas are separators; a stray one is tolerated
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.pos = end + 2
            else:
                return

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def value(self) -> Any:
        self.skip()
        annotations = []
        while True:
            start = self.pos
            name = self._symbol_text()
            self.skip()
            if name is not None and self.text.startswith("::", self.pos):
                self.pos += 2
                self.skip()
                annotations.append(name)
                continue
            self.pos = start
            break
        result = self._bare_value()
        if annotations and isinstance(result, str) and annotations[0] in _JAVA_TYPES:
            try:
                return _JAVA_TYPES[annotations[0]](result)
            except ValueError:
                return result
        return result

    def _symbol_text(self) -> str | None:
        """A symbol (bare or quoted) at the cursor, or None (cursor unchanged then)."""
        text = self.text
        if text.startswith("'''", self.pos):
            return None
        if self.pos < len(text) and text[self.pos] == "'":
            return self._quoted("'")
        found = _IDENT.match(text, self.pos)
        if found and found.group() not in ("true", "false", "nan") and found.group() != "null":
            self.pos = found.end()
            return found.group()
        return None

    def _bare_value(self) -> Any:
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail("a value was expected")
        ch = text[pos]
        if ch == "{":
            if text.startswith("{{", pos):
                return self._lob()
            return self._struct()
        if ch == "[":
            return self._sequence("[", "]")
        if ch == "(":
            return self._sequence("(", ")")
        if ch == '"':
            return self._quoted('"')
        if text.startswith("'''", pos):
            return self._long_string()
        if ch == "'":
            return self._quoted("'")
        found = _IDENT.match(text, pos)
        if found:
            word = found.group()
            self.pos = found.end()
            if word == "null" and text.startswith(".", self.pos):
                type_name = _IDENT.match(text, self.pos + 1)
                if not type_name:
                    raise self.fail("a null type was expected")
                self.pos = type_name.end()
                return None
            return {"null": None, "true": True, "false": False, "nan": math.nan}.get(word, word)
        if text.startswith("+inf", pos) or text.startswith("-inf", pos):
            self.pos += 4
            return math.inf if ch == "+" else -math.inf
        stamp = _TS.match(text, pos)
        if stamp and (stamp.group(2) or text[stamp.end() - 1 : stamp.end()] == "T"):
            self.pos = stamp.end()
            return _timestamp_value(stamp)
        number = _NUMBER.match(text, pos)
        if number and number.group() not in ("+", "-", "."):
            self.pos = number.end()
            return _number(number.group(), self)
        operator = _OPERATOR.match(text, pos)
        if operator:
            self.pos = operator.end()
            return operator.group()
        raise self.fail(f"unexpected {ch!r}")

    def _struct(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail("unterminated struct")
            if self.text[self.pos] == "}":
                self.pos += 1
                return result
            if self.text.startswith("'''", self.pos):
                name = self._long_string()
            elif self.text[self.pos] == '"':
                name = self._quoted('"')
            else:
                found = self._symbol_text()
                if found is None:
                    raise self.fail("a field name was expected")
                name = found
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.fail(f"':' was expected after field {name!r}")
            self.pos += 1
            result[name] = self.value()

    def _sequence(self, opening: str, closing: str) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail(f"unterminated {opening}")
            if self.text[self.pos] == closing:
                self.pos += 1
                return result
            result.append(self.value())

    def _quoted(self, quote: str) -> str:
        text = self.text
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.fail("unterminated string")
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                out.append(self._escape())
                continue
            out.append(ch)
            self.pos += 1

    def _escape(self) -> str:
        text = self.text
        kind = text[self.pos + 1 : self.pos + 2]
        if kind in _ESCAPES:
            self.pos += 2
            return _ESCAPES[kind]
        width = {"x": 2, "u": 4, "U": 8}.get(kind)
        if width is None:
            if kind == "\n":
                self.pos += 2
                return ""
            raise self.fail(f"unknown escape '\\{kind}'")
        digits = text[self.pos + 2 : self.pos + 2 + width]
        try:
            self.pos += 2 + width
            return chr(int(digits, 16))
        except ValueError:
            raise self.fail(f"bad escape '\\{kind}{digits}'") from None

    def _long_string(self) -> str:
        parts = []
        while self.text.startswith("'''", self.pos):
            self.pos += 3
            out = []
            while not self.text.startswith("'''", self.pos):
                if self.pos >= len(self.text):
                    raise self.fail("unterminated long string")
                if self.text[self.pos] == "\\":
                    out.append(self._escape())
                else:
                    out.append(self.text[self.pos])
                    self.pos += 1
            self.pos += 3
            parts.append("".join(out))
            self.skip()
        return "".join(parts)

    def _lob(self) -> bytes:
        end = self.text.find("}}", self.pos + 2)
        if end < 0:
            raise self.fail("unterminated blob")
        body = self.text[self.pos + 2 : end].strip()
        self.pos = end + 2
        if body.startswith('"') or body.startswith("'''"):  # a clob: text bytes
            inner = _Parser(body)
            return str(inner.value()).encode("latin-1")
        try:
            return base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise self.fail("a blob is not base64") from None


def _number(token: str, parser: _Parser) -> Any:
    clean = token.replace("_", "")
    lowered = clean.lower()
    try:
        if lowered.lstrip("+-").startswith(("0x", "0b")):
            return int(lowered, 0)
        if "e" in lowered:
            return float(lowered)
        if "d" in lowered:
            return Decimal(lowered.replace("d", "e"))
        if "." in clean:
            return Decimal(clean)
        return int(clean)
    except (ValueError, InvalidOperation):
        raise parser.fail(f"{token!r} is not a number") from None


def _timestamp_value(found: re.Match[str]) -> Any:
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    if hour is None:
        return date(int(year), int(month or 1), int(day or 1))
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    zone: timezone | None = UTC
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if offset == "-00:00":
        zone = None  # Ion's "unknown offset"
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, zone
    )


def loads(text: str) -> Any:
    """One Ion value from ``text`` (nothing else may follow it)."""
    parser = _Parser(text)
    result = parser.value()
    if not parser.at_end():
        raise parser.fail("one value was expected")
    return result


def read_rows(fh: IO[bytes], encoding: str = "utf-8") -> Iterator[Any]:
    """Each top-level value of an Ion file, in order, a line at a time.

    Kestra writes one value per line; a value spread over several lines (hand-written Ion) is
    read too, by joining lines until the value is whole.
    """
    pending = ""
    line_no = 0
    for raw in fh:
        line_no += 1
        pending += raw.decode(encoding)
        if len(pending) > MAX_VALUE_CHARS:
            raise IonError(f"line {line_no}: one value is larger than {MAX_VALUE_CHARS} chars")
        parser = _Parser(pending)
        try:
            values = []
            while not parser.at_end():
                values.append(parser.value())
        except IonError as exc:
            if "unterminated" in str(exc) or "expected" in str(exc):
                continue  # the value goes on on the next line
            raise IonError(f"line {line_no}: {exc}") from None
        yield from values
        pending = ""
    if pending.strip():
        parser = _Parser(pending)
        try:
            while not parser.at_end():
                yield parser.value()
        except IonError as exc:
            raise IonError(f"line {line_no}: {exc}") from None
