"""Turn a Pebble template into one Jinja template, piece by piece.

Each expression is wrapped as ``(_pebble_at(i) or (expr))`` so the renderer knows which one
failed; text that Jinja would alter is passed through ``_pebble_text`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from executor.flow.template.expression import translate_expression
from executor.flow.template.scan import PebbleSyntaxError, Piece, scan

MARKER = "_pebble_at"
TEXTS = "_pebble_text"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TAG = re.compile(r"\s*([A-Za-z_]\w*)(.*)", re.DOTALL)
_FOR = re.compile(r"\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\s(.*)", re.DOTALL)
_SET = re.compile(r"\s*([A-Za-z_]\w*)\s*=(?!=)(.*)", re.DOTALL)


@dataclass(frozen=True)
class Translation:
    source: str
    pieces: tuple[Piece, ...]  # the expression-bearing pieces, by marker index
    expressions: tuple[str, ...]  # their Jinja translations, by the same index
    texts: tuple[str, ...]  # text Jinja must not see (it would rewrite its line endings)


def translate_template(template: str) -> Translation:
    """Translate a whole Pebble template; raise :class:`PebbleSyntaxError` naming the piece."""
    out: list[str] = []
    pieces: list[Piece] = []
    expressions: list[str] = []
    texts: list[str] = []

    def expression(piece: Piece, text: str) -> str:
        try:
            translated = translate_expression(text)
        except PebbleSyntaxError as exc:
            raise PebbleSyntaxError(str(exc), piece) from None
        pieces.append(piece)
        expressions.append(translated)
        # Keep the line count, so Jinja's line numbers stay those of the original.
        return f"({MARKER}({len(pieces) - 1}) or {translated})" + "\n" * _line_breaks(text)

    def verbatim(text: str, original: str) -> str:
        texts.append(text)
        breaks = "\n" * _line_breaks(original)
        return f"{{{{ {TEXTS}[{len(texts) - 1}]{breaks} }}}}"

    for piece in _trim_whitespace(scan(template)):
        if piece.kind == "text" and "\r" not in piece.source:
            out.append(piece.source)
            trimmed_lines = _line_breaks(piece.body) - _line_breaks(piece.source)
            if trimmed_lines:
                out.append("{#" + "\n" * trimmed_lines + "#}")
        elif piece.kind in ("text", "raw"):
            out.append(verbatim(piece.source, piece.body))
        elif piece.kind == "comment":
            out.append("{#" + "\n" * _line_breaks(piece.source) + "#}")
        elif piece.kind == "print":
            out.append(f"{{{{ {expression(piece, piece.body)} }}}}")
        else:
            out.append(f"{{% {_translate_tag(piece, expression)} %}}")
    return Translation("".join(out), tuple(pieces), tuple(expressions), tuple(texts))


def _line_breaks(text: str) -> int:
    return len(_LINE_BREAK.findall(text))


def _trim_whitespace(pieces: Iterable[Piece]) -> list[Piece]:
    # Whitespace control is applied here, not by Jinja, as text may bypass Jinja (see texts).
    result = list(pieces)
    for index, piece in enumerate(result):
        if piece.kind == "text":
            continue
        if piece.left and index > 0 and result[index - 1].kind == "text":
            before = result[index - 1]
            result[index - 1] = replace(before, source=before.source.rstrip())
        if piece.right and index + 1 < len(result) and result[index + 1].kind == "text":
            after = result[index + 1]
            result[index + 1] = replace(after, source=after.source.lstrip())
    return result


def _translate_tag(piece: Piece, expression: Callable[[Piece, str], str]) -> str:
    match = _TAG.match(piece.body)
    if match is None:
        return piece.body
    keyword, rest = match.groups()
    if keyword in ("if", "elseif", "elif"):
        return f"{'if' if keyword == 'if' else 'elif'} {expression(piece, rest)}"
    if keyword == "for":
        loop = _FOR.match(rest)
        if loop is None:
            raise PebbleSyntaxError("expected '{% for item in items %}'", piece)
        return f"for {loop.group(1)} in _pebble_iter({expression(piece, loop.group(2))})"
    if keyword == "set":
        assignment = _SET.match(rest)
        if assignment is not None:
            return f"set {assignment.group(1)} = {expression(piece, assignment.group(2))}"
    return piece.body
