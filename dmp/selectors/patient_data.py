"""The patient's personal data and dispensed medicines, read ONE way for every front end: the
professional's patient screen, the FHIR summary and clinical resources, the record export and
the printed summary all call these functions, so they cannot drift apart.

The personal-data readers do not ask the policy: each caller has authorised the read it
covers (the record read, or VIEW_PERSONAL_DATA) and logged it. `dispensed_medicines` asks
VIEW_REIMBURSEMENTS itself, since the matrix governs it apart."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from .. import access_log
from ..models import EmergencyContact, PersonalProfile, Record, ReimbursementLine, SelfDeclaredItem, Vaccination
from ..policy import Action, Actor, Decision, decide

MEDICINE_MONTHS = 24  # how far back the medicines dispensed go


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier, or that month's last day (31 March - 1 month →
    28/29 February)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError(day)


def recent_medicines(record: Record) -> list[ReimbursementLine]:
    """The medicines dispensed in the last 24 months, newest first (no policy: callers ask)."""
    since = months_before(timezone.localdate(), MEDICINE_MONTHS)
    return list(ReimbursementLine.objects.filter(record=record, kind=ReimbursementLine.Kind.MEDICINE,
                                                 date__gte=since).order_by("-date", "-pk"))


def dispensed_medicines(actor: Actor, record: Record) -> list[ReimbursementLine]:
    """The medicines dispensed in the last 24 months, if the matrix lets the actor read the
    reimbursement history; logged as its own read when there is something to show (a part not
    shown is not a refused attempt)."""
    return dispensed_medicines_read(actor, record)[1]


def dispensed_medicines_read(actor: Actor, record: Record) -> tuple[Decision, list[ReimbursementLine]]:
    """`dispensed_medicines`, with the policy's answer, for a screen that says whether the
    part may be shown at all."""
    decision = decide(actor, Action.VIEW_REIMBURSEMENTS, record)
    if not decision.allowed:
        return decision, []
    lines = recent_medicines(record)
    if lines:
        access_log.read(actor, Action.VIEW_REIMBURSEMENTS, decision, record, record=record)
    return decision, lines


def personal_profile(record: Record) -> PersonalProfile | None:
    """The record's personal profile (trusted person, advance directives, blood group…), if any."""
    return PersonalProfile.objects.filter(record=record).first()


def declared_allergies(record: Record) -> list[SelfDeclaredItem]:
    """The allergies the patient declared, in the order they were added."""
    return list(record.self_declared.filter(kind=SelfDeclaredItem.Kind.ALLERGY).order_by("pk"))


def vaccinations_of(record: Record, *, newest_first: bool = False, limit: int | None = None) -> list[Vaccination]:
    """The record's vaccinations, oldest first (or newest first), at most `limit`."""
    order = ("-date", "-pk") if newest_first else ("date", "pk")
    return list(record.vaccinations.order_by(*order)[:limit])


def emergency_contacts_of(record: Record, *, limit: int | None = None) -> list[EmergencyContact]:
    """The people to notify, in the order the patient gave them."""
    return list(record.emergency_contacts.order_by("pk")[:limit])
