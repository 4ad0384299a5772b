"""Browser tests in Debian's Chromium driven by Playwright (see tests/conftest.py)."""

from __future__ import annotations

import re

import pytest

from tests.browser import log_in_with_sms_code


@pytest.mark.django_db(transaction=True)
def test_home_page_loads_in_a_real_browser(live_server, page):
    page.goto(live_server.url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").is_visible()
    page.locator("main a[href='/accounts/login/']").click()
    assert "/accounts/login/" in page.url


@pytest.mark.django_db(transaction=True)
def test_a_patient_logs_in_and_sees_her_documents(live_server, page, world, sms_outbox):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "correct-horse-battery")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/accounts/login/code/confirm/")
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1))
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    page.locator(f"nav.record-nav a[href='/patient/records/{world.record.pk}/documents/']").click()
    titles = page.locator("ul.doc-list a.doc-title").all_inner_texts()
    assert "hidden" in titles and "withheld" not in titles


@pytest.mark.django_db(transaction=True)
def test_a_patient_first_login_end_to_end(live_server, page, world, sms_outbox):
    """The sheet's temporary password, her own password, the code from the SMS, her record."""
    alice = world.alice
    alice.set_password("tmp-4Kx7-Qa3P-9dRm")
    alice.must_change_password = True
    alice.save()

    page.goto(live_server.url + "/accounts/login/")
    page.fill("input[name=login]", "alice_martin")
    page.fill("input[name=password]", "tmp-4Kx7-Qa3P-9dRm")
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url("**/accounts/login/new-password/")
    assert page.locator("h1").inner_text() == "Choisissez votre propre mot de passe"
    page.fill("input[name=new_password1]", "mon propre mot de passe")
    page.fill("input[name=new_password2]", "mon propre mot de passe")
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url("**/accounts/login/code/confirm/")
    assert len(sms_outbox) == 1
    to, text = sms_outbox[0]
    assert to == "+33612345678"
    page.fill("input[name=code]", re.search(r"\b(\d{6})\b", text).group(1))
    page.locator("main form button[type=submit]").first.click()

    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    assert page.locator("header .who").inner_text() == "Alice Martin"
    alice.refresh_from_db()
    assert alice.check_password("mon propre mot de passe") and not alice.must_change_password


@pytest.mark.django_db(transaction=True)
def test_a_patient_uploads_hides_and_reads_who_came_in_the_demo_record(live_server, page, sms_outbox, tmp_path):
    """On the demo data: Michel Lambert adds a paper of his own, hides it from professionals,
    then reads in his access history the professionals' visits the demo made, the emergency
    one standing out."""
    from dmp import demo
    from dmp.models import Record
    from tests.personas import titled
    from tests.sample_files import text_pdf

    demo.seed_demo()
    record = Record.objects.get(holder__username=demo.CHRONIC)
    log_in_with_sms_code(page, live_server.url, demo.CHRONIC, sms_outbox, demo.DEMO_PASSWORD)
    page.wait_for_url(f"**/patient/records/{record.pk}/")

    # Add a document: the plain file input, the type and the date asked once.
    page.goto(f"{live_server.url}/patient/records/{record.pk}/documents/add/")
    letter = tmp_path / "courrier-mutuelle.pdf"
    letter.write_bytes(text_pdf("Courrier de la mutuelle 2026"))
    page.set_input_files("input[name=files]", str(letter))
    page.locator("input[name=doc_type][value=patient_document]").check()
    page.fill("input[name=act_date]", "2026-10-02")
    page.locator("form#doc-upload button[type=submit]").click()
    page.wait_for_url(lambda url: "/documents/add/" not in url)
    [added] = titled(record.documents.all(), "courrier-mutuelle")
    assert added.space == "personal" and not added.hidden_from_professionals

    # Hide it from professionals, from its page.
    page.goto(f"{live_server.url}/patient/records/{record.pk}/documents/{added.pk}/")
    page.locator(f"form[action$='/documents/{added.pk}/visibility/'] button[type=submit]").click()
    page.wait_for_load_state()
    added.refresh_from_db()
    assert added.hidden_from_professionals

    # The access history: the demo's professional visits, the emergency ones first and marked.
    page.locator(f"nav.record-nav a[href='/patient/records/{record.pk}/history/']").click()
    page.wait_for_url(f"**/patient/records/{record.pk}/history/")
    emergencies = page.locator("section.history-summary .history-entries").first.inner_text()
    assert "Roux" in emergencies  # the emergency physician's break-glass read
    # Her opening and the reads that followed are one line, with the reason she typed.
    assert "Motif indiqué : “Patient inconscient amené par les pompiers" in emergencies
    assert "fois ce jour-là" in emergencies
    people = page.locator("ul.history-people").inner_text()
    assert "Bernard" in people and "Girard" in people  # the médecin traitant and the SAMU regulator


@pytest.mark.django_db(transaction=True)
def test_every_patient_page_fits_a_small_phone_without_javascript(live_server, browser, world, sms_outbox):
    """360 px wide, JavaScript off: every page of the patient portal lays out without a
    horizontal scroll bar, and its main heading is visible."""
    from django.urls import reverse

    context = browser.new_context(viewport={"width": 360, "height": 740}, java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    log_in_with_sms_code(page, live_server.url, "alice_martin", sms_outbox, "correct-horse-battery")
    page.wait_for_url(f"**/patient/records/{world.record.pk}/")
    pk, doc = world.record.pk, world.docs["hidden"].pk
    names = ["record", "synthesis", "documents", "documents_add", "documents_settings", "information",
             "information_contact", "information_emergency_contacts", "information_advance_directives",
             "information_organ_donation", "information_vaccinations", "information_declared", "manage", "close",
             "history", "export"]
    urls = [reverse(f"portal_patient:{name}", args=[pk]) for name in names]
    urls += [reverse("portal_patient:documents", args=[pk]) + f"?view={view}" for view in ("timeline", "thumbnails")]
    urls.append(reverse("portal_patient:document", args=[pk, doc]))
    for url in urls:
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        assert page.locator("main h1").first.is_visible(), url
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{url} is {width}px wide"
    context.close()
