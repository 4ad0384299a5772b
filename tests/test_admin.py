"""Django admin, as a hostile operator would use it: delegated per organisation, audited, and
unable to take over an account (password, phone, e-mail, authenticator) or to create a
professional alone; it shows no medical content and no emergency-access metadata."""

from __future__ import annotations

import re

import pytest
from allauth.mfa.models import Authenticator
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import NoReverseMatch, reverse

from dmp.access_log import authorise_read
from dmp.audit import log_access, verify_chain
from dmp.models import (
    AdminRequest,
    AuditEntry,
    AuditMode,
    CareAuthorisation,
    Document,
    EmergencyContact,
    MatrixEntry,
    Notification,
    Organisation,
    PersonalProfile,
    Professional,
    Record,
    ReimbursementLine,
    Synthesis,
    SynthesisProblem,
    User,
    Vaccination,
)
from dmp.models.people import rpps_with_key
from dmp.policy import Action, Actor, Decision, decide
from dmp.services import care_authorisation_declare
from dmp.services.administration import admin_scope_grant
from tests.personas import PASSWORD, enrol_totp, make_professional, make_user


class Operators:
    def __init__(self, world):
        self.hospital = Organisation.objects.create(name="CH Lille", kind=Organisation.Kind.FACILITY,
                                                    finess="590000038")
        self.clinic = Organisation.objects.create(name="Clinique Roubaix", kind=Organisation.Kind.FACILITY)
        self.cada = world.agent.organisation
        self.cpam = world.other_agent.organisation
        self.clinic_doctor = make_professional("cleo_clinic", facility=self.clinic)
        self.hospital_doctor = make_professional("hugo_hopital", facility=self.hospital)
        # A and B share a scope (the hospital, the CADA, the unaffiliated professionals); C has another.
        self.a = self._operator("olga_operator", [self.hospital, self.cada], ["unaffiliated"])
        self.b = self._operator("oscar_operator", [self.hospital, self.cada], ["unaffiliated"])
        self.c = self._operator("otto_other", [self.clinic, self.cpam], [])

    @staticmethod
    def _operator(username, organisations, roles):
        user = enrol_totp(make_user(username))
        admin_scope_grant(actor=Actor(None), user=user, organisations=organisations, roles=roles)
        return User.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.fixture
def ops(world):
    return Operators(world)


def logged_in(user) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(user)
    return client


def admin_entries(**filters):
    return AuditEntry.objects.filter(mode=AuditMode.ADMIN, record_id_ref__isnull=True, **filters)


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


# --- nothing medical, no emergency metadata ----------------------------------------------------------


def test_medical_models_and_records_are_not_registered():
    for model in (Document, Synthesis, SynthesisProblem, PersonalProfile, EmergencyContact, Vaccination,
                  ReimbursementLine, Record, CareAuthorisation):
        assert model not in admin.site._registry
    with pytest.raises(NoReverseMatch):
        reverse("admin:dmp_record_changelist")


@pytest.mark.django_db
def test_admin_pages_work_for_an_operator_and_show_no_medical_content(world, ops):
    admin_scope_grant(actor=Actor(None), user=ops.a, roles=["matrix", "support", "organisations"])
    client = logged_in(User.objects.get(pk=ops.a.pk))
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        page = client.get(url)
        assert page.status_code == 200, url
        for doc in world.docs.values():
            assert f">{doc.title}<" not in page.content.decode()


@pytest.mark.django_db
def test_the_admin_shows_no_break_glass_or_samu_metadata_per_record(client, world, ops):
    admin_scope_grant(actor=Actor(None), user=ops.a, roles=["support"])
    for persona, mode in ((world.urgentist, AuditMode.BREAK_GLASS), (world.regulator, AuditMode.SAMU)):
        log_access(actor_user=persona.user, actor_label=Actor(persona.user).label, role="professional", ip=None,
                   action=Action.VIEW_RECORD, decision=Decision(True, "break_glass", mode), record_id=world.record.pk,
                   obj=world.record)
    emergency = Notification.objects.create(recipient=world.alice, record=world.record, event="break_glass",
                                            channel="sms", destination="+33612345678", idempotency_key="bg:1:sms")
    client = logged_in(User.objects.get(pk=ops.a.pk))
    audit_page = client.get(reverse("admin:dmp_auditentry_changelist")).content.decode()
    outbox_page = client.get(reverse("admin:dmp_notification_changelist")).content.decode()
    detail = client.get(change_url(emergency)).content.decode()
    for page in (audit_page, outbox_page, detail):
        for clue in ("break_glass", "Emergency", "samu", "SAMU", "Ursula", "Regis", "mode__exact", "event__exact"):
            assert clue not in page, clue
    assert "notice about the record" in outbox_page
    entry = AuditEntry.objects.get(mode=AuditMode.BREAK_GLASS)
    assert client.get(change_url(entry)).status_code == 404


# --- takeover by password, phone, e-mail ----------------------------------------------------------------


@pytest.mark.django_db
def test_no_operator_sets_or_sees_a_password(world, ops):
    doctor = world.dr_house.user
    hash_before = doctor.password
    for operator in (ops.a, world.admin):  # in scope, and even a (development-only) superuser
        client = logged_in(operator)
        url = reverse("admin:dmp_user_changelist") + f"{doctor.pk}/password/"
        assert client.get(url).status_code == 404
        response = client.post(url, {"password1": "attacker's password", "password2": "attacker's password"})
        assert response.status_code == 404
        page = client.get(change_url(doctor)).content.decode()
        assert hash_before not in page and not re.search(r'name="password', page)
    # The admin's own password form is the site's (re-authentication, failures counted).
    own = logged_in(ops.a).get(reverse("admin:password_change"))
    assert own.status_code == 302 and own["Location"] == reverse("account_change_password")
    response = logged_in(ops.a).post(change_url(doctor), {
        "first_name": "Greg", "last_name": "Imposter", "preferred_language": "en", "is_active": "on",
        "password": "attacker's password", "password1": "x", "password2": "x",
        "email": "attacker@example.org", "phone": "+33699999999", "is_staff": "on", "is_superuser": "on",
    })
    assert response.status_code == 302
    doctor.refresh_from_db()
    assert doctor.preferred_language == "en"  # the form was accepted...
    assert doctor.password == hash_before and doctor.check_password(PASSWORD)  # ...and nothing else moved
    assert (doctor.email, doctor.phone, doctor.is_staff, doctor.is_superuser) == ("", "", False, False)
    # Nor the names patients are told ("Dr X opened your record").
    assert (doctor.first_name, doctor.last_name) == ("Gregory", "House")
    assert admin_entries(action="admin_change", object_type="user", object_id=str(doctor.pk)).exists()


@pytest.mark.django_db
def test_no_account_is_added_or_deleted_in_admin(world, ops):
    client = logged_in(ops.a)
    assert client.get(reverse("admin:dmp_user_add")).status_code == 403
    assert client.post(reverse("admin:dmp_user_add"), {"username": "fake", "password1": "x"}).status_code == 403
    assert client.post(reverse("admin:dmp_user_delete", args=[world.dr_house.user.pk]), {"post": "yes"}
                       ).status_code == 403
    assert not User.objects.filter(username="fake").exists() and User.objects.filter(pk=world.dr_house.user.pk)


# --- takeover by authenticator: the two-person reset -------------------------------------------------


@pytest.mark.django_db
def test_no_operator_deletes_an_authenticator_alone(world, ops):
    from tests.personas import TOTP_SECRET

    authenticator = Authenticator.objects.get(user=world.dr_house.user, type=Authenticator.Type.TOTP)
    for operator in (ops.a, world.admin):
        client = logged_in(operator)
        page = client.get(change_url(authenticator)).content.decode()
        assert TOTP_SECRET not in page and authenticator.data["secret"] not in page
        assert client.get(reverse("admin:mfa_authenticator_add")).status_code == 403
        assert client.post(change_url(authenticator), {"type": "totp"}).status_code == 403
        delete = reverse("admin:mfa_authenticator_delete", args=[authenticator.pk])
        assert client.get(delete).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        client.post(reverse("admin:mfa_authenticator_changelist"),
                    {"action": "delete_selected", "_selected_action": [authenticator.pk], "post": "yes"})
    assert Authenticator.objects.filter(pk=authenticator.pk).exists()


def file_reset_request(client, user) -> AdminRequest:
    response = client.post(reverse("admin:dmp_secondfactorresetrequest_add"), {
        "target_user": user.pk, "reason": "Lost phone and recovery codes; identity card checked in person",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    return AdminRequest.objects.get(kind="reset_second_factor", target_user=user, status="pending")


def decide_requests(client, model: str, action: str, *requests):
    return client.post(reverse(f"admin:dmp_{model}_changelist"),
                       {"action": action, "_selected_action": [r.pk for r in requests]}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_a_lost_authenticator_is_reset_by_two_operators_and_its_owner_told(world, ops, sms_outbox):
    doctor = world.dr_house.user
    User.objects.filter(pk=doctor.pk).update(email="g.house@example.org", phone="+33611111111",
                                            preferred_language="fr")
    doctor_browser = logged_in(doctor)  # the doctor's own session, open somewhere
    assert doctor_browser.get(reverse("portal_pro:home")).status_code == 200

    request = file_reset_request(logged_in(ops.a), doctor)
    assert Authenticator.objects.filter(user=doctor).exists()  # a request changes nothing

    # A approves their own request: refused, written as refused, nothing removed.
    page = decide_requests(logged_in(ops.a), "secondfactorresetrequest", "approve", request).content.decode()
    assert "A second operator must approve this request" in page
    # C, another scope, does not even see it.
    page = decide_requests(logged_in(ops.c), "secondfactorresetrequest", "approve", request).content.decode()
    reset_page = reverse("admin:dmp_secondfactorresetrequest_change", args=[request.pk])
    assert logged_in(ops.c).get(reset_page).status_code == 404
    assert logged_in(ops.b).get(reset_page).status_code == 200
    request.refresh_from_db()
    assert request.status == "pending" and Authenticator.objects.filter(user=doctor).exists()
    assert admin_entries(action="admin_approve", allowed=False, actor=ops.a, rule="four_eyes_same_operator").exists()

    decide_requests(logged_in(ops.b), "secondfactorresetrequest", "approve", request)
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", ops.b)
    assert not Authenticator.objects.filter(user=doctor).exists()
    assert doctor_browser.get(reverse("portal_pro:home")).status_code == 302  # the session ended
    told = Notification.objects.filter(recipient=doctor, event="second_factor_reset")
    assert sorted(told.values_list("channel", "destination")) == [("email", "g.house@example.org"),
                                                                  ("sms", "+33611111111")]
    assert admin_entries(action="second_factor_reset", object_type="user", object_id=str(doctor.pk),
                         actor=ops.b).exists()
    assert admin_entries(action="admin_request", actor=ops.a, object_id=str(request.pk)).exists()
    assert verify_chain() is None
    # Decided once: a second approval changes nothing.
    decide_requests(logged_in(ops.b), "secondfactorresetrequest", "approve", request)
    assert told.count() == 2
    # The notice is sent, plain and without anything secret or medical.
    from django.core import mail

    from dmp.notifications import notification_send

    assert {notification_send(n.pk) for n in told} == {"sent"}
    # In the account's language (French here).
    assert "application d'authentification" in sms_outbox[-1][1] and sms_outbox[-1][0] == "+33611111111"
    assert "second facteur a été réinitialisé" in mail.outbox[-1].subject


# --- a fake professional ------------------------------------------------------------------------


NEW_RPPS = rpps_with_key("1099999999")


def file_creation_request(client, **extra):
    data = {"rpps": NEW_RPPS, "last_name": "Faux", "first_name": "Felix", "email": "f.faux@example.org",
            "profession": "gp", "specialty": "Psychiatrie", "facility": "", "username": "",
            "reason": "New GP in the area, registry extract checked"} | extra
    return client.post(reverse("admin:dmp_professionalcreationrequest_add"), data)


@pytest.mark.django_db(transaction=True)
def test_one_operator_cannot_create_a_professional(world, ops):
    client = logged_in(ops.a)
    assert client.get(reverse("admin:dmp_professional_add")).status_code == 403
    response = client.post(reverse("admin:dmp_professional_add"), {"user": ops.a.pk, "rpps": NEW_RPPS,
                                                                   "profession": "gp"})
    assert response.status_code == 403
    assert file_creation_request(client).status_code == 302
    request = AdminRequest.objects.get(kind="create_professional", rpps=NEW_RPPS)
    assert request.status == "pending"
    assert not Professional.objects.filter(rpps=NEW_RPPS).exists()
    assert not User.objects.filter(last_name="Faux").exists()
    decide_requests(client, "professionalcreationrequest", "approve", request)
    request.refresh_from_db()
    assert request.status == "pending" and not Professional.objects.filter(rpps=NEW_RPPS).exists()
    # A's request for the same RPPS again is turned down with a clear error, not duplicated.
    page = file_creation_request(client).content.decode()
    assert "already waiting" in page and AdminRequest.objects.filter(rpps=NEW_RPPS).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("extra, error", [
    ({"rpps": "10999999990" if rpps_with_key("1099999999") != "10999999990" else "10999999991"}, "check digit"),
    ({"rpps": "123"}, "exactly 11 digits"),
    ({"facility": "clinic"}, "Select a valid choice"),
])
def test_a_bad_creation_request_gets_a_clear_error_and_creates_nothing(world, ops, extra, error):
    if extra.get("facility") == "clinic":
        extra = {"facility": ops.clinic.pk}
    page = file_creation_request(logged_in(ops.a), **extra).content.decode()
    assert error in page
    assert not AdminRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_professional_approved_by_a_second_operator_activates_the_account_and_is_notified_at_first_access(
        world, ops, django_capture_on_commit_callbacks):
    file_creation_request(logged_in(ops.a), facility=ops.hospital.pk)
    request = AdminRequest.objects.get(rpps=NEW_RPPS)
    decide_requests(logged_in(ops.b), "professionalcreationrequest", "approve", request)
    professional = Professional.objects.get(rpps=NEW_RPPS)
    user = professional.user
    assert (professional.facility, professional.profession, user.email) == (ops.hospital, "gp", "f.faux@example.org")
    assert not user.has_usable_password() and not Authenticator.objects.filter(user=user).exists()
    assert admin_entries(action="professional_create", object_id=str(professional.pk), actor=ops.b,
                         rule="four_eyes").exists()

    # Nobody but the professional learns a password: the activation link goes to their e-mail.
    notice = Notification.objects.get(recipient=user, event="account_activation")
    link = notice.context["link"]
    path = re.sub(r"^https?://[^/]+", "", link)
    browser = Client(headers={"Accept-Language": "en"})
    assert browser.get(path).status_code == 200
    response = browser.post(path, {"new_password1": "my own long phrase", "new_password2": "my own long phrase"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("my own long phrase")
    assert browser.get(path).status_code == 404  # used once
    # An account already in use cannot be "activated" again with a forged link.
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    doctor = world.dr_house.user
    forged = reverse("account_activate", args=[urlsafe_base64_encode(force_bytes(doctor.pk)),
                                               default_token_generator.make_token(doctor)])
    assert browser.post(forged, {"new_password1": "x" * 12, "new_password2": "x" * 12}).status_code == 404
    doctor.refresh_from_db()
    assert doctor.check_password(PASSWORD)

    # Their first access to a record is told to the patient, as for anyone.
    actor = Actor(user)
    care_authorisation_declare(actor=actor, record=world.record)
    assert authorise_read(Actor(user), Action.VIEW_RECORD, world.record).allowed
    assert Notification.objects.filter(recipient=world.alice, event="first_access").exists()
    assert verify_chain() is None


@pytest.mark.django_db(transaction=True)
def test_a_counter_agent_is_created_by_two_operators_and_a_request_can_be_rejected(world, ops):
    data = {"organisation": ops.cada.pk, "username": "nadia.cada", "last_name": "Benali", "first_name": "Nadia",
            "email": "n.benali@example.org", "reason": "New social worker at the CADA, contract seen"}
    client = logged_in(ops.a)
    assert client.get(reverse("admin:dmp_counteragent_add")).status_code == 403
    page = client.post(reverse("admin:dmp_counteragentcreationrequest_add"), data | {"organisation": ops.cpam.pk})
    assert "Select a valid choice" in page.content.decode()  # not A's organisation
    assert client.post(reverse("admin:dmp_counteragentcreationrequest_add"), data).status_code == 302
    request = AdminRequest.objects.get(kind="create_counter_agent")
    assert not User.objects.filter(username="nadia.cada").exists()
    decide_requests(client, "counteragentcreationrequest", "approve", request)
    assert not User.objects.filter(username="nadia.cada").exists()
    decide_requests(logged_in(ops.b), "counteragentcreationrequest", "approve", request)
    agent = User.objects.get(username="nadia.cada").counter_agent
    assert agent.organisation == ops.cada and not agent.user.has_usable_password()
    assert Notification.objects.filter(recipient=agent.user, event="account_activation").exists()
    assert admin_entries(action="counter_agent_create", object_id=str(agent.pk), actor=ops.b).exists()
    # The activation link can be sent again by one operator: it goes to the account's own address.
    decide_requests(logged_in(ops.a), "user", "send_activation_link", agent.user)
    assert Notification.objects.filter(recipient=agent.user, event="account_activation").count() == 2

    # A rejected request creates nothing, and is decided for good.
    client.post(reverse("admin:dmp_counteragentcreationrequest_add"), data | {"username": "other.cada"})
    second = AdminRequest.objects.get(username="other.cada")
    decide_requests(logged_in(ops.b), "counteragentcreationrequest", "reject", second)
    decide_requests(logged_in(ops.a), "counteragentcreationrequest", "approve", second)
    second.refresh_from_db()
    assert second.status == "rejected" and not User.objects.filter(username="other.cada").exists()
    assert admin_entries(action="admin_reject", object_id=str(second.pk), actor=ops.b).exists()
    assert verify_chain() is None


# --- the scope ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_sees_and_changes_only_their_scope(world, ops):
    client = logged_in(ops.a)
    listed = client.get(reverse("admin:dmp_professional_changelist")).content.decode()
    assert "Hopital" in listed and "House" in listed and "Clinic" not in listed
    organisations = client.get(reverse("admin:dmp_organisation_changelist")).content.decode()
    assert "CH Lille" in organisations
    assert "Clinique Roubaix" not in organisations and "CPAM Roubaix" not in organisations
    agents = client.get(reverse("admin:dmp_counteragent_changelist")).content.decode()
    assert "Sonia" in agents and "Paul" not in agents
    accounts = client.get(reverse("admin:dmp_user_changelist")).content.decode()
    assert "gregory_house" in accounts and "cleo_clinic" not in accounts
    assert "alice_martin" not in accounts and "oscar_operator" not in accounts  # patients, operators: nobody's

    for outside in (ops.clinic, ops.cpam, ops.clinic_doctor, world.other_agent, ops.clinic_doctor.user, world.alice,
                    ops.b):
        assert client.get(change_url(outside)).status_code == 404, outside
    response = client.post(change_url(ops.clinic), {"name": "Taken over", "kind": "facility"})
    assert response.status_code == 404
    ops.clinic.refresh_from_db()
    assert ops.clinic.name == "Clinique Roubaix"

    # Moving a professional of the scope into a facility outside it is refused.
    page = client.post(change_url(ops.hospital_doctor), {"specialty": "", "facility": ops.clinic.pk}).content.decode()
    assert "Select a valid choice" in page
    ops.hospital_doctor.refresh_from_db()
    assert ops.hospital_doctor.facility == ops.hospital
    # C's scope is the clinic: C sees none of A's.
    other = logged_in(ops.c)
    assert other.get(change_url(ops.hospital_doctor)).status_code == 404
    assert other.get(change_url(world.dr_house)).status_code == 404  # unaffiliated: not C's


@pytest.mark.django_db
def test_registry_identity_of_a_professional_is_read_only(world, ops):
    client = logged_in(ops.a)
    response = client.post(change_url(world.kine), {"specialty": "Kinésithérapie du sport", "facility": "",
                                                    "rpps": rpps_with_key("1088888888"), "profession": "gp",
                                                    "is_samu_regulator": "on"})
    assert response.status_code == 302
    kine = Professional.objects.get(pk=world.kine.pk)
    assert (kine.rpps, kine.profession, kine.is_samu_regulator) == (world.kine.rpps, "physiotherapist", False)
    assert kine.specialty == "Kinésithérapie du sport"
    assert admin_entries(action="admin_change", object_type="professional", rule="fields:specialty").exists()


# --- every change in the audit log --------------------------------------------------------------------


@pytest.mark.django_db
def test_each_admin_change_is_in_the_audit_log_and_the_chain_still_verifies(world, ops):
    before = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0  # a sequence: not 1, 2…
    client = logged_in(ops.a)
    assert client.post(change_url(ops.hospital), {"name": "CH Lille-Métropole", "kind": "facility",
                                                  "finess": "590000038", "city": "Lille"}).status_code == 302
    assert client.post(change_url(world.agent), {"organisation": ops.cada.pk}).status_code == 302
    entries = list(AuditEntry.objects.filter(seq__gt=before).order_by("seq"))
    assert [(e.action, e.object_type, e.object_id, e.actor_id, e.mode, e.record_id_ref) for e in entries] == [
        ("admin_change", "organisation", str(ops.hospital.pk), ops.a.pk, "admin", None),
        ("admin_change", "counteragent", str(world.agent.pk), ops.a.pk, "admin", None),
    ]
    assert entries[0].rule == "fields:name,city" and "Métropole" not in entries[0].payload()
    assert verify_chain() is None
    call_command("verify_audit")


@pytest.mark.django_db
def test_the_matrix_is_complete_restrictive_editable_by_its_operators_and_audited(world, ops):
    assert MatrixEntry.objects.count() == 7 * 39
    physio = MatrixEntry.objects.get(profession="physiotherapist", doc_type="consultation_report")
    assert physio.allowed is False
    data = {"profession": "physiotherapist", "doc_type": "consultation_report", "allowed": "on"}
    assert logged_in(ops.a).post(change_url(physio), data).status_code == 403  # not A's role
    assert not decide(Actor(world.kine.user), Action.VIEW_DOCUMENT, world.docs["consultation"]).allowed
    admin_scope_grant(actor=Actor(None), user=ops.a, roles=["matrix"])
    response = logged_in(User.objects.get(pk=ops.a.pk)).post(change_url(physio), data)
    assert response.status_code == 302
    # The policy reads the edited cell: the physiotherapist now sees consultation reports.
    assert decide(Actor(world.kine.user), Action.VIEW_DOCUMENT, world.docs["consultation"]).allowed
    assert admin_entries(action="admin_change", object_type="matrixentry", object_id=str(physio.pk),
                         rule="fields:allowed").exists()
    assert verify_chain() is None


@pytest.mark.django_db
def test_non_staff_cannot_enter_admin(client, world):
    client.force_login(world.dr_house.user)
    assert client.get(reverse("admin:index")).status_code == 302


# --- scopes from the command line -------------------------------------------------------------------


@pytest.mark.django_db
def test_scopes_are_granted_listed_and_revoked_from_the_command_line_and_audited(world, ops, capsys):
    from io import StringIO

    nina = enrol_totp(make_user("nina_newop"))
    out = StringIO()
    call_command("admin_scope", "grant", "nina_newop", "590000038", str(ops.cpam.pk), "--role", "matrix", stdout=out)
    assert "CH Lille" in out.getvalue() and "CPAM Roubaix" in out.getvalue() and "matrix" in out.getvalue()
    nina.refresh_from_db()
    assert nina.is_staff and not nina.is_superuser
    assert logged_in(nina).get(change_url(ops.hospital)).status_code == 200
    grants = admin_entries(action="admin_scope_grant", object_id=str(nina.pk))
    assert sorted(grants.values_list("rule", flat=True)) == sorted(
        [f"organisation:{ops.hospital.pk}", f"organisation:{ops.cpam.pk}", "role:matrix"])
    assert grants.first().actor_label.startswith("command line")

    call_command("admin_scope", "revoke", "nina_newop", "--all", stdout=StringIO())
    nina.refresh_from_db()
    assert not nina.is_staff
    assert logged_in(User.objects.get(pk=nina.pk)).get(change_url(ops.hospital)).status_code == 302
    with pytest.raises(Exception, match="No organisation"):
        call_command("admin_scope", "grant", "nina_newop", "999999", stdout=StringIO())

    # An operator's own lost authenticator (nobody's scope in the admin) is reset on the server.
    with pytest.raises(Exception, match="two-person request"):
        call_command("admin_scope", "reset-second-factor", world.dr_house.user.username, stdout=StringIO())
    assert Authenticator.objects.filter(user=world.dr_house.user).exists()
    call_command("admin_scope", "reset-second-factor", ops.a.username, stdout=StringIO())
    assert not Authenticator.objects.filter(user=ops.a).exists()
    assert admin_entries(action="second_factor_reset", object_id=str(ops.a.pk)).get().actor_label.startswith(
        "command line")
    assert verify_chain() is None


# --- no superuser in production -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_superuser_cannot_log_in_where_superusers_are_not_allowed(client, world, settings):
    settings.SUPERUSERS_ALLOWED = False
    from tests.test_login import password_step

    response = password_step(client, world.admin.username)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    # A session opened before ends too.
    browser = logged_in(world.admin)
    assert browser.get(reverse("admin:index")).status_code == 302
    assert browser.get(reverse("admin:index"))["Location"].startswith(reverse("admin:login"))
    assert "_auth_user_id" not in browser.session or browser.get(reverse("portal_pro:home")).status_code == 302


@pytest.mark.slow
def test_production_refuses_superusers_in_check_deploy(tmp_path):
    from tests.test_deployment import _manage, _production_environment

    environment = _production_environment(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    # One process makes the accounts table (from the model: the check reads that table alone,
    # and migrating a whole SQLite database from scratch takes seconds), passes the check clean
    # (a failing check raises: the shell fails before saying so) and makes the superuser; then
    # it runs the command as an operator would, manage.py's own entry point with its arguments,
    # whose failure ends the process.
    make = ("from django.core.management import call_command, execute_from_command_line;"
            " from django.db import connection; from dmp.models import User\n"
            "with connection.schema_editor() as editor: editor.create_model(User)\n"
            "call_command('check', '--deploy'); print('clean before the superuser', flush=True)\n"
            "User.objects.create(username='root', is_staff=True, is_superuser=True)\n"
            "execute_from_command_line(['manage.py', 'check', '--deploy'])")
    result = _manage("shell", "--no-imports", "-c", make, environment=environment)
    assert "clean before the superuser" in result.stdout, result.stdout + result.stderr
    assert result.returncode != 0
    assert "dmp.E001" in result.stderr + result.stdout


# --- the registry import ---------------------------------------------------------------------------

SAMPLE = __import__("pathlib").Path(__file__).parent / "data" / "ps_libreacces_sample.txt"


@pytest.mark.django_db
def test_professionals_come_from_a_registry_extract_once_audited_and_bad_lines_named(world, ops):
    from io import StringIO

    ops.hospital.city = "Loos"  # the cardiologist's line names no town: the facility's is used
    ops.hospital.save(update_fields=["city"])
    out = StringIO()
    call_command("import_rpps", str(SAMPLE), stdout=out)
    report = out.getvalue()
    assert "3 professional(s) created, 0 already known, 3 line(s) skipped" in report
    assert "line 6: rpps_invalid" in report and "line 7: profession_not_served" in report
    assert "line 8: not_rpps" in report and "FAUX" not in report
    gp = Professional.objects.get(rpps="10987654323")
    assert (gp.profession, gp.facility, gp.user.last_name, gp.user.email) == ("gp", None, "Durand",
                                                                               "c.durand@example.org")
    cardiologist = Professional.objects.get(rpps="10987654430")
    assert (cardiologist.profession, cardiologist.facility) == ("specialist", ops.hospital)
    # The town patients search by: the extract's, else the facility's.
    assert (gp.town, cardiologist.town) == ("Lille", "Loos")
    assert Professional.objects.get(rpps="10987654547").profession == "nurse"
    assert not gp.user.has_usable_password()
    assert Notification.objects.filter(recipient=gp.user, event="account_activation").exists()
    assert admin_entries(action="professional_create", rule="rpps_import").count() == 3
    # The same file again changes nothing.
    out = StringIO()
    call_command("import_rpps", str(SAMPLE), stdout=out)
    assert "0 professional(s) created, 3 already known" in out.getvalue()
    assert verify_chain() is None


@pytest.mark.django_db
def test_a_file_that_is_not_a_registry_extract_is_refused_whole(world, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("name;rpps\nDurand;10987654323\n", encoding="utf-8")
    with pytest.raises(Exception, match="missing column"):
        call_command("import_rpps", str(bad))
    assert not Professional.objects.filter(rpps="10987654323").exists()
