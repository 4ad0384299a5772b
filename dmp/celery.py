"""The Celery application. Tasks are thin wrappers around services (dmp/tasks.py)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")

app = Celery("dmp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
