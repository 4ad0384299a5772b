"""The permission grid: every rule of DOMAIN.md §4, each with allowed and refused cases,
asked of the one policy. The most important test in the project."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dmp.models import CareAuthorisation, DepositRight, Document, DocumentType, Organisation, Record, User
from dmp.policy import Action, Actor, decide, document_scope, who_may_see
from tests.personas import World, user_of

A = Action
T = DocumentType
ALLOW, DENY = True, False


def close_records(w: World) -> None:
    now = timezone.now()
    Record.objects.update(state=Record.State.CLOSED, closed_at=now, closure_reason="request")


def opt_out_break_glass(w: World) -> None:
    Record.objects.filter(pk=w.record.pk).update(break_glass_allowed=False)


def opt_out_samu(w: World) -> None:
    Record.objects.filter(pk=w.record.pk).update(samu_allowed=False)


def withdraw_deposit(w: World) -> None:
    DepositRight.objects.filter(record=w.record).update(ended_at=timezone.now())


def share_with_a_facility(w: World) -> None:
    """The physiotherapist's declared care is shared with his hospital's care team, which the
    stranger (a GP) and the blocked physiotherapist belong to; the urgentist works elsewhere."""
    team = Organisation.objects.create(name="CH Lille", kind=Organisation.Kind.FACILITY)
    other = Organisation.objects.create(name="Clinique du Parc", kind=Organisation.Kind.FACILITY)
    CareAuthorisation.objects.filter(record=w.record, professional=w.kine).update(facility=team)
    for pro, facility in ((w.kine, team), (w.stranger, team), (w.blocked_kine, team), (w.late_urgentist, other)):
        pro.facility = facility
        pro.save(update_fields=["facility"])


STATES = {
    "closed": close_records,
    "break_glass_opted_out": opt_out_break_glass,
    "samu_opted_out": opt_out_samu,
    "deposit_withdrawn": withdraw_deposit,
    "shared_with_facility": share_with_a_facility,
}

# (persona, action, object, doc_type, state, expected, rule)
# object: "record", "leo_record", a document key of World.docs, or None.
GRID = [
    # Patient: the whole record, hidden included, except results not yet announced.
    ("alice", A.VIEW_RECORD, "record", None, None, ALLOW, "holder"),
    ("alice", A.VIEW_DOCUMENT, "hidden", None, None, ALLOW, "holder"),
    ("alice", A.VIEW_DOCUMENT, "archived", None, None, ALLOW, "holder"),
    ("alice", A.VIEW_DOCUMENT, "released", None, None, ALLOW, "holder"),
    ("alice", A.VIEW_DOCUMENT, "withheld", None, None, DENY, "document_not_visible"),
    ("alice", A.VIEW_SYNTHESIS, "record", None, None, ALLOW, "holder"),
    ("alice", A.VIEW_ACCESS_HISTORY, "record", None, None, ALLOW, "holder"),
    ("alice", A.ADD_DOCUMENT, "record", T.PATIENT_DOCUMENT, None, ALLOW, "holder"),
    ("alice", A.ADD_DOCUMENT, "record", T.ADVANCE_DIRECTIVES, None, ALLOW, "holder"),
    ("alice", A.ADD_DOCUMENT, "record", T.CONSULTATION_REPORT, None, DENY, "patient_adds_to_personal_space"),
    ("alice", A.HIDE_DOCUMENT, "consultation", None, None, ALLOW, "holder"),
    ("alice", A.ARCHIVE_DOCUMENT, "consultation", None, None, ALLOW, "holder"),
    ("alice", A.HIDE_DOCUMENT, "withheld", None, None, DENY, "document_not_visible"),
    ("alice", A.MANAGE_ACCESS, "record", None, None, ALLOW, "holder"),
    ("alice", A.BLOCK_PROFESSIONAL, "record", None, None, ALLOW, "holder"),
    ("alice", A.EXPORT_RECORD, "record", None, None, ALLOW, "holder"),
    ("alice", A.CLOSE_RECORD, "record", None, None, ALLOW, "holder"),
    ("alice", A.EDIT_SYNTHESIS, "record", None, None, DENY, "treating_doctor_only"),
    ("alice", A.REPLACE_DOCUMENT, "consultation", None, None, DENY, "author_only"),
    ("alice", A.VIEW_RECORD, "leo_record", None, None, DENY, "no_relation"),
    ("alice", A.VIEW_RECORD, "record", None, "closed", DENY, "record_closed"),
    ("alice", A.VIEW_DOCUMENT, "own", None, "closed", DENY, "record_closed"),
    # Legal representative: acts as the patient, minus what is hidden from representatives.
    ("mother", A.VIEW_RECORD, "leo_record", None, None, ALLOW, "legal_representative"),
    ("mother", A.VIEW_DOCUMENT, "leo_visit", None, None, ALLOW, "legal_representative"),
    ("mother", A.VIEW_DOCUMENT, "leo_confidential", None, None, DENY, "document_not_visible"),
    ("mother", A.HIDE_DOCUMENT, "leo_confidential", None, None, DENY, "document_not_visible"),
    ("mother", A.VIEW_DOCUMENT, "leo_withheld", None, None, DENY, "document_not_visible"),
    ("mother", A.MANAGE_ACCESS, "leo_record", None, None, ALLOW, "legal_representative"),
    ("mother", A.CLOSE_RECORD, "leo_record", None, None, ALLOW, "legal_representative"),
    ("mother", A.VIEW_RECORD, "record", None, None, DENY, "no_relation"),
    ("mother", A.VIEW_RECORD, "leo_record", None, "closed", DENY, "record_closed"),
    ("leo", A.VIEW_DOCUMENT, "leo_confidential", None, None, ALLOW, "holder"),
    # Médecin traitant: every document, hidden included; history, blocks, synthesis.
    ("dr_house", A.VIEW_RECORD, "record", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.VIEW_DOCUMENT, "hidden", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.VIEW_DOCUMENT, "withheld", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.VIEW_DOCUMENT, "leo_confidential", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.VIEW_ACCESS_HISTORY, "record", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.BLOCK_PROFESSIONAL, "record", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.EDIT_SYNTHESIS, "record", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.VIEW_REIMBURSEMENTS, "record", None, None, ALLOW, "treating_doctor"),
    ("dr_house", A.CLOSE_RECORD, "record", None, None, DENY, "holder_only"),
    ("dr_house", A.HIDE_DOCUMENT, "consultation", None, None, DENY, "holder_only"),
    ("dr_house", A.REPLACE_DOCUMENT, "consultation", None, None, DENY, "author_only"),
    ("dr_house", A.VIEW_RECORD, "record", None, "closed", DENY, "record_closed"),
    # Professional with a care authorisation, within the matrix.
    ("dr_grant", A.VIEW_RECORD, "record", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.VIEW_DOCUMENT, "consultation", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.VIEW_DOCUMENT, "hidden", None, None, ALLOW, "care_authorisation_granted"),  # author
    ("dr_grant", A.VIEW_DOCUMENT, "archived", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.VIEW_SYNTHESIS, "record", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.ADD_DOCUMENT, "record", T.CONSULTATION_REPORT, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.ADD_DOCUMENT, "record", T.PATIENT_DOCUMENT, None, DENY, "personal_space_is_the_patients"),
    ("dr_grant", A.REPLACE_DOCUMENT, "consultation", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.REPLACE_DOCUMENT, "archived", None, None, DENY, "archived_document_is_frozen"),
    ("dr_grant", A.RELEASE_DOCUMENT, "withheld", None, None, ALLOW, "care_authorisation_granted"),
    ("dr_grant", A.EDIT_SYNTHESIS, "record", None, None, DENY, "treating_doctor_only"),
    ("dr_grant", A.VIEW_ACCESS_HISTORY, "record", None, None, DENY, "holder_or_treating_doctor_only"),
    ("dr_grant", A.BLOCK_PROFESSIONAL, "record", None, None, DENY, "holder_or_treating_doctor_only"),
    ("dr_grant", A.MANAGE_ACCESS, "record", None, None, DENY, "holder_only"),
    ("dr_grant", A.VIEW_RECORD, "leo_record", None, None, DENY, "no_care_authorisation"),
    ("kim_kine", A.VIEW_RECORD, "record", None, None, ALLOW, "care_authorisation_declared"),
    ("kine", A.VIEW_DOCUMENT, "imaging", None, None, ALLOW, "care_authorisation_declared"),
    ("kine", A.VIEW_DOCUMENT, "consultation", None, None, DENY, "document_not_visible"),  # matrix
    ("kine", A.VIEW_DOCUMENT, "hidden_imaging", None, None, DENY, "document_not_visible"),  # hidden
    ("kine", A.VIEW_SYNTHESIS, "record", None, None, ALLOW, "care_authorisation_declared"),
    ("kine", A.VIEW_REIMBURSEMENTS, "record", None, None, DENY, "matrix_refuses"),
    ("kine", A.ADD_DOCUMENT, "record", T.AUXILIARY_CARE_REPORT, None, ALLOW, "care_authorisation_declared"),
    ("kine", A.REPLACE_DOCUMENT, "imaging", None, None, DENY, "author_only"),
    ("kine", A.HIDE_DOCUMENT, "imaging", None, None, DENY, "holder_only"),
    # Blocked professional: nothing, not even in an emergency.
    ("blocked_kine", A.VIEW_RECORD, "record", None, None, DENY, "blocked_professional"),
    ("blocked_kine", A.VIEW_DOCUMENT, "imaging", None, None, DENY, "blocked_professional"),
    ("blocked_kine", A.BREAK_GLASS, "record", None, None, DENY, "blocked_professional"),
    ("blocked_kine", A.DECLARE_CARE, "record", None, None, DENY, "blocked_professional"),
    # A professional with no relation: refused, but may declare care or break the glass.
    ("stranger", A.VIEW_RECORD, "record", None, None, DENY, "no_care_authorisation"),
    ("stranger", A.VIEW_DOCUMENT, "consultation", None, None, DENY, "no_care_authorisation"),
    ("stranger", A.ADD_DOCUMENT, "record", T.CONSULTATION_REPORT, None, DENY, "no_care_authorisation"),
    ("stranger", A.DECLARE_CARE, "record", None, None, ALLOW, "declare_care"),
    ("stranger", A.BREAK_GLASS, "record", None, None, ALLOW, "break_glass"),
    ("stranger", A.BREAK_GLASS, "record", None, "break_glass_opted_out", DENY, "break_glass_opted_out"),
    ("stranger", A.BREAK_GLASS, "record", None, "closed", DENY, "record_closed"),
    ("stranger", A.DEPOSIT_DOCUMENT, "record", None, None, DENY, "counter_agent_only"),
    # A facility's care team shares a member's care authorisation, within each member's matrix.
    ("stranger", A.VIEW_RECORD, "record", None, "shared_with_facility", ALLOW, "facility_care_team"),
    ("stranger", A.VIEW_DOCUMENT, "consultation", None, "shared_with_facility", ALLOW, "facility_care_team"),
    ("stranger", A.VIEW_DOCUMENT, "hidden", None, "shared_with_facility", DENY, "document_not_visible"),
    ("stranger", A.ADD_DOCUMENT, "record", T.LAB_REPORT, "shared_with_facility", ALLOW, "facility_care_team"),
    ("stranger", A.EDIT_SYNTHESIS, "record", None, "shared_with_facility", DENY, "treating_doctor_only"),
    ("stranger", A.VIEW_RECORD, "leo_record", None, "shared_with_facility", DENY, "no_care_authorisation"),
    ("kine", A.VIEW_RECORD, "record", None, "shared_with_facility", ALLOW, "care_authorisation_declared"),
    ("blocked_kine", A.VIEW_RECORD, "record", None, "shared_with_facility", DENY, "blocked_professional"),
    ("late_urgentist", A.VIEW_RECORD, "record", None, "shared_with_facility", DENY, "break_glass_expired"),
    # Looking a record up: any professional (logged on the record), nobody else; closed records are not found.
    ("stranger", A.FIND_RECORD, "record", None, None, ALLOW, "professional_search"),
    ("blocked_kine", A.FIND_RECORD, "record", None, None, ALLOW, "professional_search"),
    ("stranger", A.FIND_RECORD, "record", None, "closed", DENY, "record_closed"),
    ("agent", A.FIND_RECORD, "record", None, None, DENY, "professionals_only"),
    ("alice", A.FIND_RECORD, "record", None, None, DENY, "professionals_only"),
    # Break-glass: limited in time, read-only, never the hidden documents.
    ("urgentist", A.VIEW_RECORD, "record", None, None, ALLOW, "break_glass"),
    ("urgentist", A.VIEW_DOCUMENT, "consultation", None, None, ALLOW, "break_glass"),
    ("urgentist", A.VIEW_DOCUMENT, "hidden", None, None, DENY, "document_not_visible"),
    ("urgentist", A.ADD_DOCUMENT, "record", T.EMERGENCY_REPORT, None, DENY, "emergency_access_is_read_only"),
    ("urgentist", A.VIEW_ACCESS_HISTORY, "record", None, None, DENY, "holder_or_treating_doctor_only"),
    ("urgentist", A.VIEW_RECORD, "record", None, "break_glass_opted_out", DENY, "break_glass_opted_out"),
    ("late_urgentist", A.VIEW_RECORD, "record", None, None, DENY, "break_glass_expired"),
    ("late_urgentist", A.VIEW_DOCUMENT, "consultation", None, None, DENY, "break_glass_expired"),
    # SAMU regulator: reads without justification, unless the patient opted out; never hidden.
    ("regulator", A.VIEW_RECORD, "record", None, None, ALLOW, "samu_regulator"),
    ("regulator", A.VIEW_DOCUMENT, "consultation", None, None, ALLOW, "samu_regulator"),
    ("regulator", A.VIEW_DOCUMENT, "hidden", None, None, DENY, "document_not_visible"),
    ("regulator", A.ADD_DOCUMENT, "record", T.EMERGENCY_REPORT, None, DENY, "emergency_access_is_read_only"),
    ("regulator", A.VIEW_RECORD, "record", None, "samu_opted_out", DENY, "samu_opted_out"),
    ("regulator", A.VIEW_RECORD, "record", None, "closed", DENY, "record_closed"),
    ("blocked_regulator", A.VIEW_RECORD, "record", None, None, DENY, "blocked_professional"),
    # Counter agent: creates and deposits (write-only), reads nothing medical.
    ("agent", A.CREATE_RECORD, None, None, None, ALLOW, "counter_agent_creates"),
    ("agent", A.DEPOSIT_DOCUMENT, "record", None, None, ALLOW, "deposit_right"),
    ("agent", A.VIEW_ADMIN_STATUS, "record", None, None, ALLOW, "counter_agent_onboarded"),
    ("agent", A.VIEW_RECORD, "record", None, None, DENY, "counter_agent_no_medical_access"),
    ("agent", A.VIEW_DOCUMENT, "consultation", None, None, DENY, "counter_agent_no_medical_access"),
    ("agent", A.VIEW_SYNTHESIS, "record", None, None, DENY, "counter_agent_no_medical_access"),
    ("agent", A.VIEW_ACCESS_HISTORY, "record", None, None, DENY, "counter_agent_no_medical_access"),
    ("agent", A.DEPOSIT_DOCUMENT, "record", None, "deposit_withdrawn", DENY, "deposit_right_withdrawn"),
    ("agent", A.DEPOSIT_DOCUMENT, "record", None, "closed", DENY, "record_closed"),
    ("other_agent", A.DEPOSIT_DOCUMENT, "record", None, None, DENY, "no_deposit_right"),
    ("other_agent", A.VIEW_ADMIN_STATUS, "record", None, None, DENY, "not_onboarded_here"),
    ("dr_grant", A.CREATE_RECORD, None, None, None, ALLOW, "professional_creates"),
    # Counter account recovery: any counter, open records only, nobody else; the onboarding
    # organisation on its agent's identity check, any other only with the person present.
    ("agent", A.RESET_CREDENTIALS, "record", None, None, ALLOW, "counter_reset_onboarding_organisation"),
    ("agent", A.RESET_CREDENTIALS, "record", None, "deposit_withdrawn", ALLOW,
     "counter_reset_onboarding_organisation"),
    ("other_agent", A.RESET_CREDENTIALS, "record", None, None, ALLOW, "counter_reset_person_present"),
    ("other_agent", A.RESET_CREDENTIALS, "record", None, "deposit_withdrawn", ALLOW, "counter_reset_person_present"),
    ("agent", A.RESET_CREDENTIALS, "record", None, "closed", DENY, "record_closed"),
    ("alice", A.RESET_CREDENTIALS, "record", None, None, DENY, "counter_agent_only"),
    ("mother", A.RESET_CREDENTIALS, "leo_record", None, None, DENY, "counter_agent_only"),
    ("dr_house", A.RESET_CREDENTIALS, "record", None, None, DENY, "counter_agent_only"),
    ("admin", A.RESET_CREDENTIALS, "record", None, None, DENY, "counter_agent_only"),
    ("nobody", A.RESET_CREDENTIALS, "record", None, None, DENY, "counter_agent_only"),
    (None, A.RESET_CREDENTIALS, "record", None, None, DENY, "counter_agent_only"),
    # Administrator: no medical content anywhere.
    ("admin", A.VIEW_RECORD, "record", None, None, DENY, "administrator_no_medical_access"),
    ("admin", A.VIEW_DOCUMENT, "consultation", None, None, DENY, "administrator_no_medical_access"),
    ("admin", A.VIEW_SYNTHESIS, "record", None, None, DENY, "administrator_no_medical_access"),
    ("admin", A.CREATE_RECORD, None, None, None, DENY, "administrator_no_medical_access"),
    # Deny by default.
    ("nobody", A.VIEW_RECORD, "record", None, None, DENY, "no_relation"),
    ("nobody", A.CREATE_RECORD, None, None, None, DENY, "no_rule"),
    ("nobody", A.VIEW_DOCUMENT, "own", None, None, DENY, "no_relation"),
    (None, A.VIEW_RECORD, "record", None, None, DENY, "not_authenticated"),
    ("dr_grant", "fly_to_the_moon", "record", None, None, DENY, "no_rule"),
]

ALIASES = {"kim_kine": "kine"}


def _target(w: World, key: str | None):
    if key is None:
        return None
    if key in ("record", "leo_record"):
        return Record.objects.get(pk=getattr(w, key).pk)
    return Document.objects.select_related("record").get(pk=w.docs[key].pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "action", "obj", "doc_type", "state", "expected", "rule"),
    GRID,
    ids=[f"{p}-{a}-{o}-{s or 'open'}" for p, a, o, _t, s, _e, _r in GRID],
)
def test_policy_grid(world, persona, action, obj, doc_type, state, expected, rule):
    if state:
        STATES[state](world)
    user = user_of(world, ALIASES.get(persona, persona)) if persona else None
    decision = decide(Actor(user), action, _target(world, obj), doc_type=doc_type)
    assert (decision.allowed, decision.rule) == (expected, rule), decision.reason


def test_every_rule_has_an_allowed_and_a_refused_case():
    """Each rule of §4 is exercised both ways: within each family of personas, someone allowed
    and someone refused (a blocked professional and an administrator are only ever refused;
    their allowed counterparts are the same professions unblocked, and the patient)."""
    by_rule_family = {
        "holder": ("alice",), "representative": ("mother",), "treating_doctor": ("dr_house",),
        "care": ("dr_grant", "kine"), "blocked": ("blocked_kine",), "break_glass": ("urgentist", "late_urgentist"),
        "samu": ("regulator", "blocked_regulator"), "counter": ("agent", "other_agent"), "admin": ("admin",),
    }
    for family, personas in by_rule_family.items():
        outcomes = {e for p, *_, e, _r in GRID if p in personas}
        if family not in ("blocked", "admin"):
            assert outcomes == {ALLOW, DENY}, family
    states = {s for *_, s, _e, _r in GRID if s}
    assert states == set(STATES)


PERSONAS = ["alice", "mother", "leo", "dr_house", "dr_grant", "kine", "blocked_kine", "stranger", "urgentist",
            "late_urgentist", "regulator", "blocked_regulator", "agent", "admin", "nobody"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_lists_show_exactly_what_a_read_allows(world, persona):
    """The queryset filter and the single-document answer are the same rule: a list, a count
    or a search can never show a document a read would refuse, nor hide one it would allow."""
    actor = Actor(user_of(world, persona))
    for record in (world.record, world.leo_record):
        listed = set(record.documents.filter(document_scope(actor, record).q()).values_list("pk", flat=True))
        readable = {d.pk for d in record.documents.all() if decide(actor, A.VIEW_DOCUMENT, d).allowed}
        assert listed == readable


@pytest.mark.django_db
def test_who_may_see_explains_each_viewer_with_its_rule(world):
    hidden = world.docs["hidden"]
    rows = {(v.role, v.label.split(" (")[0]): v.decision for v in who_may_see(hidden)}
    assert rows[("holder", "Alice Martin")].allowed
    assert rows[("professional", "Gregory House")].rule == "treating_doctor"
    assert rows[("professional", "Anna Grant")].allowed  # the author
    assert rows[("professional", "Kim Kine")].rule == "document_not_visible"
    assert rows[("professional", "Bob Kine")].rule == "blocked_professional"
    assert rows[("professional", "Ursula Urgences")].rule == "document_not_visible"
    assert rows[("break_glass", "Any health professional, in an emergency")].rule == "document_not_visible"
    assert rows[("samu", "The SAMU regulator")].rule == "document_not_visible"

    consultation = world.docs["consultation"]
    rows = {v.role: v.decision for v in who_may_see(consultation) if v.role in ("break_glass", "samu")}
    assert rows["break_glass"].allowed and rows["samu"].allowed


@pytest.mark.django_db
def test_who_may_see_agrees_with_decide_for_every_person(world):
    for key, doc in world.docs.items():
        for viewer in who_may_see(doc):
            if viewer.user_id is None:
                continue
            again = decide(Actor(User.objects.get(pk=viewer.user_id)), A.VIEW_DOCUMENT, doc)
            assert again == viewer.decision, key


@pytest.mark.django_db
def test_a_question_about_another_moment_ignores_the_cached_answer(world):
    from datetime import timedelta

    actor = Actor(world.late_urgentist.user)
    assert decide(actor, A.VIEW_RECORD, world.record).rule == "break_glass_expired"
    three_hours_ago = timezone.now() - timedelta(hours=3)
    assert decide(actor, A.VIEW_RECORD, world.record, at=three_hours_ago).rule == "break_glass"
    assert decide(actor, A.VIEW_RECORD, world.record).rule == "break_glass_expired"
