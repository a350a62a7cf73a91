"""leadmgmt project package: settings, urls, Celery app, tenancy and audit."""
from .celery import app as celery_app

__all__ = ("celery_app",)
