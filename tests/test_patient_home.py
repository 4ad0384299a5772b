"""The patient's home page (DOMAIN.md §3): what matters about one's record at a glance, and the
switch between the records a legal representative acts for."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dmp.models import AuditEntry, PersonalProfile, Synthesis, SynthesisProblem
from dmp.policy import Action, Actor
from dmp.selectors import get_record_for
from tests.personas import make_document, make_record


def home(client, record):
    return client.get(reverse("portal_patient:record", args=[record.pk]))


@pytest.mark.django_db
def test_the_home_page_shows_the_last_document_and_calls_for_missing_directives(client, world):
    client.force_login(world.alice)
    make_document(world.record, "newest")
    page = home(client, world.record).content.decode()
    assert "newest" in page
    assert "advance directives" in page and "organ and tissue donation" in page  # the calls to action
    assert "withheld" not in page  # a result not yet announced is nowhere


@pytest.mark.django_db
def test_once_stated_the_calls_to_action_go(client, world):
    PersonalProfile.objects.update_or_create(record=world.record, defaults={
        "advance_directives": "No resuscitation.", "organ_donation": PersonalProfile.OrganDonation.INFORMED})
    client.force_login(world.alice)
    page = home(client, world.record).content.decode()
    assert "You have not written advance directives" not in page
    assert "Informed of the rules on organ and tissue donation" in page


@pytest.mark.django_db
def test_emergency_accesses_stand_out_and_professional_reads_are_listed(client, world):
    get_record_for(Actor(world.urgentist.user), world.record.pk)  # a break-glass read
    get_record_for(Actor(world.dr_grant.user), world.record.pk)
    client.force_login(world.alice)
    page = home(client, world.record).content.decode()
    emergency = page.split('<div class="emergency">')[1].split("</div>")[0]
    assert "Urgences" in emergency and "Emergency (break-glass)" in emergency
    assert "Anna Grant" not in emergency
    assert "Anna Grant" in page.split("Last accesses by a professional")[1]


@pytest.mark.django_db
def test_the_synthesis_is_one_click_away(client, world):
    synthesis = Synthesis.objects.create(record=world.record, version=1, author=world.dr_house,
                                         current_treatments="Metformin 1000 mg")
    SynthesisProblem.objects.create(synthesis=synthesis, icd10="E11.9", label="Type 2 diabetes")
    client.force_login(world.alice)
    assert "Type 2 diabetes" in home(client, world.record).content.decode()
    page = client.get(reverse("portal_patient:synthesis", args=[world.record.pk])).content.decode()
    assert "Metformin 1000 mg" in page and "E11.9" in page


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "mother"])
def test_the_home_page_query_count_does_not_grow_with_the_record(client, world, django_assert_max_num_queries,
                                                                 persona):
    record = world.record if persona == "alice" else world.leo_record
    client.force_login(getattr(world, persona))
    home(client, record)  # the session's renewal: not what is measured
    # Session, account, the records the account acts for, the record, its parts, the access
    # lists and the portal switch; a representative's reads in one append (3).
    with django_assert_max_num_queries(15) as few:
        assert home(client, record).status_code == 200
    for i in range(15):
        make_document(record, f"more {i}")
        get_record_for(Actor(world.dr_house.user), record.pk)
    # The same with 15 more documents and accesses.
    with django_assert_max_num_queries(len(few)):
        assert home(client, record).status_code == 200


@pytest.mark.django_db
def test_a_representative_switches_between_the_records_they_act_for(client, world):
    own = make_record(world.mother, family_name="Martin", given_names="Marie")
    client.force_login(world.mother)
    chooser = client.get(reverse("portal_patient:home")).content.decode()
    assert reverse("portal_patient:record", args=[own.pk]) in chooser
    assert reverse("portal_patient:record", args=[world.leo_record.pk]) in chooser

    page = home(client, world.leo_record).content.decode()
    assert "you act as legal representative" in page
    assert reverse("portal_patient:record", args=[own.pk]) in page.split('class="record-switch"')[1]
    # Reading the child's record is a read by someone other than the patient: it is logged.
    assert AuditEntry.objects.filter(record_id_ref=world.leo_record.pk, mode="representative",
                                     action=Action.VIEW_RECORD).exists()
    page = home(client, own).content.decode()
    assert "you act as legal representative" not in page and "My record" in page


@pytest.mark.django_db
def test_the_minor_with_a_login_sees_their_own_record_without_what_is_withheld(client, world):
    client.force_login(world.leo)
    assert client.get(reverse("portal_patient:home"))["Location"] == reverse("portal_patient:record",
                                                                             args=[world.leo_record.pk])
    page = home(client, world.leo_record).content.decode()
    assert "you act as legal representative" not in page
    assert "leo withheld" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["portal_patient:record", "portal_patient:synthesis"])
def test_nobody_else_reaches_a_patients_home(client, world, url_name):
    client.force_login(world.alice)
    assert client.get(reverse(url_name, args=[world.leo_record.pk])).status_code == 404
    for persona in (world.dr_house.user, world.agent.user, world.admin):
        client.force_login(persona)
        assert client.get(reverse(url_name, args=[world.record.pk])).status_code == 403
    client.logout()
    assert client.get(reverse(url_name, args=[world.record.pk])).status_code == 302


@pytest.mark.django_db
def test_after_closing_the_holder_is_told_the_record_is_closed(client, world):
    from dmp.services import record_close

    record_close(actor=Actor(world.alice), record=world.record)
    client.force_login(world.alice)
    page = client.get(reverse("portal_patient:home"))
    assert page.status_code == 200 and "Your record is closed" in page.content.decode()
    assert home(client, world.record).status_code == 404


@pytest.mark.django_db
def test_an_uploaded_advance_directives_document_counts_as_written(client, world):
    from dmp.models import DocumentType

    make_document(world.record, "my directives", DocumentType.ADVANCE_DIRECTIVES)
    client.force_login(world.alice)
    assert "You have not written advance directives" not in home(client, world.record).content.decode()
