"""The HTTP service (FastAPI): see adapter.api.app."""

from adapter.api.app import ServiceHook, create_app

__all__ = ["ServiceHook", "create_app"]
