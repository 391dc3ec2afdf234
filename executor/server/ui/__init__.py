"""The web UI under ``/ui``: pages, templates and vendored assets, served by the API's process."""

from executor.server.ui.routes import router

__all__ = ["router"]
