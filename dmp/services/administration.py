"""Administration writes (DOMAIN.md §4): everything an operator changes is in the tamper-evident
audit log, and what would let one insider become someone else needs two.

- `admin_audit()` writes one audit entry for an admin change (mode "admin", no record, the
  object's type and id, the names of the fields changed as its rule; never a value).
- `professional_creation_request()` / `counter_agent_creation_request()` /
  `second_factor_reset_request()` file a request (operator A); `admin_request_approve()` by
  another operator B with the same scope carries it out;
  `admin_request_reject()` closes it. A's own approval is refused and logged as refused.
- `professional_create()` is the one place a professional comes to exist outside the demo and
  the tests: approval of a request, or the registry import (`manage.py import_rpps`). The
  account has no usable password: the professional sets one through the activation link sent
  to their e-mail address, then enrols their authenticator at first login. No operator ever
  knows a password. Counter agents are created the same way, on approval only.
- Scopes (`admin_scope_grant()` / `admin_scope_revoke()`) change from the command line only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import import_module

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from .. import access_log
from ..models import AdminRequest, AuditEntry, AuditMode, CounterAgent, Organisation, Professional, User
from ..models.people import validate_rpps
from ..notifications import notify
from ..policy import Actor, Decision
from ..selectors.administration import (
    administers,
    facility_in_scope,
    is_operator,
    organisations_administered_by,
)
from . import InvalidInput, InvalidInputCode

security_log = logging.getLogger("dmp.security")

ROLE = "administrator"


def admin_audit(*, actor: Actor, action: str, obj=None, object_id: str = "", allowed: bool = True,
                rule: str = "delegated_administration") -> AuditEntry:
    """One entry of the access log for an administration act. Ids and field names only. A
    refusal is written at once (call it before the transaction of what it refuses); an act that
    happened, inside the transaction of its change (the services and the admin's own views run
    in one; a Django admin path that does not gets one here, just around its entry)."""
    decision = Decision(allowed, rule[:60], AuditMode.ADMIN)
    if not allowed:
        return access_log.refusal(actor, action[:40], decision, obj, record=None, object_id=object_id, role=ROLE)
    with transaction.atomic():
        return access_log.write(actor, action[:40], decision, obj, record=None, object_id=object_id, role=ROLE)


class CommandLine(Actor):
    """The person at the server's console (a management command), named in the audit log by
    their system account."""

    def __init__(self, what: str = "command line") -> None:
        super().__init__(None)
        self.what = what

    @property
    def label(self) -> str:
        import getpass

        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
        return f"{self.what} ({who})"


class FourEyesRefused(InvalidInput):
    """A request approved by its own author, or by an operator without its scope."""


# --- Filing requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewProfessional:
    """What identifies a professional to create: from a request or from the registry."""

    rpps: str
    first_name: str
    last_name: str
    profession: str
    email: str = ""
    specialty: str = ""
    facility: Organisation | None = None
    is_samu_regulator: bool = False
    username: str = ""
    town: str = ""  # where they practise; their facility's town when not given

    def account_name(self) -> str:
        return self.username or f"ps{self.rpps}"


def professional_check(new: NewProfessional) -> None:
    """The checks that hold for a request and for the import alike; InvalidInput says which."""
    try:
        validate_rpps(new.rpps)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc
    if Professional.objects.filter(rpps=new.rpps).exists():
        raise InvalidInput(_("A professional with this RPPS number already exists."), code=InvalidInputCode.DUPLICATE)
    if User.objects.filter(username=new.account_name()).exists():
        raise InvalidInput(_("This username is already taken."), code=InvalidInputCode.DUPLICATE)
    if new.is_samu_regulator and new.profession not in ("gp", "specialist"):
        raise InvalidInput(_("A SAMU regulator is a physician."), code=InvalidInputCode.NOT_ALLOWED)


def creation_request_check(new: NewProfessional) -> None:
    """The checks of a new professional, and no other request for the same one waiting."""
    professional_check(new)
    if AdminRequest.objects.filter(kind=AdminRequest.Kind.CREATE_PROFESSIONAL, status=AdminRequest.Status.PENDING,
                                   rpps=new.rpps).exists():
        raise InvalidInput(_("A request for this RPPS number is already waiting."), code=InvalidInputCode.DUPLICATE)


def professional_creation_request(*, actor: Actor, new: NewProfessional, reason: str) -> AdminRequest:
    """Operator A asks for a professional to be created; nothing exists until B approves."""
    _require_operator(actor)
    if not facility_in_scope(actor.user, new.facility):
        raise InvalidInput(_("This facility is not in your administration scope."), code=InvalidInputCode.NOT_ALLOWED)
    creation_request_check(new)
    with transaction.atomic():
        request = AdminRequest.objects.create(
            kind=AdminRequest.Kind.CREATE_PROFESSIONAL, reason=_reason(reason), requested_by=actor.user,
            username=new.account_name(), first_name=new.first_name, last_name=new.last_name, email=new.email,
            rpps=new.rpps, profession=new.profession, specialty=new.specialty, facility=new.facility,
            is_samu_regulator=new.is_samu_regulator,
        )
        admin_audit(actor=actor, action="admin_request", obj=request, rule=request.kind)
    return request


def counter_agent_creation_request(*, actor: Actor, username: str, first_name: str, last_name: str, email: str,
                                   organisation: Organisation, reason: str) -> AdminRequest:
    """Operator A asks for a counter agent of an organisation in scope; nothing exists until B
    approves (an agent resets people's credentials at the counter: an insider too)."""
    _require_operator(actor)
    counter_agent_check(username=username, organisation=organisation, operator=actor.user)
    with transaction.atomic():
        request = AdminRequest.objects.create(
            kind=AdminRequest.Kind.CREATE_COUNTER_AGENT, reason=_reason(reason), requested_by=actor.user,
            username=username, first_name=first_name, last_name=last_name, email=email, organisation=organisation,
        )
        admin_audit(actor=actor, action="admin_request", obj=request, rule=request.kind)
    return request


def counter_agent_check(*, username: str, organisation: Organisation | None, operator,
                        request: AdminRequest | None = None) -> None:
    """The organisation is in the operator's scope, the username free and not asked for by
    another request waiting (`request`: the one being approved)."""
    if organisation is None or not organisations_administered_by(operator).filter(pk=organisation.pk).exists():
        raise InvalidInput(_("This organisation is not in your administration scope."),
                           code=InvalidInputCode.NOT_ALLOWED)
    if not username or User.objects.filter(username=username).exists():
        raise InvalidInput(_("This username is already taken."), code=InvalidInputCode.DUPLICATE)
    waiting = AdminRequest.objects.filter(status=AdminRequest.Status.PENDING, username=username)
    if request is not None:
        waiting = waiting.exclude(pk=request.pk)
    if waiting.exists():
        raise InvalidInput(_("A request for this username is already waiting."), code=InvalidInputCode.DUPLICATE)


def second_factor_reset_request(*, actor: Actor, user: User, reason: str) -> AdminRequest:
    """Operator A asks for the second factor of an account in scope to be reset (the person lost
    their phone and their recovery codes, and A checked who they are)."""
    _require_operator(actor)
    if not administers(actor.user, user):
        raise InvalidInput(_("This account is not in your administration scope."), code=InvalidInputCode.NOT_ALLOWED)
    if user.pk == actor.user.pk:
        raise InvalidInput(_("Nobody asks for their own second factor to be reset."), code=InvalidInputCode.NOT_ALLOWED)
    with transaction.atomic():
        request = AdminRequest.objects.create(
            kind=AdminRequest.Kind.RESET_SECOND_FACTOR, reason=_reason(reason), requested_by=actor.user,
            target_user=user,
        )
        admin_audit(actor=actor, action="admin_request", obj=request, rule=request.kind)
    return request


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise InvalidInput(_("Say why (at least 10 characters), and how the person's identity was checked."),
                           code=InvalidInputCode.MISSING)
    return reason[:300]


def _require_operator(actor: Actor) -> None:
    if not is_operator(actor.user):
        raise InvalidInput(_("Only an operator may do this."), code=InvalidInputCode.NOT_ALLOWED)


# --- Deciding ----------------------------------------------------------------------------------


def admin_request_approve(*, actor: Actor, request: AdminRequest) -> AdminRequest:
    """Operator B approves: B is not the author, administers the request's subject, and the
    request is still pending. Then it takes effect, in the same transaction as its audit entry."""
    # Checked first outside the transaction, so that a refusal's audit entry stays written.
    _check_decider(actor, AdminRequest.objects.get(pk=request.pk), "admin_approve")
    with transaction.atomic():
        # Two operators clicking at once: the row lock lets one decide.
        request = AdminRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != AdminRequest.Status.PENDING:
            raise InvalidInput(_("This request was already decided."), code=InvalidInputCode.STATE)
        if request.kind == AdminRequest.Kind.CREATE_PROFESSIONAL:
            new = NewProfessional(
                rpps=request.rpps, first_name=request.first_name, last_name=request.last_name,
                profession=request.profession, email=request.email, specialty=request.specialty,
                facility=request.facility, is_samu_regulator=request.is_samu_regulator, username=request.username,
            )
            request.professional = professional_create(actor=actor, new=new, rule="four_eyes")
        elif request.kind == AdminRequest.Kind.CREATE_COUNTER_AGENT:
            _counter_agent_create(actor=actor, request=request)
        else:
            _second_factor_reset(actor=actor, user=request.target_user)
        request.status = AdminRequest.Status.APPROVED
        request.decided_by, request.decided_at = actor.user, timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at", "professional"])
        admin_audit(actor=actor, action="admin_approve", obj=request, rule=request.kind)
    security_log.info("admin request approved: request=%s kind=%s by=%s author=%s", request.pk, request.kind,
                      actor.user.pk, request.requested_by_id)
    return request


def admin_request_reject(*, actor: Actor, request: AdminRequest) -> AdminRequest:
    """Close a pending request without effect: its author (withdrawing it) or an operator with
    its scope."""
    if not administers(actor.user, request):
        _audit_refusal(actor, "admin_reject", request, "out_of_scope")
        raise FourEyesRefused(_("This request is not in your administration scope."), code=InvalidInputCode.NOT_ALLOWED)
    with transaction.atomic():
        request = AdminRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != AdminRequest.Status.PENDING:
            raise InvalidInput(_("This request was already decided."), code=InvalidInputCode.STATE)
        request.status = AdminRequest.Status.REJECTED
        request.decided_at = timezone.now()
        # The author withdrawing their own request is not a decision by a second person.
        request.decided_by = None if actor.user.pk == request.requested_by_id else actor.user
        request.save(update_fields=["status", "decided_by", "decided_at"])
        admin_audit(actor=actor, action="admin_reject", obj=request, rule=request.kind)
    return request


def _check_decider(actor: Actor, request: AdminRequest, action: str) -> None:
    if request.status != AdminRequest.Status.PENDING:
        raise InvalidInput(_("This request was already decided."), code=InvalidInputCode.STATE)
    if actor.user is None or actor.user.pk == request.requested_by_id:
        _audit_refusal(actor, action, request, "four_eyes_same_operator")
        raise FourEyesRefused(_("A second operator must approve this request: not the one who filed it."),
                              code=InvalidInputCode.NOT_ALLOWED)
    if not administers(actor.user, request):
        _audit_refusal(actor, action, request, "out_of_scope")
        raise FourEyesRefused(_("This request is not in your administration scope."), code=InvalidInputCode.NOT_ALLOWED)


def _audit_refusal(actor: Actor, action: str, request: AdminRequest, rule: str) -> None:
    admin_audit(actor=actor, action=action, obj=request, allowed=False, rule=rule)
    security_log.warning("admin request refused: request=%s by=%s rule=%s", request.pk,
                         actor.user.pk if actor.user else None, rule)


# --- Effects -----------------------------------------------------------------------------------


def professional_create(*, actor: Actor, new: NewProfessional, rule: str) -> Professional:
    """Create the account and the professional; the account has no usable password and gets the
    activation link by e-mail. Called on approval (rule "four_eyes") and by the registry import
    (rule "rpps_import")."""
    professional_check(new)
    with transaction.atomic():
        user = User(username=new.account_name(), first_name=new.first_name, last_name=new.last_name,
                    email=new.email)
        user.set_unusable_password()
        user.save()
        town = new.town or (new.facility.city if new.facility else "")
        professional = Professional(user=user, rpps=new.rpps, profession=new.profession, specialty=new.specialty,
                                    facility=new.facility, is_samu_regulator=new.is_samu_regulator, town=town[:100])
        professional.full_clean(exclude=["user"])
        professional.save()
        admin_audit(actor=actor, action="professional_create", obj=professional, rule=rule)
        if user.email:
            notify(user, "account_activation", link=activation_link(user), username=user.username)
    return professional


def _counter_agent_create(*, actor: Actor, request: AdminRequest) -> CounterAgent:
    counter_agent_check(username=request.username, organisation=request.organisation, operator=actor.user,
                        request=request)
    user = User(username=request.username, first_name=request.first_name, last_name=request.last_name,
                email=request.email)
    user.set_unusable_password()
    user.save()
    agent = CounterAgent.objects.create(user=user, organisation=request.organisation)
    admin_audit(actor=actor, action="counter_agent_create", obj=agent, rule="four_eyes")
    if user.email:
        notify(user, "account_activation", link=activation_link(user), username=user.username)
    return agent


def activation_send(*, actor: Actor, user: User) -> None:
    """Send the activation link (again) to an account that never had a password."""
    if user.has_usable_password() or not user.email:
        raise InvalidInput(_("This account is already active or has no e-mail address."), code=InvalidInputCode.STATE)
    with transaction.atomic():
        admin_audit(actor=actor, action="activation_send", obj=user)
        notify(user, "account_activation", link=activation_link(user), username=user.username)


def activation_link(user: User) -> str:
    """The link that lets a new account choose its password: valid until a password is set (the
    token covers the password hash) or PASSWORD_RESET_TIMEOUT passes."""
    path = reverse("account_activate", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                             default_token_generator.make_token(user)])
    return settings.SITE_URL.rstrip("/") + path


def operator_second_factor_reset(*, actor: Actor, user: User) -> None:
    """An operator's own lost authenticator (operators are nobody's scope in the admin): reset
    from the server's command line, by whoever runs it, with the same effects and audit."""
    if not user.is_staff:
        raise InvalidInput("Only an operator's second factor is reset from the command line; others go through "
                           "a two-person request in the admin.", code=InvalidInputCode.NOT_ALLOWED)
    with transaction.atomic():
        _second_factor_reset(actor=actor, user=user)


def _second_factor_reset(*, actor: Actor, user: User) -> None:
    """Remove every authenticator of the account (TOTP and recovery codes), end every session
    it has, tell its owner on every channel. The owner enrols a new authenticator at their next
    login, with their own password: the operators never know it."""
    removed = Authenticator.objects.filter(user=user).delete()[0]
    ended = sessions_end(user)
    admin_audit(actor=actor, action="second_factor_reset", obj=user, rule=f"removed:{removed},sessions:{ended}")
    notify(user, "second_factor_reset", when=timezone.now())


def sessions_end(user: User) -> int:
    """End every session of the account. Each is deleted through the session engine, so that
    its copy in the cache goes with its database row (SESSION_ENGINE is `cached_db`: a row
    deleted alone would leave the session readable from Redis). Returns how many ended."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            store(session_key=session.session_key).delete()
            ended += 1
    return ended


# --- Scopes (granted from the command line only) -------------------------------------------------

# Model-wide permissions an operator may hold besides their organisations, by role name.
ROLES: dict[str, tuple[str, ...]] = {
    # professionals without a facility (a liberal GP): their creation requests, accounts, tokens
    "unaffiliated": ("dmp.administer_unaffiliated",),
    # the authorisation matrix (profession × document type)
    "matrix": ("dmp.view_matrixentry", "dmp.change_matrixentry"),
    # the notification outbox, practice-software tokens, the administration trail of the audit log,
    # letters to post for records no counter onboarded (the mail room)
    "support": ("dmp.view_notification", "dmp.view_apitoken", "dmp.change_apitoken", "dmp.view_auditentry",
                "dmp.view_postalletter"),
    # creating organisations (someone must then be granted them)
    "organisations": ("dmp.add_organisation", "dmp.view_organisation"),
}


def _permission(name: str):
    from django.contrib.auth.models import Permission

    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def admin_scope_grant(*, actor: Actor, user: User, organisations=(), roles=()) -> None:
    """Make the account an operator (staff) and add organisations (guardian object permission)
    and roles (model-wide permissions) to its scope; one audit entry per grant."""
    from guardian.shortcuts import assign_perm

    unknown = set(roles) - set(ROLES)
    if unknown:
        raise InvalidInput(f"Unknown role(s): {', '.join(sorted(unknown))}; known: {', '.join(ROLES)}.",
                           code=InvalidInputCode.INVALID)
    if user.is_superuser:
        raise InvalidInput("A superuser is not an operator: demote it first.", code=InvalidInputCode.NOT_ALLOWED)
    with transaction.atomic():
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            admin_audit(actor=actor, action="operator_staff", obj=user)
        for organisation in organisations:
            assign_perm("dmp.administer_organisation", user, organisation)
            admin_audit(actor=actor, action="admin_scope_grant", obj=user, rule=f"organisation:{organisation.pk}")
        for role in roles:
            for name in ROLES[role]:
                user.user_permissions.add(_permission(name))
            admin_audit(actor=actor, action="admin_scope_grant", obj=user, rule=f"role:{role}")


def admin_scope_revoke(*, actor: Actor, user: User, organisations=(), roles=(), everything: bool = False) -> None:
    """Remove organisations and roles from the scope; `everything` also ends the operator's
    staff status and their sessions."""
    from guardian.shortcuts import get_objects_for_user, remove_perm

    with transaction.atomic():
        if everything:
            organisations = list(get_objects_for_user(user, "dmp.administer_organisation", klass=Organisation,
                                                      accept_global_perms=False, with_superuser=False))
            roles = list(ROLES)
        for organisation in organisations:
            remove_perm("dmp.administer_organisation", user, organisation)
            admin_audit(actor=actor, action="admin_scope_revoke", obj=user, rule=f"organisation:{organisation.pk}")
        for role in roles:
            for name in ROLES[role]:
                user.user_permissions.remove(_permission(name))
            admin_audit(actor=actor, action="admin_scope_revoke", obj=user, rule=f"role:{role}")
        if everything and user.is_staff:
            user.is_staff = False
            user.save(update_fields=["is_staff"])
            sessions_end(user)
            admin_audit(actor=actor, action="operator_end", obj=user)


def operator_scope(user: User) -> tuple[list[Organisation], list[str]]:
    """The organisations and roles an operator holds."""
    from guardian.shortcuts import get_objects_for_user

    organisations = list(get_objects_for_user(user, "dmp.administer_organisation", klass=Organisation,
                                              accept_global_perms=False, with_superuser=False).order_by("pk"))
    held = {f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.select_related("content_type")}
    return organisations, [role for role, names in ROLES.items() if set(names) <= held]
