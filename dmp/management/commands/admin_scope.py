"""`manage.py admin_scope`: who administers what (delegated administration, DOMAIN.md §4).

The only way to make an operator and to give or take a scope: the admin itself cannot, so no
operator widens their own. Run by whoever runs the server; every change is in the audit log.

    manage.py admin_scope create-operator USERNAME --first-name F --last-name L --email E
    manage.py admin_scope grant USERNAME [ORGANISATION…] [--role unaffiliated|matrix|support|organisations]…
    manage.py admin_scope revoke USERNAME [ORGANISATION…] [--role …]… [--all]
    manage.py admin_scope list [USERNAME]
    manage.py admin_scope demote USERNAME      (a superuser becomes a plain account)
    manage.py admin_scope reset-second-factor USERNAME   (an operator's lost authenticator)

An ORGANISATION is its id or its 9-character FINESS number.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dmp.models import Organisation, User
from dmp.services import InvalidInput
from dmp.services.administration import (
    ROLES,
    CommandLine,
    admin_audit,
    admin_scope_grant,
    admin_scope_revoke,
    operator_scope,
    operator_second_factor_reset,
)
from dmp.services.records import _temporary_password


class Command(BaseCommand):
    help = "Make operators and grant, revoke or list their administration scope."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create-operator", help="Create an operator account (temporary password printed).")
        create.add_argument("username")
        create.add_argument("--first-name", required=True)
        create.add_argument("--last-name", required=True)
        create.add_argument("--email", default="")
        for verb in ("grant", "revoke"):
            p = sub.add_parser(verb, help=f"{verb.title()} organisations and roles.")
            p.add_argument("username")
            p.add_argument("organisations", nargs="*", help="Organisation id or FINESS number.")
            p.add_argument("--role", action="append", default=[], choices=sorted(ROLES))
            if verb == "revoke":
                p.add_argument("--all", action="store_true", help="Everything, and the staff status.")
        listing = sub.add_parser("list", help="List operators and their scope.")
        listing.add_argument("username", nargs="?")
        demote = sub.add_parser("demote", help="Remove superuser status from an account.")
        demote.add_argument("username")
        reset = sub.add_parser("reset-second-factor", help="Reset an operator's lost authenticator (sessions end, "
                                                           "owner told).")
        reset.add_argument("username")

    def handle(self, *args, verb: str, **options) -> None:
        actor = CommandLine()
        try:
            getattr(self, f"_{verb.replace('-', '_')}")(actor, **options)
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No account named {username!r}.")
        return user

    def _organisations(self, values: list[str]) -> list[Organisation]:
        found = []
        for value in values:
            organisation = Organisation.objects.filter(finess=value).first() if len(value) == 9 else None
            if organisation is None and value.isdigit():
                organisation = Organisation.objects.filter(pk=int(value)).first()
            if organisation is None:
                raise CommandError(f"No organisation with id or FINESS {value!r}.")
            found.append(organisation)
        return found

    def _create_operator(self, actor, *, username, first_name, last_name, email, **options) -> None:
        if User.objects.filter(username=username).exists():
            raise CommandError(f"The username {username!r} is taken.")
        password = _temporary_password()
        with transaction.atomic():
            user = User(username=username, first_name=first_name, last_name=last_name, email=email, is_staff=True,
                        must_change_password=True)
            user.set_password(password)
            user.save()
            admin_audit(actor=actor, action="operator_create", obj=user)
        self.stdout.write(f"Operator {username} created. Temporary password (shown once, give it in person): "
                          f"{password}\nAt first login they choose their own password and enrol an authenticator "
                          f"app. Grant a scope with: manage.py admin_scope grant {username} ORGANISATION…")

    def _grant(self, actor, *, username, organisations, role, **options) -> None:
        user = self._user(username)
        admin_scope_grant(actor=actor, user=user, organisations=self._organisations(organisations), roles=role)
        self._show(user)

    def _revoke(self, actor, *, username, organisations, role, all, **options) -> None:  # noqa: A002
        user = self._user(username)
        admin_scope_revoke(actor=actor, user=user, organisations=self._organisations(organisations), roles=role,
                           everything=all)
        self._show(user)

    def _list(self, actor, *, username=None, **options) -> None:
        users = [self._user(username)] if username else User.objects.filter(is_staff=True).order_by("username")
        for user in users:
            self._show(user)

    def _demote(self, actor, *, username, **options) -> None:
        user = self._user(username)
        with transaction.atomic():
            user.is_superuser = False
            user.save(update_fields=["is_superuser"])
            admin_audit(actor=actor, action="operator_demote", obj=user)
        self.stdout.write(f"{username} is no longer a superuser.")

    def _reset_second_factor(self, actor, *, username, **options) -> None:
        operator_second_factor_reset(actor=actor, user=self._user(username))
        self.stdout.write(f"The authenticators of {username} were removed and its sessions ended; it enrols a new "
                          f"one at its next login.")

    def _show(self, user: User) -> None:
        organisations, roles = operator_scope(user)
        names = ", ".join(f"{o.pk} {o.name}" + (f" (FINESS {o.finess})" if o.finess else "") for o in organisations)
        flag = "" if user.is_staff else " (not an operator)"
        self.stdout.write(f"{user.username}{flag}: organisations: {names or '-'}; roles: {', '.join(roles) or '-'}")
