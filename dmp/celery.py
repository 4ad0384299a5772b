"""The Celery application. Tasks are thin wrappers around services (dmp/tasks.py).

Configured from the CELERY_* settings (dmp/settings.py): the broker is REDIS_URL (or
CELERY_BROKER_URL); tasks run eagerly, in the calling process, only in the embedded default of
`make run` (no REDIS_URL). Elsewhere run a worker and exactly one beat (docs/deployment.md §6):

    celery -A dmp worker --loglevel INFO
    celery -A dmp beat --loglevel INFO --schedule /var/lib/dmp-beat/celerybeat-schedule
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmp.settings")

app = Celery("dmp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
