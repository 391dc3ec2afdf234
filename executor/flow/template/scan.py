"""Cut a Pebble template into pieces: text, comments, raw blocks, ``{{ … }}`` and ``{% … %}``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_OPENING = re.compile(r"\{[{%#]")
_END_VERBATIM = re.compile(r"\{%-?\s*end(?:raw|verbatim)\s*-?%\}")
_KINDS = {"#": "comment", "{": "print", "%": "tag"}


class PebbleSyntaxError(Exception):
    """A Pebble expression or template that cannot be parsed; ``piece`` is where, if known."""

    def __init__(self, message: str, piece: Piece | None = None) -> None:
        super().__init__(message)
        self.piece = piece


@dataclass(frozen=True)
class Piece:
    """One piece of the original template: text, comment, raw block, ``{{ }}`` or ``{% %}``.

    ``left``/``right`` are the whitespace controls (``"-"`` or ``""``) on the outer sides; for a
    raw block, ``source`` is its content already trimmed by the inner ones. For text and raw
    blocks, ``body`` keeps the untrimmed text (to keep line numbers).
    """

    kind: str  # "text", "comment", "raw", "print" or "tag"
    source: str
    line: int
    body: str = ""
    left: str = ""
    right: str = ""


def scan(template: str) -> Iterator[Piece]:
    """Yield the pieces of ``template`` in order; raise :class:`PebbleSyntaxError` if unclosed."""
    pos, size = 0, len(template)
    while pos < size:
        match = _OPENING.search(template, pos)
        if match is None:
            yield _text_piece(template, pos, size)
            return
        start = match.start()
        if start > pos:
            yield _text_piece(template, pos, start)
        piece, pos = _delimited_piece(template, start)
        keyword = piece.body.split(None, 1)[0] if piece.body.strip() else ""
        if piece.kind == "tag" and keyword in ("raw", "verbatim"):
            piece, pos = _raw_piece(template, piece, keyword, pos)
        yield piece


def single_expression(text: str) -> str | None:
    """The body of ``text`` if it is exactly one ``{{ expression }}``, else ``None``."""
    stripped = text.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    try:
        pieces = list(scan(stripped))
    except PebbleSyntaxError:
        return None
    if len(pieces) == 1 and pieces[0].kind == "print":
        return pieces[0].body
    return None


def _text_piece(template: str, start: int, end: int) -> Piece:
    text = template[start:end]
    return Piece("text", text, template.count("\n", 0, start) + 1, text)


def _delimited_piece(template: str, start: int) -> tuple[Piece, int]:
    """The comment, print or tag piece opening at ``start``, and the position after it."""
    line = template.count("\n", 0, start) + 1
    body_start = start + 2
    left = "-" if template.startswith("-", body_start) else ""
    body_start += len(left)
    end = _find_end(template, start, body_start, line)
    right = "-" if end > body_start and template[end - 1] == "-" else ""
    body = template[body_start : end - len(right)]
    piece = Piece(_KINDS[template[start + 1]], template[start : end + 2], line, body, left, right)
    return piece, end + 2


def _find_end(template: str, start: int, body_start: int, line: int) -> int:
    if template[start + 1] == "#":
        end = template.find("#}", body_start)
        if end < 0:
            raise PebbleSyntaxError(
                "a comment '{#' is never closed by '#}'",
                Piece("comment", template[start : start + 40], line),
            )
        return end
    closer = "}}" if template[start + 1] == "{" else "%}"
    end = _find_closer(template, body_start, closer)
    if end < 0:
        raise PebbleSyntaxError(
            f"'{template[start : start + 2]}' is never closed by '{closer}' "
            "(or a quote inside it is not closed)",
            Piece("text", template[start:].split("\n", 1)[0], line),
        )
    return end


def _find_closer(template: str, pos: int, closer: str) -> int:
    depth, size = 0, len(template)
    while pos < size:
        char = template[pos]
        if char in "'\"":
            pos += 1
            while pos < size and template[pos] != char:
                pos += 2 if template[pos] == "\\" else 1
            if pos >= size:
                return -1
        elif depth == 0 and template.startswith(closer, pos):
            return pos
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        pos += 1
    return -1


def _raw_piece(template: str, tag: Piece, keyword: str, pos: int) -> tuple[Piece, int]:
    """The raw block that ``tag`` opens at ``pos``, and the position after its closing tag."""
    close = _END_VERBATIM.search(template, pos)
    if close is None:
        raise PebbleSyntaxError(f"'{{% {keyword} %}}' is never closed", tag)
    closing = close.group(0)
    content = template[pos : close.start()]
    trimmed = content.lstrip() if tag.right else content
    trimmed = trimmed.rstrip() if closing.startswith("{%-") else trimmed
    right = "-" if closing.endswith("-%}") else ""
    return Piece("raw", trimmed, tag.line, content, tag.left, right), close.end()
