"""Checks on the code base itself."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_ships_without_its_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())
