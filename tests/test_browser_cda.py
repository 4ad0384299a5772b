"""In a real browser: the médecin traitant of the demo opens a level-3 laboratory report (CR-BIO)
sent as CDA and reads its values table in the rendering."""

from __future__ import annotations

from datetime import date

import pytest

from tests.test_cda import cda


@pytest.mark.django_db(transaction=True)
def test_a_gp_opens_a_crbio_and_sees_its_values_table(live_server, page):
    from django.conf import settings
    from django.test import Client

    from dmp import demo
    from dmp.models import DocumentType, Record, User
    from dmp.policy import Actor
    from dmp.services import document_add

    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    gp = User.objects.get(username=demo.GP_TREATING)
    content = cda("crbio", record.nir or "", record.provisional_id)
    document = document_add(actor=Actor(gp), record=record, content=content,
                            doc_type=DocumentType.LAB_REPORT, title="Bilan CDA", act_date=date(2026, 2, 11))
    client = Client()
    client.force_login(gp)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    response = page.goto(f"{live_server.url}/pro/documents/{document.pk}/file/")
    assert response.status == 200
    table = page.locator(".cda-body table")
    assert table.is_visible()
    assert table.locator("td", has_text="Glycémie à jeun").is_visible()
    assert table.locator("td", has_text="1,06 g/L").is_visible() and table.locator("td", has_text="5,9 mmol/L").count()
