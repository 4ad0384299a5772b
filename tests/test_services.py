"""Writes go through services that ask the policy first and refuse bad input with a clear
message, losing nothing."""

from __future__ import annotations

from datetime import date
from importlib import import_module

import pytest

from dmp.models import AuditEntry, CareAuthorisation, Consent, Document, DocumentType, Record, Synthesis
from dmp.policy import Action, Actor, decide
from dmp.services import (
    AccessRefused,
    InvalidInput,
    InvalidInputCode,
    break_glass_open,
    care_authorisation_declare,
    care_authorisation_grant,
    document_add,
    document_deposit,
    professional_block,
    record_close,
    record_create,
    synthesis_write,
    treating_doctor_designate,
)
from dmp.services.synthesis import Problem
from tests.personas import make_professional
from tests.sample_files import image_bytes, text_pdf

PNG = image_bytes("PNG")  # a real image: a file that only starts like one is refused


def _create(actor, **extra):
    values = dict(family_name="Haddad", given_names="Samira", birth_date=date(1994, 2, 1), consented=True,
                  break_glass_allowed=True, samu_allowed=False)
    return record_create(actor=actor, **(values | extra))


@pytest.mark.django_db
def test_counter_agent_creates_a_record_without_nir_email_or_phone(world):
    record, credentials = _create(Actor(world.agent.user), languages=["fa", "ru"], preferred_language="fa")
    assert record.nir is None and record.identifier == record.provisional_id == credentials.username
    assert record.holder.check_password(credentials.temporary_password)
    assert record.holder.must_change_password
    consent = record.consent
    assert (consent.channel, consent.captured_by, consent.samu_allowed) == ("counter", world.agent.user, False)
    assert record.deposit_rights.get().agent == world.agent
    # The agent may deposit into it but never read it.
    agent = Actor(world.agent.user)
    assert decide(agent, Action.DEPOSIT_DOCUMENT, record).allowed
    assert not decide(agent, Action.VIEW_RECORD, record).allowed


@pytest.mark.django_db
@pytest.mark.parametrize("typed, stored", [
    ("06 39 98 00 11", "+33639980011"), ("07.98.76.54.32", "+33798765432"), ("+44 7700 900123", "+447700900123"),
    ("0044 7700 900123", "+447700900123"),
    ("06 12 34 56 78", "+33612345678"), ("+32 470 12 34 56", "+32470123456"), ("00 32 470 12 34 56", "+32470123456"),
    ("+44 7400 123456", "+447400123456"), ("+262 692 12 34 56", "+262692123456"),
    ("+33 (0)6 12 34 56 78", "+33612345678"),
])
def test_a_mobile_number_is_checked_against_its_countrys_plan_and_stored_in_e164(world, typed, stored):
    """Stored in international form for the login code, each number against its country's plan."""
    record, _ = _create(Actor(world.agent.user), phone=typed)
    assert record.phone == record.holder.phone == stored


@pytest.mark.django_db
@pytest.mark.parametrize("typed", [
    "+32 470 12 34",  # too short for Belgium
    "+44 20 7946 0958",  # a London landline: no SMS
    "07 00 00 00 01",  # not a range in use in France
    "06 12 34 56 78 x12", "06 12 34 56 7a",  # letters: an extension, a vanity number
    "+33 6 12 34 56 78 9",
])
def test_a_number_invalid_for_its_country_is_refused(world, typed):
    with pytest.raises(InvalidInput, match="country code"):
        _create(Actor(world.agent.user), phone=typed)


@pytest.mark.parametrize("typed, stored", [
    ("01 23 45 67 89", "+33123456789"), ("09 12 34 56 78", "+33912345678"), ("+44 20 7946 0958", "+442079460958"),
    ("06 12 34 56 78", "+33612345678"),
])
def test_a_relatives_phone_may_be_a_landline_of_any_country(typed, stored):
    from dmp.services.personal import _contact_phone

    assert _contact_phone(typed) == stored


@pytest.mark.parametrize("typed", ["08 00 12 34 56", "+32 2 123", "01 23 45 67", "phone"])
def test_a_relatives_phone_that_is_no_ones_is_refused(typed):
    from dmp.services.personal import _contact_phone

    with pytest.raises(InvalidInput, match="country code") as refused:
        _contact_phone(typed)
    assert refused.value.code == InvalidInputCode.INVALID


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["12", "06 39 98", "01 23 45 67 89", "+0 123 456 789", "phone"])
def test_a_malformed_mobile_number_is_refused_and_nothing_is_created(world, typed):
    with pytest.raises(InvalidInput, match="country code"):
        _create(Actor(world.agent.user), phone=typed)
    assert not Record.objects.filter(family_name="Haddad").exists()


@pytest.mark.django_db
def test_record_creation_appears_in_the_records_history(world):
    record, _ = _create(Actor(world.agent.user, ip="192.0.2.10"))
    entry = AuditEntry.objects.get(record_id_ref=record.pk)
    assert (entry.action, entry.mode, entry.actor_id, entry.ip) == ("create_record", "counter", world.agent.user.pk,
                                                                     "192.0.2.10")


@pytest.mark.django_db
def test_declared_care_lets_the_same_actor_add_a_document_at_once(world):
    stranger = Actor(world.stranger.user)
    assert not decide(stranger, Action.ADD_DOCUMENT, world.record, doc_type=DocumentType.LAB_REPORT).allowed
    care_authorisation_declare(actor=stranger, record=world.record)
    document_add(actor=stranger, record=world.record, content=PNG, doc_type=DocumentType.LAB_REPORT,
                 title="Glycémie", act_date=date(2026, 11, 20))


@pytest.mark.django_db
def test_patient_cannot_grant_a_blocked_professional_and_grants_are_not_duplicated(world):
    alice = Actor(world.alice)
    with pytest.raises(InvalidInput, match="blocked"):
        care_authorisation_grant(actor=alice, record=world.record, professional=world.blocked_kine)
    first = care_authorisation_grant(actor=alice, record=world.record, professional=world.stranger)
    assert care_authorisation_grant(actor=alice, record=world.record, professional=world.stranger) == first


@pytest.mark.django_db
def test_nir_attached_later_keeps_the_same_record(world):
    record, _ = _create(Actor(world.agent.user))
    record.nir = "255081416802538"
    record.full_clean()
    record.save(update_fields=["nir"])
    assert Record.objects.get(nir="255081416802538").pk == record.pk


@pytest.mark.django_db
def test_record_creation_needs_consent_and_a_valid_unique_nir(world):
    agent = Actor(world.agent.user)
    with pytest.raises(InvalidInput, match="consent"):
        _create(agent, consented=False)
    with pytest.raises(InvalidInput, match="key"):
        _create(agent, nir="255081416802539")
    _create(agent, nir="255081416802538")
    with pytest.raises(InvalidInput, match="already exists"):
        _create(agent, nir="2 55 08 14 168 025 38")
    assert Record.objects.filter(family_name="Haddad").count() == 1
    assert Consent.objects.filter(record__family_name="Haddad").count() == 1


@pytest.mark.django_db
def test_administrator_cannot_create_records(world):
    with pytest.raises(AccessRefused):
        _create(Actor(world.admin))
    assert AuditEntry.objects.get().rule == "administrator_no_medical_access"


@pytest.mark.django_db
def test_professional_adds_a_document_once_and_types_hidden_by_default_arrive_hidden(world):
    Record.objects.filter(pk=world.record.pk).update(default_hidden_types=[DocumentType.LAB_REPORT])
    record = Record.objects.get(pk=world.record.pk)
    actor = Actor(world.dr_grant.user)
    doc = document_add(actor=actor, record=record, content=text_pdf("HbA1c"), doc_type=DocumentType.LAB_REPORT,
                       title="HbA1c", act_date=date(2026, 11, 2))
    assert (doc.space, doc.author_professional, doc.hidden_from_professionals) == ("biology", world.dr_grant, True)
    with pytest.raises(InvalidInput, match="already in the record"):
        document_add(actor=actor, record=record, content=text_pdf("HbA1c"), doc_type=DocumentType.LAB_REPORT,
                     title="again", act_date=date(2026, 11, 2))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"PK\x03\x04 a word file", "Only PDF files, images"), (b"<html>", "Only PDF"),
     (b"<!DOCTYPE html><p>a web page", "Only PDF"), (b"<?xml version='1.0'?><note/>", "not a CDA R2 document")],
)
def test_other_formats_are_refused_with_a_clear_message(world, content, message):
    with pytest.raises(InvalidInput, match=message):
        document_add(actor=Actor(world.dr_grant.user), record=world.record, content=content,
                     doc_type=DocumentType.CONSULTATION_REPORT, title="x", act_date=date(2026, 1, 1))


@pytest.mark.django_db
def test_a_new_version_keeps_what_the_patient_chose_for_the_one_it_replaces(world):
    """Hidden from professionals, hidden from representatives, a release still to come: an
    author's new version shows nowhere the version it replaces did not."""
    samu = make_professional("samu_regulator", is_samu_regulator=True)
    hidden = world.docs["hidden"]
    assert decide(Actor(samu.user), Action.VIEW_DOCUMENT, world.docs["consultation"]).allowed
    assert not decide(Actor(samu.user), Action.VIEW_DOCUMENT, hidden).allowed
    new = document_add(actor=Actor(world.dr_grant.user), record=world.record, content=text_pdf("v2 cachée"),
                       doc_type=hidden.doc_type, title="v2", act_date=hidden.act_date, replaces=hidden)
    assert new.hidden_from_professionals
    assert not decide(Actor(samu.user), Action.VIEW_DOCUMENT, new).allowed

    withheld = world.docs["withheld"]
    new = document_add(actor=Actor(world.dr_grant.user), record=world.record, content=text_pdf("v2 retenue"),
                       doc_type=withheld.doc_type, title="v2", act_date=withheld.act_date, replaces=withheld)
    assert new.withheld_from_patient_until == withheld.withheld_from_patient_until
    assert not decide(Actor(world.alice), Action.VIEW_DOCUMENT, new).allowed

    confidential = world.docs["leo_confidential"]
    new = document_add(actor=Actor(world.dr_house.user), record=confidential.record,
                       content=text_pdf("v2 confidentielle"), doc_type=confidential.doc_type, title="v2",
                       act_date=confidential.act_date, replaces=confidential)
    assert new.hidden_from_representatives
    assert not decide(Actor(world.mother), Action.VIEW_DOCUMENT, new).allowed


@pytest.mark.django_db
def test_author_replaces_own_document_with_a_new_version(world):
    old = world.docs["consultation"]
    new = document_add(actor=Actor(world.dr_grant.user), record=world.record, content=PNG,
                       doc_type=old.doc_type, title="corrected", act_date=old.act_date, replaces=old)
    assert new.version == 2 and new.replaces == old
    assert Document.objects.filter(pk=old.pk).exists()  # nothing overwritten
    # The lists keep to the latest versions by the stored flag: only the new one carries it.
    assert Document.objects.get(pk=new.pk).is_latest_version
    assert not Document.objects.get(pk=old.pk).is_latest_version
    with pytest.raises(AccessRefused):
        document_add(actor=Actor(world.dr_grant.user), record=world.record, content=PNG + b"1",
                     doc_type=old.doc_type, title="again", act_date=old.act_date,
                     replaces=Document.objects.get(pk=old.pk))


@pytest.mark.django_db
def test_the_migration_marks_the_versions_already_replaced(world):
    from django.apps import apps

    mark_replaced_versions = import_module("dmp.migrations.0017_document_latest_version").mark_replaced_versions
    old = world.docs["consultation"]
    # A version stored before the flag existed: the older one still says it is the latest.
    new = Document.objects.create(
        record=world.record, doc_type=old.doc_type, title="corrected", act_date=old.act_date,
        author_kind=old.author_kind, author_professional=old.author_professional, file="records/x/corrected",
        mime_type="application/pdf", size=1, content_hash="c" * 64, replaces=old, version=2,
    )
    assert Document.objects.get(pk=old.pk).is_latest_version
    mark_replaced_versions(apps, None)
    assert not Document.objects.get(pk=old.pk).is_latest_version
    assert Document.objects.get(pk=new.pk).is_latest_version
    assert Document.objects.filter(record=world.record, is_latest_version=False).count() == 1


@pytest.mark.django_db
def test_patient_adds_to_personal_space_only(world):
    alice = Actor(world.alice)
    doc = document_add(actor=alice, record=world.record, content=PNG, doc_type=DocumentType.ADVANCE_DIRECTIVES,
                       title="Mes directives", act_date=date(2026, 1, 1))
    assert (doc.space, doc.author_kind) == ("personal", "patient")
    with pytest.raises(AccessRefused):
        document_add(actor=alice, record=world.record, content=PNG + b"x", doc_type=DocumentType.LAB_REPORT,
                     title="x", act_date=date(2026, 1, 1))


@pytest.mark.django_db
def test_counter_deposit_is_write_only(world):
    doc = document_deposit(actor=Actor(world.agent.user), record=world.record, content=PNG,
                           doc_type=DocumentType.CERTIFICATE, title="Certificat", act_date=date(2025, 3, 1))
    assert doc.author_kind == "counter" and doc.system_source == "CADA Lille"
    assert not decide(Actor(world.agent.user), Action.VIEW_DOCUMENT, doc).allowed
    with pytest.raises(AccessRefused):
        document_deposit(actor=Actor(world.other_agent.user), record=world.record, content=PNG + b"2",
                         doc_type=DocumentType.CERTIFICATE, title="x", act_date=date(2025, 3, 1))


@pytest.mark.django_db
def test_break_glass_checks_identity_justification_and_expires(world, settings):
    stranger = Actor(world.stranger.user)
    args = dict(record=world.record, family_name="MARTIN", given_names="alice", birth_date=date(1970, 5, 17),
                justification="Coma", emergency=True)
    with pytest.raises(InvalidInput, match="do not match"):
        break_glass_open(actor=stranger, **(args | {"birth_date": date(1970, 5, 18)}))
    with pytest.raises(InvalidInput, match="emergency box"):
        break_glass_open(actor=stranger, **(args | {"emergency": False}))
    with pytest.raises(InvalidInput, match="reason"):
        break_glass_open(actor=stranger, **(args | {"justification": "  "}))
    assert decide(stranger, Action.VIEW_RECORD, world.record).rule == "no_care_authorisation"
    grant = break_glass_open(actor=stranger, **args)
    hours = (grant.expires_at - grant.created_at).total_seconds() / 3600
    assert hours == settings.BREAK_GLASS_DURATION_HOURS
    # The same actor (one request) reads right after opening: no stale answer.
    assert decide(stranger, Action.VIEW_RECORD, world.record).rule == "break_glass"
    with pytest.raises(AccessRefused):
        break_glass_open(actor=Actor(world.blocked_kine.user), **args)


@pytest.mark.django_db
def test_blocking_ends_authorisations_and_declared_care_reopens_nothing(world):
    professional_block(actor=Actor(world.dr_house.user), record=world.record, professional=world.dr_grant)
    assert not CareAuthorisation.objects.active().filter(professional=world.dr_grant).exists()
    assert decide(Actor(world.dr_grant.user), Action.VIEW_RECORD, world.record).rule == "blocked_professional"
    with pytest.raises(AccessRefused):
        care_authorisation_declare(actor=Actor(world.dr_grant.user), record=world.record)


@pytest.mark.django_db
def test_designating_a_new_treating_doctor_ends_the_previous_one(world):
    treating_doctor_designate(actor=Actor(world.alice), record=world.record, professional=world.stranger)
    assert decide(Actor(world.stranger.user), Action.EDIT_SYNTHESIS, world.record).allowed
    assert not decide(Actor(world.dr_house.user), Action.EDIT_SYNTHESIS, world.record).allowed
    with pytest.raises(InvalidInput):
        treating_doctor_designate(actor=Actor(world.alice), record=world.record, professional=world.kine)


@pytest.mark.django_db
def test_synthesis_is_versioned_and_icd10_coded(world):
    house = Actor(world.dr_house.user)
    first = synthesis_write(actor=house, record=world.record, problems=[Problem("E11.9", "Type 2 diabetes")],
                            allergies="Penicillin")
    second = synthesis_write(actor=house, record=world.record,
                             problems=[Problem("E11.9", "Type 2 diabetes"), Problem("I10", "Hypertension")])
    assert (first.version, second.version) == (1, 2)
    assert Synthesis.objects.filter(record=world.record).count() == 2
    with pytest.raises(InvalidInput, match="not an ICD-10 code"):
        synthesis_write(actor=house, record=world.record, problems=[Problem("Z99.999X", "nonsense")])
    with pytest.raises(AccessRefused):
        synthesis_write(actor=Actor(world.dr_grant.user), record=world.record, problems=[Problem("I10", "HTA")])
    assert Synthesis.objects.filter(record=world.record).count() == 2


@pytest.mark.django_db
def test_closed_record_is_read_by_nobody(world):
    record_close(actor=Actor(world.alice), record=world.record)
    for who in (world.alice, world.dr_house.user, world.regulator.user):
        assert decide(Actor(who), Action.VIEW_RECORD, Record.objects.get(pk=world.record.pk)).rule == "record_closed"


@pytest.mark.django_db
def test_a_professional_acting_as_legal_representative_adds_as_the_patient(world):
    from dmp.models import LegalRepresentative

    LegalRepresentative.objects.create(record=world.leo_record, user=world.dr_grant.user, relationship="parent")
    doc = document_add(actor=Actor(world.dr_grant.user), record=world.leo_record, content=PNG,
                       doc_type=DocumentType.PATIENT_DOCUMENT, title="Carnet", act_date=date(2026, 1, 1))
    assert (doc.author_kind, doc.author_professional) == ("patient", None)
