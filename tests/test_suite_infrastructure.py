"""What tests/conftest.py changes in how tests run does what Django did, only cheaper: the flush
after a transactional test (`_flush_what_holds_rows`) empties every table as Django's TRUNCATE
of them all did, the personas' world and the append-only audit log included; the test client's
login (`_login_from_a_fresh_session`) stores a session the application reads back."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from dmp.models import AuditEntry


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the DELETEs are PostgreSQL's; elsewhere Django's flush")
def test_the_flush_after_a_transactional_test_leaves_every_table_empty(client, world):
    client.force_login(world.dr_house.user)
    assert client.get(reverse("portal_pro:record", args=[world.record.pk])).status_code == 200  # read, so logged
    assert AuditEntry.objects.exists()

    call_command("flush", interactive=False, reset_sequences=False, inhibit_post_migrate=True, verbosity=0)

    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {table: cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}").fetchone()[0]  # noqa: S608
                  for table in tables}
    assert len(counts) > 40
    assert {table: rows for table, rows in counts.items() if rows} == {}


def test_the_test_clients_login_stores_a_session_that_reads_back_from_the_database(client, world):
    client.force_login(world.alice)
    row = Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)
    assert row.get_decoded()["_auth_user_id"] == str(world.alice.pk)
