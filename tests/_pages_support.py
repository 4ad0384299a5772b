"""Data built once for every test of a module, as Django's TestCase.setUpClass does: a module
fixture opens a transaction, builds the world and whatever the module adds to it, and rolls it
all back after the module's last test. Each test runs in a savepoint inside it (pytest-django's
own transaction, nested), so what one test writes is gone before the next starts, as with the
`world` fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import transaction
from django.test import override_settings

from tests.personas import World, world_for_test


def world_for_module(fill: Callable[[World], None]) -> Callable[..., Iterator[World]]:
    """A module fixture yielding the world after `fill(world)`, built once for the module.
    Its tests use it instead of the `world` fixture (whose copy would share its primary keys)."""

    @pytest.fixture(scope="module")
    def fixture(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
        files = tmp_path_factory.mktemp("module-world")
        # The files and audit checkpoints written while building stay out of the repository's
        # folders; each test still writes its own under its own tmp_path (tests/conftest.py).
        with (django_db_blocker.unblock(),
              override_settings(MEDIA_ROOT=files / "documents", AUDIT_CHECKPOINT_DIR=files / "audit-checkpoints"),
              transaction.atomic()):
            world = world_for_test()
            fill(world)
            yield world
            transaction.set_rollback(True)

    return fixture
