"""`manage.py seed_demo`: fill an empty database with the demo world (see dmp/demo.py).

Idempotent: on an already-seeded database it says so and changes nothing, so `make run` can
call it every time."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dmp.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = (
        "Create demo organisations, accounts and records (through the services, so the access policy "
        f"and audit apply). Every demo account's password is {DEMO_PASSWORD!r}. Safe to run twice."
    )

    def handle(self, *args, **options) -> None:
        seed_demo(stdout=self.stdout)
