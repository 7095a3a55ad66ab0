"""Clearinghouse: the project package (settings, urls, Celery app) and the core sub-packages."""

from .celery import app as celery_app

__all__ = ("celery_app",)
