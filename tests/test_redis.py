"""The cache and the Celery broker are the real Redis in the test run (mandatory in CI)."""

from __future__ import annotations

import uuid

import redis
from django.core.cache import cache


def test_cache_round_trips_through_redis(redis_url, settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    key = f"test:{uuid.uuid4()}"
    cache.set(key, "value", 30)
    assert redis.Redis.from_url(redis_url).exists(cache.make_key(key)) == 1
    assert cache.get(key) == "value"
    cache.delete(key)


def test_celery_uses_the_redis_broker_not_eager_tasks(redis_url, settings):
    from dmp.celery import app

    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    assert app.conf.broker_url == redis_url
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.connected

