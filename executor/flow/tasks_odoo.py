"""``plugin-odoo``: ``Query``, one model call through an Odoo server's XML-RPC API.

Property names are Kestra's. ``operation`` is one of :data:`ODOO_OPERATIONS` (Kestra's first
release spelled them in lower case, ``search_read``: both are accepted).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from executor.flow.base import TaskBase

ODOO_TYPES = ("io.kestra.plugin.odoo.Query",)
ODOO_OPERATIONS = ("SEARCH_READ", "READ", "CREATE", "WRITE", "UNLINK", "SEARCH", "SEARCH_COUNT")
FETCH_TYPES = ("FETCH", "FETCH_ONE", "STORE", "NONE")


class OdooQuery(TaskBase):
    """Authenticate on ``/xmlrpc/2/common``, then ``execute_kw`` on ``/xmlrpc/2/object``.

    Outputs: ``size``, and by ``fetchType`` ``row`` / ``rows`` / ``uri`` (an Ion file) for the
    reading operations, ``ids`` for CREATE, WRITE and UNLINK.
    """

    type: Literal[ODOO_TYPES]  # type: ignore[valid-type]
    url: str
    db: str
    username: str
    password: str
    model: str
    operation: str  # one of ODOO_OPERATIONS (either case), or an expression rendered to one
    filters: list[Any] | str | None = None
    fields: list[str] | str | None = None
    values: dict[str, Any] | str | None = None
    ids: list[int | str] | str | None = None
    limit: int | str | None = None
    offset: int | str | None = None
    fetchType: str = "NONE"

    @model_validator(mode="after")
    def _known_choices(self) -> OdooQuery:
        for name, value, choices in (
            ("operation", self.operation, ODOO_OPERATIONS),
            ("fetchType", self.fetchType, FETCH_TYPES),
        ):
            if "{{" not in value and value.strip().upper() not in choices:
                raise ValueError(f"'{name}' must be one of {', '.join(choices)}, got {value!r}")
        return self
