"""A person's paper folder deposited at the counter in Debian's Chromium, on a 360 px screen:
twelve files picked at once (1), "Continue" (2), "Deposit" (3); the kind of each suggested from
its name; every counter page without horizontal scroll."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from dmp.models import Document, DocumentType
from tests.browser import log_in_with_app_code, no_horizontal_scroll
from tests.sample_files import text_pdf
from tests.test_pro_documents import _COUNT_USER_ACTIONS

NAMES = [f"2025-01-{day:02d}_{kind}.pdf" for day, kind in enumerate(
    ["ordonnance", "radio", "bilan_sanguin", "certificat", "compte_rendu", "vaccination",
     "lettre_de_sortie", "echographie", "prise_de_sang", "attestation", "irm", "courrier"], 1)]


@pytest.mark.django_db(transaction=True)
def test_twelve_papers_are_deposited_in_three_actions_at_360_px(live_server, page, world):
    page.set_viewport_size({"width": 360, "height": 740})
    log_in_with_app_code(page, live_server.url, world.agent.user.username)
    for name in ("home", "dashboard", "credentials_reset", "onboarding_start"):
        page.goto(live_server.url + reverse(f"social_workers:{name}"))
        assert no_horizontal_scroll(page), name

    before = Document.objects.filter(record=world.record).count()
    page.add_init_script(_COUNT_USER_ACTIONS)
    page.goto(live_server.url + reverse("social_workers:counter_deposit", args=[world.record.pk]))
    page.evaluate("sessionStorage.removeItem('userActions')")
    assert no_horizontal_scroll(page)
    actions = []

    # Action 1: pick the twelve files at once.
    page.get_by_label("Les papiers de la personne").set_input_files(
        [{"name": name, "mimeType": "application/pdf", "buffer": text_pdf(f"Papier {i}")}
         for i, name in enumerate(NAMES)])
    actions.append("pick")
    assert not page.get_by_role("button", name="Déposer").is_visible()  # one way on at each step
    # Action 2: "Continue" shows one row per file, its kind, title and date suggested.
    page.get_by_role("button", name="Continuer").click()
    actions.append("click")
    rows = page.locator("fieldset.deposit-file")
    rows.nth(11).wait_for()
    assert rows.count() == 12 and no_horizontal_scroll(page)
    assert not page.get_by_role("button", name="Continuer").is_visible()
    first = page.get_by_role("group", name=NAMES[0])
    assert first.get_by_label("Type de papier").input_value() == DocumentType.MEDICATION_PRESCRIPTION
    assert first.get_by_label("Titre").input_value() == "Ordonnance"
    assert first.get_by_label("Date de l'original (facultatif)").input_value() == "2025-01-01"
    # Action 3: "Deposit".
    page.get_by_role("button", name="Déposer").click()
    actions.append("click")
    page.locator("p.success").wait_for()
    answer = page.locator("main").inner_text()
    assert "12 documents ont été déposés" in answer
    assert not any(word in answer.lower() for word in ("ordonnance", "radio", "certificat"))  # a count only

    stored = Document.objects.filter(record=world.record, author_kind=Document.AuthorKind.COUNTER)
    assert Document.objects.filter(record=world.record).count() == before + 12 and stored.count() == 12
    assert {str(d.act_date) for d in stored} == {f"2025-01-{day:02d}" for day in range(1, 13)}
    assert stored.filter(doc_type=DocumentType.MEDICATION_PRESCRIPTION).count() == 1
    assert no_horizontal_scroll(page)
    seen_by_page = json.loads(page.evaluate("sessionStorage.getItem('userActions')"))
    assert seen_by_page == ["pick", "click", "click"]
    assert len(actions) <= 3 and len(seen_by_page) <= 3


@pytest.mark.django_db(transaction=True)
def test_a_refused_deposit_names_the_file_and_keeps_the_files_and_rows(live_server, page, world):
    log_in_with_app_code(page, live_server.url, world.agent.user.username)
    page.goto(live_server.url + reverse("social_workers:counter_deposit", args=[world.record.pk]))
    before = Document.objects.count()
    page.get_by_label("Les papiers de la personne").set_input_files([
        {"name": "ordonnance.pdf", "mimeType": "application/pdf", "buffer": text_pdf("Papier")},
        {"name": "radio_abimee.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 not really"},
    ])
    page.get_by_role("button", name="Continuer").click()
    page.get_by_role("group", name="ordonnance.pdf").get_by_label("Titre").fill("Ordonnance du Dr Hamidi")
    page.get_by_role("button", name="Déposer").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "radio_abimee.pdf" in alert.inner_text() and "ordonnance.pdf" not in alert.inner_text()
    assert Document.objects.count() == before
    # Nothing lost: the files are still picked and the row keeps what the agent typed.
    assert page.evaluate("document.querySelector('input[type=file]').files.length") == 2
    assert page.get_by_role("group", name="ordonnance.pdf").get_by_label("Titre").input_value() == (
        "Ordonnance du Dr Hamidi")
