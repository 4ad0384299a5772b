"""The patient's management screen, through the views: who has access and how, the médecin
traitant, granting, revoking, blocking, deposit rights, the emergency choices, notifications
and closing — each allowed to the holder (and representative), refused to everyone else, and
each checked by what the professional, agent or regulator can do afterwards."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from dmp import services
from dmp.models import AuditEntry, Block, CareAuthorisation, DepositRight, Record, TreatingDoctor
from dmp.models.people import rpps_with_key
from dmp.policy import Actor
from tests.personas import user_of

pytestmark = pytest.mark.django_db


def _url(name: str, record) -> str:
    return reverse(f"portal_patient:{name}", args=[record.pk])


def _post(client, name: str, record, data: dict | None = None):
    return client.post(_url(name, record), data or {})


def _pro_reads(client, professional, record) -> int:
    """What the professional gets on the pro portal's record page (200 or 404)."""
    client.force_login(professional.user)
    return client.get(reverse("portal_pro:record", args=[record.pk])).status_code


# --- who may use the screen --------------------------------------------------------------

GET_PAGES = ["manage", "close"]
POSTS = [
    ("treating_doctor_designate", "professional", "dr_grant"),
    ("treating_doctor_end", None, None),
    ("care_authorisation_grant", "rpps", "stranger"),
    ("care_authorisation_revoke", "professional", "dr_grant"),
    ("professional_block", "professional", "dr_grant"),
    ("professional_unblock", "professional", "blocked_kine"),
    ("deposit_right_withdraw", "deposit_right", None),
    ("emergency_access", "break_glass", None),
    ("notifications", "by_email", None),
    ("close", "confirm", None),
]
# (persona, record, expected): another patient's record and a representative outside their
# child's record → 404; accounts that are not patients → 403 (the portal is closed to them).
OUTSIDERS = [
    ("alice", "leo_record", 404),
    ("mother", "record", 404),
    ("dr_house", "record", 403),
    ("agent", "record", 403),
    ("admin", "record", 403),
    (None, "record", 302),
]


def _data(world, field, target):
    if field is None:
        return {}
    if field == "professional":
        return {"professional": getattr(world, target).pk}
    if field == "rpps":
        return {"rpps": getattr(world, target).rpps}
    if field == "deposit_right":
        return {"deposit_right": DepositRight.objects.get(record=world.record).pk}
    if field == "break_glass":
        return {"break_glass": "no", "samu": "no"}
    return {field: "on"}


def _state(world):
    record = Record.objects.get(pk=world.record.pk)
    return (
        record.state, record.break_glass_allowed, record.samu_allowed, record.notify_by_email,
        record.notify_every_access,
        list(TreatingDoctor.objects.active().filter(record=record).values_list("professional_id", flat=True)),
        CareAuthorisation.objects.active().filter(record=record).count(),
        Block.objects.active().filter(record=record).count(),
        DepositRight.objects.active().filter(record=record).count(),
    )


@pytest.mark.parametrize(("persona", "record_key", "status"), OUTSIDERS)
def test_only_the_holder_and_representative_reach_the_management_pages(client, world, persona, record_key, status):
    if persona:
        client.force_login(user_of(world, persona))
    record = getattr(world, record_key)
    for name in GET_PAGES:
        response = client.get(_url(name, record))
        assert response.status_code == status, name
        if status == 302:
            assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize(("persona", "record_key", "status"), OUTSIDERS)
def test_every_change_is_refused_to_outsiders_and_changes_nothing(client, world, persona, record_key, status):
    if persona:
        client.force_login(user_of(world, persona))
    before, leo_before = _state(world), Record.objects.get(pk=world.leo_record.pk).samu_allowed
    for name, field, target in POSTS:
        response = _post(client, name, getattr(world, record_key), _data(world, field, target))
        assert response.status_code == status, name
    assert _state(world) == before
    assert Record.objects.get(pk=world.leo_record.pk).samu_allowed == leo_before


def test_the_holder_reaches_every_page(client, world):
    client.force_login(world.alice)
    for name in GET_PAGES:
        assert client.get(_url(name, world.record)).status_code == 200
    client.force_login(world.mother)
    assert client.get(_url("manage", world.leo_record)).status_code == 200


def test_changes_are_post_only(client, world):
    client.force_login(world.alice)
    for name, field, target in POSTS:
        if name != "close":
            assert client.get(_url(name, world.record), _data(world, field, target)).status_code == 405, name


# --- who has access and how ---------------------------------------------------------------

def test_the_page_lists_every_standing_and_how_it_was_obtained(client, world, django_assert_max_num_queries):
    client.force_login(world.alice)
    with django_assert_max_num_queries(20):
        response = client.get(_url("manage", world.record))
    page = response.content.decode()
    overview = response.context["overview"]
    assert overview.treating_doctor.professional == world.dr_house
    assert "Gregory House" in page and "Médecin traitant since" in page
    by_pro = {s.professional: s for s in overview.authorised}
    assert set(by_pro) == {world.dr_grant, world.kine}  # not the blocked physiotherapist, not the stranger
    assert by_pro[world.dr_grant].granted_at and not by_pro[world.dr_grant].declared_at
    assert by_pro[world.kine].declared_at and not by_pro[world.kine].granted_at
    assert "You gave them access on" in page and "at a consultation, that you agreed" in page
    # The running emergency access, with its end and its reason; the expired one is gone.
    assert [o.professional for o in overview.emergency_openings] == [world.urgentist]
    assert "Unconscious, brought by firemen" in page and "Lars Late" not in page
    assert "The SAMU regulators (centre 15)" in page and "Regis Samu" not in page  # a rule, not a list
    assert {b.professional for b in overview.blocked} == {world.blocked_kine, world.blocked_regulator}
    assert [r.agent for r in overview.deposit_rights] == [world.agent]
    assert "CADA Lille" in page and "they can never read the record" in page
    assert "Sam Stranger" not in page
    assert overview.candidates == [world.dr_grant]  # general practitioners who already see the record


def test_a_representative_managing_a_childs_record_is_audited(client, world):
    client.force_login(world.mother)
    response = _post(client, "emergency_access", world.leo_record, {"break_glass": "yes", "samu": "no"})
    assert response.status_code == 302
    assert Record.objects.get(pk=world.leo_record.pk).samu_allowed is False
    entry = AuditEntry.objects.get(record_id_ref=world.leo_record.pk, action="manage_access", actor=world.mother)
    assert entry.allowed and entry.mode == "representative" and entry.role == "representative"
    # The patient's own management is not an access by someone else: not in the log.
    client.force_login(world.alice)
    _post(client, "emergency_access", world.record, {"break_glass": "yes", "samu": "no"})
    assert not AuditEntry.objects.filter(record_id_ref=world.record.pk, action="manage_access").exists()


# --- médecin traitant ---------------------------------------------------------------------

def test_designate_among_the_professionals_with_access(client, world):
    client.force_login(world.alice)
    response = _post(client, "treating_doctor_designate", world.record, {"professional": world.dr_grant.pk})
    assert response.status_code == 302
    assert response["Location"].endswith("#treating-doctor")
    assert list(TreatingDoctor.objects.active().filter(record=world.record)) == [
        TreatingDoctor.objects.get(record=world.record, professional=world.dr_grant)]
    # Dr Grant now sees hidden documents; Dr House, with no care authorisation, no longer reads the record.
    client.force_login(world.dr_grant.user)
    assert client.get(reverse("portal_pro:document_file", args=[world.docs["hidden"].pk])).status_code == 200
    assert _pro_reads(client, world.dr_house, world.record) == 404


def test_designate_by_rpps_number(client, world):
    client.force_login(world.alice)
    response = _post(client, "treating_doctor_designate", world.record, {"rpps": f" {world.stranger.rpps} "})
    assert response.status_code == 302
    assert TreatingDoctor.objects.active().get(record=world.record).professional == world.stranger
    assert _pro_reads(client, world.stranger, world.record) == 200


@pytest.mark.parametrize(("rpps", "message"), [
    ("123", "An RPPS number has exactly 11 digits."),
    ("1234567890a", "An RPPS number has exactly 11 digits."),
    ("wrong-key", "wrong check digit"),
    ("unknown", "No health professional has this RPPS number."),
    ("kine", "The médecin traitant is a general practitioner."),
    ("blocked_regulator", "This professional is blocked: lift the block first."),
    ("", "Type the professional&#x27;s RPPS number"),
])
def test_designate_by_rpps_refuses_a_bad_number_with_a_clear_message(client, world, rpps, message):
    if rpps == "wrong-key":
        good = world.stranger.rpps
        rpps = good[:-1] + str((int(good[-1]) + 1) % 10)
    elif rpps == "unknown":
        rpps = rpps_with_key("9999999999")
    elif rpps in ("kine", "blocked_regulator"):
        rpps = getattr(world, rpps).rpps
    client.force_login(world.alice)
    response = _post(client, "treating_doctor_designate", world.record, {"rpps": rpps})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert TreatingDoctor.objects.active().get(record=world.record).professional == world.dr_house


def test_a_professional_without_standing_cannot_be_picked_by_id(client, world):
    """The directory is not browsable: an id picks only someone who already has a standing."""
    client.force_login(world.alice)
    for name in ("treating_doctor_designate", "professional_block", "care_authorisation_revoke"):
        response = _post(client, name, world.record, {"professional": world.stranger.pk})
        assert response.status_code == 400
        assert "Choose a professional from the list." in response.content.decode()
        assert "Sam Stranger" not in response.content.decode()
    assert not Block.objects.filter(professional=world.stranger).exists()


def test_end_the_designation(client, world):
    client.force_login(world.alice)
    assert _post(client, "treating_doctor_end", world.record).status_code == 302
    assert not TreatingDoctor.objects.active().filter(record=world.record).exists()
    assert "This record has no médecin traitant." in client.get(_url("manage", world.record)).content.decode()
    assert _post(client, "treating_doctor_end", world.record).status_code == 400
    assert _pro_reads(client, world.dr_house, world.record) == 404


# --- granting, revoking, blocking -----------------------------------------------------------

def test_grant_access_by_rpps(client, world):
    assert _pro_reads(client, world.stranger, world.record) == 404
    client.force_login(world.alice)
    assert _post(client, "care_authorisation_grant", world.record, {"rpps": world.stranger.rpps}).status_code == 302
    assert _pro_reads(client, world.stranger, world.record) == 200


def test_grant_to_a_blocked_professional_asks_to_lift_the_block(client, world):
    client.force_login(world.alice)
    response = _post(client, "care_authorisation_grant", world.record, {"rpps": world.blocked_kine.rpps})
    assert response.status_code == 400
    assert "lift the block first" in response.content.decode()


@pytest.mark.parametrize("persona", ["dr_grant", "kine"])  # granted by Alice; declared by the physiotherapist
def test_revoke_a_care_authorisation(client, world, persona):
    professional = getattr(world, persona)
    assert _pro_reads(client, professional, world.record) == 200
    client.force_login(world.alice)
    response = _post(client, "care_authorisation_revoke", world.record, {"professional": professional.pk})
    assert response.status_code == 302
    assert _pro_reads(client, professional, world.record) == 404
    assert not CareAuthorisation.objects.active().filter(record=world.record, professional=professional).exists()


def test_revoke_leaves_an_emergency_opening_alone_and_says_so(client, world):
    client.force_login(world.alice)
    response = _post(client, "care_authorisation_revoke", world.record, {"professional": world.urgentist.pk})
    assert response.status_code == 400
    assert "no care authorisation to revoke" in response.content.decode()


def test_a_blocked_professional_gets_404_even_with_break_glass(client, world):
    assert _pro_reads(client, world.urgentist, world.record) == 200
    client.force_login(world.alice)
    assert _post(client, "professional_block", world.record, {"professional": world.urgentist.pk}).status_code == 302
    assert _pro_reads(client, world.urgentist, world.record) == 404
    record = Record.objects.get(pk=world.record.pk)
    with pytest.raises(services.AccessRefused) as refused:
        services.break_glass_open(
            actor=Actor(world.urgentist.user), record=record, family_name="Martin", given_names="Alice",
            birth_date=record.birth_date, justification="Cardiac arrest", emergency=True,
        )
    assert refused.value.decision.rule == "blocked_professional"


def test_block_by_rpps(client, world):
    client.force_login(world.alice)
    assert _post(client, "professional_block", world.record, {"rpps": world.stranger.rpps}).status_code == 302
    assert Block.objects.active().filter(record=world.record, professional=world.stranger).exists()
    assert "Sam Stranger" in client.get(_url("manage", world.record)).content.decode()


@pytest.mark.parametrize("persona", ["blocked_kine", "blocked_regulator"])
def test_unblock_restores_access(client, world, persona):
    professional = getattr(world, persona)
    assert _pro_reads(client, professional, world.record) == 404
    client.force_login(world.alice)
    response = _post(client, "professional_unblock", world.record, {"professional": professional.pk})
    assert response.status_code == 302
    # The physiotherapist's care authorisation is back in force; the regulator reads as SAMU.
    assert _pro_reads(client, professional, world.record) == 200


def test_unblocking_someone_not_blocked_is_a_clear_error(client, world):
    client.force_login(world.alice)
    response = _post(client, "professional_unblock", world.record, {"professional": world.dr_grant.pk})
    assert response.status_code == 400
    assert "This professional is not blocked." in response.content.decode()


# --- counter deposit rights -----------------------------------------------------------------

def real_pdf(label: str) -> bytes:
    """A PDF a real reader opens (the deposit refuses files that only start like one)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    writer.add_metadata({"/Title": label})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _deposit(world, record, label="scan"):
    return services.document_deposit(
        actor=Actor(world.agent.user), record=Record.objects.get(pk=record.pk), content=real_pdf(label),
        doc_type="certificate", title="Scanned paper", act_date=record.created_at.date(),
    )


def test_withdraw_a_counter_deposit_right(client, world):
    _deposit(world, world.record, "before")  # the agent can deposit
    right = DepositRight.objects.get(record=world.record, agent=world.agent)
    client.force_login(world.alice)
    response = _post(client, "deposit_right_withdraw", world.record, {"deposit_right": right.pk})
    assert response.status_code == 302
    with pytest.raises(services.AccessRefused) as refused:
        _deposit(world, world.record, "after")
    assert refused.value.decision.rule == "deposit_right_withdrawn"
    page = client.get(_url("manage", world.record)).content.decode()
    assert "No counter agent can add papers to this record." in page


def test_a_deposit_right_on_another_record_cannot_be_withdrawn_from_here(client, world):
    other = DepositRight.objects.create(record=world.leo_record, agent=world.other_agent)
    client.force_login(world.alice)
    response = _post(client, "deposit_right_withdraw", world.record, {"deposit_right": other.pk})
    assert response.status_code == 400
    assert DepositRight.objects.active().filter(pk=other.pk).exists()


# --- emergency access --------------------------------------------------------------------------

def test_the_emergency_choices_are_explained(client, world):
    client.force_login(world.alice)
    page = client.get(_url("manage", world.record)).content.decode()
    assert "a doctor or nurse who does not know you may open this" in page
    assert "They do not see the documents you hid." in page
    assert "If you refuse: the SAMU regulators cannot read this record." in page


def test_break_glass_off_refuses_emergency_access(client, world):
    client.force_login(world.alice)
    response = _post(client, "emergency_access", world.record, {"break_glass": "no", "samu": "yes"})
    assert response.status_code == 302
    record = Record.objects.get(pk=world.record.pk)
    assert record.break_glass_allowed is False and record.samu_allowed is True
    with pytest.raises(services.AccessRefused) as refused:
        services.break_glass_open(
            actor=Actor(world.stranger.user), record=record, family_name="Martin", given_names="Alice",
            birth_date=record.birth_date, justification="Unconscious", emergency=True,
        )
    assert refused.value.decision.rule == "break_glass_opted_out"
    # The opening in progress stops at once; the SAMU regulator still reads.
    assert _pro_reads(client, world.urgentist, world.record) == 404
    assert _pro_reads(client, world.regulator, world.record) == 200
    client.force_login(world.alice)
    assert "this opening no longer gives access" in client.get(_url("manage", world.record)).content.decode()


def test_samu_off_refuses_the_regulator(client, world):
    assert _pro_reads(client, world.regulator, world.record) == 200
    client.force_login(world.alice)
    assert _post(client, "emergency_access", world.record, {"break_glass": "yes", "samu": "no"}).status_code == 302
    assert _pro_reads(client, world.regulator, world.record) == 404
    assert AuditEntry.objects.filter(actor=world.regulator.user, allowed=False, rule="samu_opted_out").exists()
    assert _pro_reads(client, world.urgentist, world.record) == 200


def test_an_incomplete_emergency_form_changes_nothing(client, world):
    client.force_login(world.alice)
    assert _post(client, "emergency_access", world.record, {"break_glass": "no"}).status_code == 400
    record = Record.objects.get(pk=world.record.pk)
    assert record.break_glass_allowed and record.samu_allowed


# --- notifications ------------------------------------------------------------------------------

def test_notification_choices_are_stored(client, world):
    client.force_login(world.alice)
    page = client.get(_url("manage", world.record)).content.decode()
    assert "Emergency and SAMU accesses are always notified" in page
    assert "+33612345678" in page and "no e-mail address" in page
    response = _post(client, "notifications", world.record, {"by_email": "on", "every_access": "on"})
    assert response.status_code == 302
    record = Record.objects.get(pk=world.record.pk)
    assert (record.notify_by_email, record.notify_by_sms, record.notify_every_access) == (True, False, True)
    _post(client, "notifications", world.record, {"by_sms": "on"})
    record = Record.objects.get(pk=world.record.pk)
    assert (record.notify_by_email, record.notify_by_sms, record.notify_every_access) == (False, True, False)


# --- closing ----------------------------------------------------------------------------------

def test_the_close_page_explains_retention_and_the_copy(client, world):
    client.force_login(world.alice)
    page = client.get(_url("close", world.record)).content.decode()
    assert "kept, locked, for 10 years after closing" in page
    assert "download the whole record first" in page
    assert 'name="confirm"' in page


def test_closing_needs_the_confirmation(client, world):
    client.force_login(world.alice)
    response = _post(client, "close", world.record)
    assert response.status_code == 400
    assert "Tick the box to confirm" in response.content.decode()
    assert Record.objects.get(pk=world.record.pk).is_open


def test_close_the_record(client, world):
    client.force_login(world.alice)
    response = _post(client, "close", world.record, {"confirm": "on"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The record is closed" in page and "consultation" not in page
    record = Record.objects.get(pk=world.record.pk)
    assert record.state == Record.State.CLOSED and record.closed_at is not None
    assert f"until {record.closed_at.year + 10}" in page or str(record.closed_at.year + 10) in page
    for professional in (world.dr_house, world.dr_grant, world.urgentist, world.regulator):
        assert _pro_reads(client, professional, world.record) == 404
    client.force_login(world.alice)
    assert client.get(reverse("portal_patient:record", args=[world.record.pk])).status_code == 404
    assert client.get(_url("manage", world.record)).status_code == 404
    assert _post(client, "close", world.record, {"confirm": "on"}).status_code == 404


def test_a_representative_may_close_a_childs_record_and_it_is_audited(client, world):
    client.force_login(world.mother)
    assert _post(client, "close", world.leo_record, {"confirm": "on"}).status_code == 200
    assert not Record.objects.get(pk=world.leo_record.pk).is_open
    assert AuditEntry.objects.filter(record_id_ref=world.leo_record.pk, action="close_record",
                                     mode="representative", allowed=True).exists()
