"""Render Kestra's Pebble templates with a sandboxed Jinja2 made Pebble-compatible.

How: the template is cut into text, ``{{ … }}``, ``{% … %}`` and ``{# … #}`` pieces (quotes and
brackets respected). Each expression is parsed with *Pebble's* grammar and operator precedence
and re-emitted as a fully parenthesised Jinja expression; text is left alone. A sandboxed Jinja
environment carrying Pebble's and Kestra's filters, tests and functions then renders it.

Pebble behaviour kept (it differs from plain Jinja):

* ``a ?? b`` (``b`` when ``a`` is undefined or null), ``a ??? b`` (only when undefined),
  ``c ? x : y``, ``contains``, ``equals``, ``a..b`` and ``range()`` (both inclusive),
  ``null``; ``not`` binds tightest and filters bind looser than ``~``/``+`` (Pebble's table).
* ``{% elseif %}``, ``{% verbatim %}``, ``loop.index`` counting from 0, ``for`` over a map
  giving entries with ``key`` and ``value``.
* ``true``/``false`` print as such, null prints nothing, maps and lists print as JSON.
* An undefined name is an error naming the dotted path and the expression, never ``""``.

Not supported: string interpolation ``"#{…}"``, Java methods on values (``.size()``), and the
Kestra functions that need a server (``read``, ``kv``, ``render``…).

Modules, in the order a template goes through them:

* ``scan``: cut a template into pieces.
* ``translate``: turn the pieces into one Jinja template; ``expression`` translates each
  Pebble expression.
* ``sandbox``: the sandboxed environment and the undefined values that name their path.
* ``printing``, ``filters``, ``functions``, ``dates``: Pebble's printing and library.
* ``render``: the :class:`Renderer` that ties them together, and :func:`truthy`.
"""

from executor.flow.template.render import Renderer, kestra_truthy, truthy

__all__ = ["Renderer", "kestra_truthy", "truthy"]
