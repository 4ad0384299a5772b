"""Django admin, for operators: delegated, audited, and unable to become anyone.

- **Delegated.** An operator administers the organisations, counter agents and professionals
  of their scope only (django-guardian object permissions, dmp/selectors/administration.py):
  lists are filtered, anything outside the scope is a 404 like a missing object. Scopes are
  granted from the command line (`manage.py admin_scope`), never here.
- **Audited.** Every addition, change and deletion made here is also an entry of the
  tamper-evident audit log (`AuditedAdmin`), with the object's id and the names of the fields
  changed, never their values.
- **No takeover.** Nobody sets or sees a password here (no password form, no hash shown); the
  e-mail address and mobile phone are read-only (they change with the person, at a counter or
  in the patient portal); nobody deletes an authenticator, adds a professional, a counter agent
  or an account: a lost second factor, a new professional and a new counter agent go through a
  request that a second operator approves (`AdminRequest`), or, for professionals, the registry
  import (`manage.py import_rpps`).
- **Nothing medical, no emergency metadata.** Medical models are not registered; records are
  not either (patients' identities are not the operators' business); the audit log shows only
  the administration trail, never who opened which record in which mode.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    AdminRequest,
    ApiToken,
    AuditEntry,
    AuditMode,
    CounterAgent,
    CounterAgentCreationRequest,
    MatrixEntry,
    Notification,
    Organisation,
    PostalLetter,
    Professional,
    ProfessionalCreationRequest,
    SecondFactorResetRequest,
    User,
)
from .notifications import notification_retry
from .policy import Actor
from .selectors.administration import (
    accounts_administered_by,
    administers,
    counter_agents_administered_by,
    facility_in_scope,
    is_operator,
    organisations_administered_by,
    professionals_administered_by,
    requests_administered_by,
)
from .services import InvalidInput, api_token_revoke
from .services.administration import (
    NewProfessional,
    activation_send,
    admin_audit,
    admin_request_approve,
    admin_request_reject,
    counter_agent_check,
    counter_agent_creation_request,
    creation_request_check,
    professional_creation_request,
    second_factor_reset_request,
)

# Groups would be a second, unaudited way to hand out permissions; allauth's e-mail addresses a
# second place to change where an account's e-mail goes (ours is User.email, read-only here).
admin.site.unregister(Group)
admin.site.unregister(EmailAddress)


class NotFoundAdmin(admin.ModelAdmin):
    """An object outside what the operator may see answers 404, like a missing one (Django's
    admin would redirect to the index with a message saying it does not exist)."""

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404


class AuditedAdmin(NotFoundAdmin):
    """Django's admin log, and the same act in the tamper-evident audit log, in the same
    transaction as the change (the admin's views run in one)."""

    def log_addition(self, request, obj, message):
        admin_audit(actor=Actor.from_request(request), action="admin_add", obj=obj)
        return super().log_addition(request, obj, message)

    def save_model(self, request, obj, form, change):
        # The names of the fields changed (never their values), for the audit entry: Django's
        # change message has their labels, which depend on the operator's language.
        obj._changed_fields = list(form.changed_data) if change else []
        super().save_model(request, obj, form, change)

    def log_change(self, request, obj, message):
        fields = ",".join(getattr(obj, "_changed_fields", []))
        admin_audit(actor=Actor.from_request(request), action="admin_change", obj=obj,
                    rule=f"fields:{fields}" if fields else "delegated_administration")
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            admin_audit(actor=Actor.from_request(request), action="admin_delete", obj=obj)
        return super().log_deletions(request, queryset)


class ScopedAdmin(AuditedAdmin):
    """What an operator administers, and nothing else: the list is the scope, an object outside
    it answers 404 like a missing one. Nothing is added or deleted here."""

    def scope(self, user):
        raise NotImplementedError

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pk__in=self.scope(request.user).values("pk"))

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user) and (obj is None or administers(request.user, obj))

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The forms limit their choices (facilities, organisations, accounts) to the scope.
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"operator": request.user})


# --- Accounts ------------------------------------------------------------------------------------


def _refused(*args, **kwargs):
    raise Http404


@admin.register(User)
class UserAdmin(ScopedAdmin):
    """The accounts of the professionals and agents in scope. No password here, in any form:
    not set, not changed, not even its hash. The e-mail address and mobile phone are where login
    codes and security notices go, so they are read-only: they change with the person present.
    The names are read-only too: they are what patients are told ("Dr X opened your record") and
    come from the registry or a request two operators approved. Staff and permission flags change
    only from the command line (`manage.py admin_scope`). What is left: the language, and
    deactivating an account (its sessions stop at their next request)."""

    list_display = ("username", "first_name", "last_name", "is_active", "last_login")
    list_filter = ("is_active",)
    search_fields = ("username", "last_name", "first_name")
    fields = ("username", "first_name", "last_name", "email", "phone", "preferred_language", "is_active",
              "is_staff", "last_login", "date_joined")
    readonly_fields = ("username", "first_name", "last_name", "email", "phone", "is_staff", "last_login",
                       "date_joined")

    actions = ["send_activation_link"]

    def scope(self, user):
        return accounts_administered_by(user)

    @admin.action(description=_("Send the activation link again (accounts not activated yet)"))
    def send_activation_link(self, request, queryset) -> None:
        """To the account's own e-mail address, which no operator can change: safe for one."""
        actor = Actor.from_request(request)
        sent = 0
        for user in queryset.exclude(email=""):
            if not user.has_usable_password():
                activation_send(actor=actor, user=user)
                sent += 1
        self.message_user(request, ngettext("%(count)d link sent.", "%(count)d links sent.", sent) % {"count": sent},
                          messages.SUCCESS)

    def get_urls(self):
        # Django's user admin has <id>/password/; this one has none, and says so (404) rather
        # than letting the catch-all route redirect.
        return [path("<id>/password/", _refused, name="dmp_user_password_change"), *super().get_urls()]


@admin.register(Organisation)
class OrganisationAdmin(ScopedAdmin):
    list_display = ("name", "kind", "city", "finess")
    list_filter = ("kind",)
    search_fields = ("name", "city", "finess")

    def scope(self, user):
        return organisations_administered_by(user)

    def has_add_permission(self, request) -> bool:
        # A new organisation is nobody's scope yet: only an operator entrusted with creating them.
        return is_operator(request.user) and request.user.has_perm("dmp.add_organisation")


class ProfessionalAdminForm(forms.ModelForm):
    operator = None  # set by ScopedAdmin.get_form

    class Meta:
        model = Professional
        fields = ("specialty", "facility", "town")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["facility"].queryset = organisations_administered_by(self.operator).filter(
            kind__in=[Organisation.Kind.FACILITY, Organisation.Kind.SAMU, Organisation.Kind.PHARMACY])

    def clean_facility(self):
        facility = self.cleaned_data["facility"]
        if not facility_in_scope(self.operator, facility):
            raise forms.ValidationError(_("This facility is not in your administration scope."))
        return facility


@admin.register(Professional)
class ProfessionalAdmin(ScopedAdmin):
    """Identity (account, RPPS number, profession, SAMU role) comes from the registry or a
    request two operators approved: read-only here. The specialty, the facility (within the
    operator's scope) and the town where they practise (which patients search by) can be corrected."""

    form = ProfessionalAdminForm
    list_display = ("__str__", "rpps", "profession", "specialty", "facility", "town", "is_samu_regulator")
    list_filter = ("profession", "is_samu_regulator")
    search_fields = ("rpps", "user__last_name", "user__first_name")
    list_select_related = ("user", "facility")
    fields = ("user", "rpps", "profession", "is_samu_regulator", "specialty", "facility", "town")
    readonly_fields = ("user", "rpps", "profession", "is_samu_regulator")

    def scope(self, user):
        return professionals_administered_by(user)



class CounterAgentAdminForm(forms.ModelForm):
    operator = None  # set by ScopedAdmin.get_form

    class Meta:
        model = CounterAgent
        fields = ("organisation",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations_administered_by(self.operator)


@admin.register(CounterAgent)
class CounterAgentAdmin(ScopedAdmin):
    form = CounterAgentAdminForm
    list_display = ("__str__", "organisation")
    list_select_related = ("user", "organisation")
    fields = ("user", "organisation")
    readonly_fields = ("user",)

    def scope(self, user):
        return counter_agents_administered_by(user)



@admin.register(MatrixEntry)
class MatrixEntryAdmin(AuditedAdmin):
    """The authorisation matrix: operators holding Django's `dmp.change_matrixentry` (granted by
    `manage.py admin_scope grant USER --matrix`); every edited cell is in the audit log."""

    list_display = ("profession", "doc_type", "allowed")
    list_editable = ("allowed",)
    list_filter = ("profession", "allowed")

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user) and super().has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return False  # the matrix is complete: every cell exists

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(NotFoundAdmin):
    """Shown, never changed from admin."""

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user) and super().has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The administration trail only (mode "admin": who changed which account, professional,
    organisation, agent, matrix cell or request). The entries about records are not shown: who
    opened whose record, and in which mode (emergency, SAMU), is itself sensitive; the patient
    and the médecin traitant read it in the record's history, and `manage.py verify_audit`
    checks the whole chain."""

    list_display = ("seq", "at", "actor_label", "action", "object_type", "object_id", "rule", "allowed")
    list_filter = ("allowed", "action")
    fields = ("seq", "at", "actor_label", "role", "action", "object_type", "object_id", "rule", "allowed", "ip",
              "hash")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(mode=AuditMode.ADMIN, record_id_ref__isnull=True)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Practice-software tokens, read-only and without their hash; a leaked one can be revoked."""

    list_display = ("professional", "label", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at",
                    "state")
    list_filter = ("revoked_at",)
    list_select_related = ("professional__user",)
    search_fields = ("label", "prefix", "professional__rpps", "professional__user__last_name")
    fields = ("professional", "label", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "state")
    readonly_fields = fields
    actions = ["revoke_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(professional__in=professionals_administered_by(request.user))

    @admin.display(description=_("state"))
    def state(self, token: ApiToken) -> str:
        return token.get_state_display()

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("dmp.change_apitoken")

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke_selected(self, request, queryset) -> None:
        actor = Actor.from_request(request)
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            api_token_revoke(actor=actor, token=token)  # its entry in the access log, mode "admin"
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", len(tokens)) % {"count": len(tokens)},
            messages.SUCCESS,
        )


# Telling a patient of an emergency or SAMU access is itself emergency metadata.
_EMERGENCY_EVENTS = ("break_glass", "samu_access", "break_glass_treating_doctor")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """The outbox, read-only: what was sent, what is waiting, and the dead notifications (failed
    past their retries, or refused for good by the provider) for a person to act on — correct
    the contact details or the provider's settings, then send again. Neither the text nor its
    context is shown (they name the professionals who read a record); the address or number
    only masked; neither the record nor the event of an emergency notice (it would say whose
    record was opened in an emergency)."""

    list_display = ("pk", "kind", "channel", "status", "attempts", "last_error", "recipient_id", "masked_destination",
                    "created_at", "next_attempt_at", "sent_at")
    list_filter = ("status", "channel", "last_error")
    search_fields = ("=id", "=recipient__username")
    fields = ("kind", "channel", "status", "attempts", "last_error", "recipient_id", "masked_destination", "language",
              "created_at", "next_attempt_at", "lease_until", "sent_at")
    readonly_fields = fields
    actions = ["send_again"]

    @admin.display(description=_("event"))
    def kind(self, notification: Notification) -> str:
        if notification.event in _EMERGENCY_EVENTS:
            return str(_("notice about the record"))
        return notification.event

    @admin.display(description=_("destination"))
    def masked_destination(self, notification: Notification) -> str:
        to = notification.destination
        if notification.channel == Notification.Channel.EMAIL:
            name, _at, domain = to.partition("@")
            return f"{name[:1]}…@{domain}"
        return f"…{to[-2:]}"

    def has_send_again_permission(self, request) -> bool:
        return request.user.has_perm("dmp.view_notification") and request.user.is_staff

    @admin.action(description=_("Send the selected failed notifications again"), permissions=["send_again"])
    def send_again(self, request, queryset) -> None:
        count = sum(notification_retry(n) for n in queryset.filter(
            status__in=[Notification.Status.DEAD, Notification.Status.FAILED]))
        self.message_user(
            request,
            ngettext("%(count)d notification queued again.", "%(count)d notifications queued again.", count)
            % {"count": count},
            messages.SUCCESS,
        )


admin.site.unregister(Authenticator)


@admin.register(Authenticator)
class AuthenticatorAdmin(ReadOnlyAdmin):
    """Second factors of the accounts in scope, without their secrets, read-only. Nobody adds,
    edits or deletes one here: deleting it would let whoever knows the password enrol their own.
    A person who lost both their phone and their recovery codes goes through a second-factor
    reset request, which a second operator approves."""

    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    search_fields = ("user__username", "user__last_name")
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user) and (obj is None or administers(request.user, obj.user))

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user__in=accounts_administered_by(request.user))


# --- Two-person requests -------------------------------------------------------------------------


class RequestAdmin(ScopedAdmin):
    """A request is filed here by one operator (the add form, which calls the service: the
    request is all it creates) and approved or rejected by another, with the actions of the
    list. It is never edited or deleted."""

    kind: str = ""
    actions = ["approve", "reject"]
    list_filter = ("status",)

    def scope(self, user):
        return requests_administered_by(user).filter(kind=self.kind)

    def has_add_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view only: a request is decided, not edited

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_fields
        return (*self.add_fields, "status", "requested_by", "requested_at", "decided_by", "decided_at")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)


    def save_model(self, request, obj, form, change):
        if change:  # never reached: has_change_permission is False
            raise PermissionDenied
        created = form.file(Actor.from_request(request))
        obj.pk, obj.kind = created.pk, created.kind
        obj._state.adding = False

    def log_addition(self, request, obj, message):
        # The service wrote the audit entry ("admin_request"); Django's log gets its line.
        return admin.ModelAdmin.log_addition(self, request, obj, message)

    @admin.action(description=_("Approve the selected requests (a second operator)"))
    def approve(self, request, queryset) -> None:
        self._decide(request, queryset, admin_request_approve, _("approved"))

    @admin.action(description=_("Reject the selected requests"))
    def reject(self, request, queryset) -> None:
        self._decide(request, queryset, admin_request_reject, _("rejected"))

    def _decide(self, request, queryset, service, done) -> None:
        actor = Actor.from_request(request)
        for item in queryset:
            try:
                service(actor=actor, request=item)
            except InvalidInput as exc:
                self.message_user(request, f"#{item.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"#{item.pk}: {done}", messages.SUCCESS)


class ProfessionalRequestForm(forms.ModelForm):
    operator = None

    class Meta:
        model = ProfessionalCreationRequest
        fields = ("rpps", "last_name", "first_name", "email", "profession", "specialty", "facility",
                  "is_samu_regulator", "username", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "facility" in self.fields:
            self.fields["facility"].queryset = organisations_administered_by(self.operator)
        for name in ("rpps", "last_name", "first_name", "email", "profession"):
            if name in self.fields:
                self.fields[name].required = True

    def new_professional(self) -> NewProfessional:
        data = self.cleaned_data
        return NewProfessional(
            rpps=data["rpps"], first_name=data["first_name"], last_name=data["last_name"],
            profession=data["profession"], email=data["email"], specialty=data.get("specialty", ""),
            facility=data.get("facility"), is_samu_regulator=data.get("is_samu_regulator", False),
            username=data.get("username", ""),
        )

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                creation_request_check(self.new_professional())
            except InvalidInput as exc:
                raise forms.ValidationError(str(exc)) from exc
            if not facility_in_scope(self.operator, data.get("facility")):
                raise forms.ValidationError(_("This facility is not in your administration scope."))
        return data

    def file(self, actor: Actor) -> AdminRequest:
        return professional_creation_request(actor=actor, new=self.new_professional(),
                                             reason=self.cleaned_data["reason"])


@admin.register(ProfessionalCreationRequest)
class ProfessionalCreationRequestAdmin(RequestAdmin):
    """Maker/checker: a professional exists only once a second operator approved the request."""

    kind = AdminRequest.Kind.CREATE_PROFESSIONAL
    form = ProfessionalRequestForm
    add_fields = ProfessionalRequestForm.Meta.fields
    list_display = ("pk", "rpps", "last_name", "first_name", "profession", "facility", "status", "requested_by",
                    "decided_by", "requested_at")
    list_select_related = ("facility", "requested_by", "decided_by")


class CounterAgentRequestForm(forms.ModelForm):
    operator = None

    class Meta:
        model = CounterAgentCreationRequest
        fields = ("organisation", "username", "last_name", "first_name", "email", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "organisation" in self.fields:
            self.fields["organisation"].queryset = organisations_administered_by(self.operator)
        for name in self.Meta.fields:
            if name in self.fields:
                self.fields[name].required = True

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                counter_agent_check(username=data["username"], organisation=data["organisation"],
                                    operator=self.operator)
            except InvalidInput as exc:
                raise forms.ValidationError(str(exc)) from exc
        return data

    def file(self, actor: Actor) -> AdminRequest:
        data = self.cleaned_data
        return counter_agent_creation_request(
            actor=actor, username=data["username"], first_name=data["first_name"], last_name=data["last_name"],
            email=data["email"], organisation=data["organisation"], reason=data["reason"])


@admin.register(CounterAgentCreationRequest)
class CounterAgentCreationRequestAdmin(RequestAdmin):
    """Maker/checker for counter agents, who reset people's credentials at the counter."""

    kind = AdminRequest.Kind.CREATE_COUNTER_AGENT
    form = CounterAgentRequestForm
    add_fields = CounterAgentRequestForm.Meta.fields
    list_display = ("pk", "username", "last_name", "first_name", "organisation", "status", "requested_by",
                    "decided_by", "requested_at")
    list_select_related = ("organisation", "requested_by", "decided_by")


class SecondFactorResetForm(forms.ModelForm):
    operator = None

    class Meta:
        model = SecondFactorResetRequest
        fields = ("target_user", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "target_user" in self.fields:
            field = self.fields["target_user"]
            field.required = True
            field.queryset = accounts_administered_by(self.operator).exclude(pk=self.operator.pk)

    def clean_reason(self):
        reason = " ".join(self.cleaned_data["reason"].split())
        if len(reason) < 10:
            raise forms.ValidationError(_("Say why (at least 10 characters), and how the person's identity was "
                                          "checked."))
        return reason

    def file(self, actor: Actor) -> AdminRequest:
        return second_factor_reset_request(actor=actor, user=self.cleaned_data["target_user"],
                                           reason=self.cleaned_data["reason"])


@admin.register(SecondFactorResetRequest)
class SecondFactorResetRequestAdmin(RequestAdmin):
    """A lost authenticator: one operator files the request after checking who the person is, a
    second one approves; then the authenticators go, the sessions end, the owner is told."""

    kind = AdminRequest.Kind.RESET_SECOND_FACTOR
    form = SecondFactorResetForm
    add_fields = SecondFactorResetForm.Meta.fields
    list_display = ("pk", "target_user", "status", "requested_by", "decided_by", "requested_at")
    list_select_related = ("target_user", "requested_by", "decided_by")


@admin.register(PostalLetter)
class PostalLetterAdmin(ReadOnlyAdmin):
    """Letters to post about records no counter onboarded (the others are printed from the
    onboarding organisation's counter dashboard): the operator's mail room prints them from the
    record's postal address. Event and dates only: nothing medical, no secret."""

    list_display = ("pk", "event", "organisation", "created_at", "printed_at")
    list_filter = ("event", ("organisation", admin.EmptyFieldListFilter), "printed_at")
    fields = ("record", "event", "organisation", "language", "created_at", "printed_at")
    readonly_fields = fields
