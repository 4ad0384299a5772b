"""Notifications go through the outbox and a Celery task (dmp/notifications.py). Importing
`notifications_sent_at_once` into a test module runs those tasks in the test's own process, as
soon as the transaction commits (`django_capture_on_commit_callbacks(execute=True)`), as the
embedded default of `make run` does. The real worker is tested in tests/test_worker.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def notifications_sent_at_once(monkeypatch):
    from dmp.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
