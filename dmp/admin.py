"""Django admin: accounts, organisations, professionals, counter agents and the authorisation
matrix. Medical content (documents, synthesis, personal data, reimbursements) is not
registered at all; records appear only through their identity, and the audit log read-only."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    ApiToken,
    AuditEntry,
    CounterAgent,
    MatrixEntry,
    Notification,
    Organisation,
    PostalLetter,
    Professional,
    Record,
    User,
)
from .notifications import notification_retry
from .policy import Actor
from .services import api_token_revoke


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Record"), {"fields": ("preferred_language", "phone", "must_change_password")}),
    )
    list_display = ("username", "first_name", "last_name", "is_staff", "is_active")


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "city")
    list_filter = ("kind",)
    search_fields = ("name", "city", "finess")


@admin.register(Professional)
class ProfessionalAdmin(admin.ModelAdmin):
    list_display = ("__str__", "rpps", "profession", "specialty", "facility", "is_samu_regulator")
    list_filter = ("profession", "is_samu_regulator")
    search_fields = ("rpps", "user__last_name", "user__first_name")
    autocomplete_fields = ("user", "facility")


@admin.register(CounterAgent)
class CounterAgentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "organisation")
    autocomplete_fields = ("user", "organisation")


@admin.register(MatrixEntry)
class MatrixEntryAdmin(admin.ModelAdmin):
    list_display = ("profession", "doc_type", "allowed")
    list_editable = ("allowed",)
    list_filter = ("profession", "allowed")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never changed from admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    """Identity and life cycle only, read-only: administrators manage accounts, not records."""

    list_display = ("identifier", "family_name", "given_names", "state", "created_at")
    list_filter = ("state",)
    search_fields = ("nir", "provisional_id", "family_name")
    fields = ("nir", "provisional_id", "family_name", "given_names", "birth_date", "state", "closed_at",
              "created_at")
    readonly_fields = fields


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: the log is append-only, and holds no medical content."""

    list_display = ("seq", "at", "actor_label", "role", "mode", "action", "allowed", "rule")
    list_filter = ("allowed", "mode", "action")


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
            api_token_revoke(actor=actor, token=token)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", len(tokens)) % {"count": len(tokens)},
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """The outbox, read-only: what was sent, what is waiting, and the dead notifications (failed
    past their retries, or refused for good by the provider) for a person to act on — correct
    the contact details or the provider's settings, then send again. Neither the text nor its
    context is shown (they name the professionals who read a record); the address or number
    only masked."""

    list_display = ("pk", "event", "channel", "status", "attempts", "last_error", "recipient_id", "masked_destination",
                    "created_at", "next_attempt_at", "sent_at")
    list_filter = ("status", "event", "channel", "last_error")
    search_fields = ("=id", "=recipient__username", "=idempotency_key")
    fields = ("event", "channel", "status", "attempts", "last_error", "recipient_id", "record_id",
              "masked_destination", "language", "idempotency_key", "created_at", "next_attempt_at", "lease_until",
              "sent_at")
    readonly_fields = fields
    actions = ["send_again"]

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
class AuthenticatorAdmin(admin.ModelAdmin):
    """Second factors, without their secrets. Deleting one is how the operator helps someone who
    lost both their phone and their recovery codes, after checking who they are: they enrol a
    new one at their next login. Nobody adds or edits one here (that would be choosing someone
    else's second factor)."""

    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    search_fields = ("user__username", "user__last_name")
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PostalLetter)
class PostalLetterAdmin(ReadOnlyAdmin):
    """Letters to post about records no counter onboarded (the others are printed from the
    onboarding organisation's counter dashboard): the operator's mail room prints them from the
    record's postal address. Event and dates only: nothing medical, no secret."""

    list_display = ("pk", "event", "organisation", "created_at", "printed_at")
    list_filter = ("event", ("organisation", admin.EmptyFieldListFilter), "printed_at")
    fields = ("record", "event", "organisation", "language", "created_at", "printed_at")
    readonly_fields = fields
