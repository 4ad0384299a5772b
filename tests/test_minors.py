"""Minors and their legal representatives (docs/minors.md), through the views: Léo (15) hides a
document from his mother himself and she cannot reach it anywhere; she can never set or lift
that mark; advance directives are not offered to a minor; his mother hears of an emergency
opening of his record, and of its ordinary life only as Léo chooses; the counter creates a
parent's own account with the minor's record and prints their credentials sheet."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.urls import reverse

from dmp.models import AuditEntry, Document, DocumentType, LegalRepresentative, Notification, Record, User
from dmp.policy import Action, Actor, decide
from dmp.selectors import get_document_for, get_record_for
from dmp.services import break_glass_open, document_add
from tests.outbox import notifications_sent_at_once  # noqa: F401 - autouse: notices sent at commit
from tests.sample_files import text_pdf
from tests.test_patient_export import _document_files, _download, eager  # noqa: F401 - eager: a fixture


def _doc_url(name: str, doc: Document) -> str:
    return reverse(f"portal_patient:{name}", args=[doc.record_id, doc.pk])


def _titles(response) -> list[str]:
    """The document titles of the access history's detail entries, as shown."""
    return [row.document_title for row in response.context["history"].page]


def _page(response) -> str:
    return response.content.decode()


# -- who is a minor ---------------------------------------------------------------------------


@pytest.mark.parametrize("born, today, minor", [
    (date(2011, 3, 2), date(2026, 11, 29), True),  # Léo, 15
    (date(2008, 11, 30), date(2026, 11, 29), True),  # 18 tomorrow
    (date(2008, 11, 29), date(2026, 11, 29), False),  # 18 today
    (date(2008, 2, 29), date(2026, 2, 28), True),  # born on 29 February: 18 on 1 March
    (date(1970, 5, 17), date(2026, 11, 29), False),
])
def test_a_minor_is_under_18_on_the_day_asked(born, today, minor):
    from datetime import datetime, time

    from django.utils import timezone

    at = timezone.make_aware(datetime.combine(today, time(12)))
    assert Record(birth_date=born).is_minor(at) is minor


# -- the minor hides a document from their representatives -------------------------------------


@pytest.mark.django_db
def test_the_minor_hides_a_document_from_his_mother_and_she_finds_it_nowhere(client, world, eager):  # noqa: F811
    visit = world.docs["leo_visit"]
    # Before: his mother sees it (list, count, search), and a professional's reading of it is in
    # the history she reads, with its title.
    get_document_for(Actor(world.dr_house.user), visit.pk)
    client.force_login(world.mother)
    documents = reverse("portal_patient:documents", args=[world.leo_record.pk])
    assert ">leo visit</a>" in _page(client.get(documents))
    history = reverse("portal_patient:history", args=[world.leo_record.pk])
    assert "leo visit" in _titles(client.get(history))

    # Léo, on the document's page, reads what it does and hides it.
    client.force_login(world.leo)
    page = _page(client.get(_doc_url("document", visit)))
    assert "keep this document secret from your legal representatives" in page
    response = client.post(_doc_url("document_representatives_visibility", visit), {"hidden": "1"})
    assert response.status_code == 302
    assert Document.objects.get(pk=visit.pk).hidden_from_representatives
    page = _page(client.get(response["Location"]))
    assert "The document is hidden from your legal representatives" in page
    assert "Show it to my legal representatives again" in page

    # His mother: not in any view, count or search, no page, no file, no title in the history,
    # not in her export.
    client.force_login(world.mother)
    for view in ("list", "timeline", "thumbnails"):
        page = _page(client.get(documents, {"view": view, "status": "all"}))
        assert "leo visit" not in page, view
        assert 'class="count">0<' in page and 'class="count">1<' not in page
    client.post(documents, {"text": "visit"})
    assert "leo visit" not in _page(client.get(documents)) and "No document matches." in _page(client.get(documents))
    client.post(documents, {"text": ""})
    for name in ("document", "document_download", "document_thumbnail"):
        assert client.get(_doc_url(name, visit)).status_code == 404, name
    assert client.get(reverse("portal_patient:document_file", args=[visit.pk])).status_code == 404
    assert "leo visit" not in _titles(client.get(history)) and "leo visit" not in _page(client.get(history))
    home = _page(client.get(reverse("portal_patient:record", args=[world.leo_record.pk])))
    assert "leo visit" not in home
    eager(client, world.leo_record)
    from dmp.models import RecordExport

    _response, archive = _download(client, RecordExport.objects.get(record=world.leo_record))
    assert _document_files(archive) == {}
    assert b"leo visit" not in archive.read("summary.pdf")

    # Léo shows it again: his mother sees it again.
    client.force_login(world.leo)
    client.post(_doc_url("document_representatives_visibility", visit), {"hidden": "0"})
    client.force_login(world.mother)
    assert ">leo visit</a>" in _page(client.get(documents))


@pytest.mark.django_db
def test_the_representative_never_sees_the_control_nor_sets_or_lifts_the_mark(client, world):
    visit, confidential = world.docs["leo_visit"], world.docs["leo_confidential"]
    client.force_login(world.mother)
    page = _page(client.get(_doc_url("document", visit)))
    assert "legal representatives" not in page.split("doc-actions-title")[1].split("doc-who-title")[0]
    assert "document_representatives_visibility" not in page and "/representatives/" not in page
    # She cannot hide a document from herself (and so from a second parent)...
    assert client.post(_doc_url("document_representatives_visibility", visit), {"hidden": "1"}).status_code == 404
    # ...nor lift what Léo hid: for her the document does not exist.
    assert client.post(_doc_url("document_representatives_visibility", confidential),
                       {"hidden": "0"}).status_code == 404
    assert not Document.objects.get(pk=visit.pk).hidden_from_representatives
    assert Document.objects.get(pk=confidential.pk).hidden_from_representatives
    refusals = AuditEntry.objects.filter(actor=world.mother, allowed=False)
    assert {(e.action, e.rule) for e in refusals} == {
        (Action.HIDE_FROM_REPRESENTATIVES, "holder_themselves_only"),
        (Action.VIEW_DOCUMENT, "document_not_visible")}


@pytest.mark.django_db
@pytest.mark.parametrize("persona, allowed", [
    ("leo", True), ("mother", False), ("dr_house", False), ("alice", False), ("agent", False)])
def test_only_the_holder_may_hide_from_representatives(world, persona, allowed):
    user = getattr(world, persona)
    actor = Actor(user if isinstance(user, User) else user.user)
    assert decide(actor, Action.HIDE_FROM_REPRESENTATIVES, world.docs["leo_visit"]).allowed is allowed
    assert decide(actor, Action.NOTIFY_REPRESENTATIVES, world.leo_record).allowed is allowed


@pytest.mark.django_db
def test_an_adult_without_representative_is_not_offered_the_control(client, world):
    client.force_login(world.alice)
    page = _page(client.get(_doc_url("document", world.docs["consultation"])))
    assert "Hide from my legal representatives" not in page


# -- advance directives are for adults -----------------------------------------------------------


@pytest.mark.django_db
def test_no_advance_directives_prompt_for_a_minor(client, world):
    for user in (world.leo, world.mother):
        client.force_login(user)
        home = _page(client.get(reverse("portal_patient:record", args=[world.leo_record.pk])))
        information = _page(client.get(reverse("portal_patient:information", args=[world.leo_record.pk])))
        for page in (home, information):
            assert "advance directives" not in page.lower()
        for name in ("information_advance_directives", "information_advance_directives_upload"):
            url = reverse(f"portal_patient:{name}", args=[world.leo_record.pk])
            assert client.get(url).status_code == 404
        add = _page(client.get(reverse("portal_patient:documents_add", args=[world.leo_record.pk])))
        assert 'value="advance_directives"' not in add
    # An adult is still asked.
    client.force_login(world.alice)
    home = _page(client.get(reverse("portal_patient:record", args=[world.record.pk])))
    assert "You have not written advance directives" in home


@pytest.mark.django_db
def test_the_services_refuse_advance_directives_for_a_minor(world):
    from dmp.services import InvalidInput, advance_directives_upload

    with pytest.raises(InvalidInput, match="adults only"):
        advance_directives_upload(actor=Actor(world.leo), record=world.leo_record, content=text_pdf("mes choix"),
                                  signed_on=date(2026, 1, 2))
    assert not world.leo_record.documents.filter(doc_type=DocumentType.ADVANCE_DIRECTIVES).exists()


# -- notifications to the representatives --------------------------------------------------------


def _leo_record() -> Record:
    return Record.objects.get(given_names="Léo")


@pytest.mark.django_db
def test_a_representative_is_notified_of_a_break_glass_on_the_minors_record(world, mailoutbox, sms_outbox,
                                                                           django_capture_on_commit_callbacks):
    User.objects.filter(pk=world.mother.pk).update(phone="+33611112222")
    with django_capture_on_commit_callbacks(execute=True):
        break_glass_open(actor=Actor(world.stranger.user), record=_leo_record(), family_name="Martin",
                         given_names="Léo", birth_date=date(2011, 3, 2), justification="Chute, inconscient",
                         emergency=True)
    told = Notification.objects.filter(event="break_glass").order_by("pk")
    assert {(n.recipient_id, n.channel) for n in told} == {
        (world.leo.pk, "email"), (world.mother.pk, "email"), (world.mother.pk, "sms")}
    [mail] = [m for m in mailoutbox if m.to == ["marie.parent@example.org"]]
    assert "Léo Martin" in mail.body and "whom you represent" in mail.body and "Sam Stranger" in mail.body
    assert "inconscient" not in mail.body and "Chute" not in mail.body  # the justification is medical
    [(_to, text)] = [(to, text) for to, text in sms_outbox if to == "+33611112222"]
    assert text.startswith("Léo Martin") and "in an emergency" in text


@pytest.mark.django_db
def test_the_minor_chooses_whether_his_mother_hears_of_first_accesses_and_new_documents(client, world):
    def professional_adds_and_reads():
        Notification.objects.all().delete()
        content = text_pdf(f"n{Document.objects.count()}")
        document_add(actor=Actor(world.dr_house.user), record=_leo_record(), content=content,
                     doc_type=DocumentType.CONSULTATION_REPORT, title="suivi", act_date=date(2026, 2, 1))
        return set(Notification.objects.values_list("recipient_id", "event"))

    # By default, as the law has it, the parents hear of the record's life.
    assert professional_adds_and_reads() == {(world.leo.pk, "document_added"), (world.mother.pk, "document_added")}
    # Léo says no, on his management page; his mother is offered no such choice.
    client.force_login(world.mother)
    manage = reverse("portal_patient:manage", args=[world.leo_record.pk])
    assert "Also tell my legal representatives" not in _page(client.get(manage))
    url = reverse("portal_patient:representatives_notified", args=[world.leo_record.pk])
    assert client.post(url, {"notified": "on"}).status_code == 404
    client.force_login(world.leo)
    assert "Also tell my legal representatives" in _page(client.get(manage))
    assert client.post(url, {}).status_code == 302
    assert not _leo_record().representatives_notified
    assert professional_adds_and_reads() == {(world.leo.pk, "document_added")}
    # An emergency is still told to her.
    break_glass_open(actor=Actor(world.stranger.user), record=_leo_record(), family_name="Martin",
                     given_names="Léo", birth_date=date(2011, 3, 2), justification="Chute", emergency=True)
    assert Notification.objects.filter(recipient=world.mother, event="break_glass").exists()


@pytest.mark.django_db
def test_a_first_access_is_told_to_the_representative_too(world):
    from dmp.models import CareAuthorisation

    CareAuthorisation.objects.create(record=_leo_record(), professional=world.dr_grant,
                                     kind=CareAuthorisation.Kind.GRANTED_BY_PATIENT)
    get_record_for(Actor(world.dr_grant.user), world.leo_record.pk)
    assert set(Notification.objects.values_list("recipient_id", "event")) == {
        (world.leo.pk, "first_access"), (world.mother.pk, "first_access")}
    context = Notification.objects.filter(recipient=world.mother).first().context
    assert "represented" in context


# -- the counter creates the parent's account -----------------------------------------------------


def _onboarding(**extra) -> dict:
    return {"consented": "yes", "break_glass_allowed": "yes", "samu_allowed": "yes", "given_by": "representative",
            "family_name": "Diallo", "given_names": "Moussa", "birth_date": "2014-04-05",
            "preferred_language": "fr", "representative_create": "on", "representative_family_name": "Diallo",
            "representative_given_names": "Awa", "representative_new_relationship": "parent",
            "representative_phone": "06 12 34 56 78"} | extra


@pytest.mark.django_db
def test_the_counter_creates_the_parents_account_and_prints_her_sheet(client, world):
    client.force_login(world.agent.user)
    response = client.post(reverse("social_workers:onboarding_start"), _onboarding())
    assert response.status_code == 302, _page(response)
    record = Record.objects.get(given_names="Moussa")
    [representation] = LegalRepresentative.objects.filter(record=record)
    parent = representation.user
    assert (parent.first_name, parent.last_name, parent.phone, representation.relationship) == (
        "Awa", "Diallo", "+33612345678", "parent")
    assert parent.username.startswith("R") and parent.must_change_password and parent.has_usable_password()
    assert parent.pk != record.holder_id

    done = _page(client.get(reverse("social_workers:onboarding_done")))
    assert parent.username in done and "Print the legal representative's credentials sheet" in done
    pdf = reverse("social_workers:onboarding_credentials_pdf")
    for query in ("", "?for=representative"):
        answer = client.get(pdf + query)
        assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    # The parent logs in to the patient portal and acts for her son.
    assert Actor(parent).represented_record_ids == {record.pk}


@pytest.mark.django_db
def test_the_counter_sheet_of_the_parent_carries_her_own_credentials(client, world, monkeypatch):
    rendered = []
    import social_workers.views.onboarding as onboarding

    monkeypatch.setattr(onboarding, "_pdf", lambda html, filename: rendered.append(html) or onboarding.HttpResponse())
    client.force_login(world.agent.user)
    client.post(reverse("social_workers:onboarding_start"), _onboarding())
    parent = LegalRepresentative.objects.get(record__given_names="Moussa").user
    client.get(reverse("social_workers:onboarding_credentials_pdf") + "?for=representative")
    client.get(reverse("social_workers:onboarding_credentials_pdf"))
    representative_sheet, holder_sheet = rendered
    assert parent.username in representative_sheet and "Moussa Diallo" in representative_sheet
    password = re.search(r'<dd class="secret">([^<]+)</dd>\s*</dl>', representative_sheet).group(1)
    assert parent.check_password(password)
    assert parent.username not in holder_sheet
    # Handed over: both passwords are forgotten.
    client.post(reverse("social_workers:onboarding_handed"))
    assert client.get(reverse("social_workers:onboarding_credentials_pdf") + "?for=representative").status_code == 404


@pytest.mark.django_db
def test_the_counter_refuses_a_new_parent_without_names_or_with_an_existing_account_too(client, world):
    client.force_login(world.agent.user)
    url = reverse("social_workers:onboarding_start")
    response = client.post(url, _onboarding(representative_given_names=""))
    assert response.status_code == 200 and not Record.objects.filter(given_names="Moussa").exists()
    response = client.post(url, _onboarding(representative_username=world.mother.username))
    assert "not both" in _page(response) and not Record.objects.filter(given_names="Moussa").exists()
    # Without the box ticked, the named parent gets no account.
    response = client.post(url, _onboarding(representative_create="", representative_username=world.mother.username))
    assert response.status_code == 302
    assert LegalRepresentative.objects.get(record__given_names="Moussa").user == world.mother


# -- the sweep of the two new actions -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("persona, status", [
    (None, 302),  # to the login page
    ("alice", 404),  # another patient: nothing to know
    ("mother", 404),  # his representative: not hers to decide
    ("dr_house", 403),  # not the patient portal
    ("agent", 403),
    ("leo", 302),  # done, back to the page
])
def test_who_may_post_what_the_representatives_see_and_hear(client, world, persona, status):
    from tests.personas import user_of

    if persona:
        client.force_login(user_of(world, persona))
    urls = [_doc_url("document_representatives_visibility", world.docs["leo_visit"]),
            reverse("portal_patient:representatives_notified", args=[world.leo_record.pk])]
    for url in urls:
        response = client.post(url, {"hidden": "1"})
        assert response.status_code == status, url
        if persona is None:
            assert "/accounts/login/" in response["Location"]
    changed = Record.objects.get(pk=world.leo_record.pk).representatives_notified is False
    assert Document.objects.get(pk=world.docs["leo_visit"].pk).hidden_from_representatives is (persona == "leo")
    assert changed is (persona == "leo")
