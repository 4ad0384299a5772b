"""Léo (15) hides a document from his mother in Debian's Chromium, from the document's page; his
mother, logged in on her own account, then finds it nowhere: not in the list, the timeline,
the search or the history, and its address answers "not found"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dmp.models import Document, User
from tests.browser import log_in_with_sms_code, no_horizontal_scroll


@pytest.mark.django_db(transaction=True)
def test_the_minor_hides_a_document_and_his_mother_does_not_find_it(live_server, browser, world, sms_outbox):
    User.objects.filter(pk=world.leo.pk).update(phone="+33611110001")
    User.objects.filter(pk=world.mother.pk).update(phone="+33611110002")
    visit = world.docs["leo_visit"]
    record = world.leo_record
    document_url = live_server.url + reverse("portal_patient:document", args=[record.pk, visit.pk])
    documents_url = live_server.url + reverse("portal_patient:documents", args=[record.pk])

    # Léo, on a phone: the document's page explains the choice in plain words; one click hides it.
    leo = browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR").new_page()
    log_in_with_sms_code(leo, live_server.url, world.leo.username, sms_outbox)
    leo.wait_for_url(lambda url: "/accounts/" not in url)
    leo.goto(document_url)
    assert "garder ce document secret pour vos représentants légaux" in leo.locator("main").inner_text()
    assert no_horizontal_scroll(leo)
    leo.get_by_role("button", name="Masquer pour mes représentants légaux").click()
    leo.wait_for_load_state()
    assert "Le document est masqué pour vos représentants légaux" in leo.locator("main").inner_text()
    assert leo.get_by_role("button", name="Le montrer de nouveau à mes représentants légaux").is_visible()
    assert Document.objects.get(pk=visit.pk).hidden_from_representatives

    # His mother, on her own account: the document is nowhere.
    mother = browser.new_context(locale="fr-FR").new_page()
    log_in_with_sms_code(mother, live_server.url, world.mother.username, sms_outbox)
    mother.wait_for_url(lambda url: "/accounts/" not in url)
    for view in ("list", "timeline", "thumbnails"):
        mother.goto(f"{documents_url}?view={view}&status=all")
        assert "leo visit" not in mother.locator("main").inner_text(), view
    mother.goto(documents_url)
    mother.locator("input[name=text]").fill("visit")
    mother.locator("input[name=text]").press("Enter")
    mother.wait_for_load_state()
    assert "leo visit" not in mother.locator("main").inner_text()
    answer = mother.goto(document_url)
    assert answer.status == 404 and "leo visit" not in mother.content()
    mother.goto(live_server.url + reverse("portal_patient:history", args=[record.pk]))
    assert "leo visit" not in mother.content()
    # Nor can she lift the mark: she is not offered it, and the document is not hers to see.
    confidential = world.docs["leo_confidential"]
    mother.goto(live_server.url + reverse("portal_patient:document", args=[record.pk, confidential.pk]))
    assert "Le montrer de nouveau" not in mother.content()
