"""`manage.py demo_code [username…]`: the current authenticator code of demo accounts.

For trying the demo without an authenticator app. It only ever prints codes for accounts whose
secret is the public demo secret, and refuses to run in production."""

from __future__ import annotations

import time

from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dmp.demo import DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = "Print the current authenticator code of demo accounts (never in production)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="*", help="Demo usernames (default: every demo account).")

    def handle(self, *args, usernames: list[str], **options) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_code does not run in production.")
        authenticators = Authenticator.objects.filter(type=Authenticator.Type.TOTP).select_related("user")
        if usernames:
            authenticators = authenticators.filter(user__username__in=usernames)
        demo = [a for a in authenticators.order_by("user__username") if decrypt(a.data["secret"]) == DEMO_TOTP_SECRET]
        if not demo:
            raise CommandError("No demo account with the demo authenticator: run `manage.py seed_demo` first.")
        step = int(time.time()) // 30
        seconds_left = 30 - int(time.time()) % 30
        for authenticator in demo:
            code = format_hotp_value(hotp_value(DEMO_TOTP_SECRET, step))
            self.stdout.write(f"{authenticator.user.username:<16} {code}")
        self.stdout.write(f"(valid for {seconds_left} more seconds)")
