"""The personal data of a record (DOMAIN.md §2 "Personal data"), in one authorised read."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from django.utils.text import capfirst
from django.utils.translation import get_language_info

from ..access_log import authorise_read
from ..models import (
    Document,
    DocumentType,
    EmergencyContact,
    PersonalProfile,
    Record,
    SelfDeclaredItem,
    Vaccination,
)
from ..policy import Action, Actor
from .records import documents_visible_to


@dataclass(frozen=True)
class PersonalInformation:
    profile: PersonalProfile
    emergency_contacts: list[EmergencyContact]
    vaccinations: list[Vaccination]
    self_declared: list[SelfDeclaredItem]
    # The latest advance-directives document the reader may open (a representative does not
    # see one the patient hid from representatives).
    directives_document: Document | None
    # Where the holder's login code goes: "phone", "email" or "" (nowhere: a counter helps).
    login_code_by: str
    # The e-mail address and mobile phone: the holder's account's when there is one (where
    # codes and notifications go; the services keep the record's copy in step), else the record's.
    contact_email: str
    contact_phone: str
    # Advance directives are for adults (a minor is not asked to write them, docs/minors.md).
    directives_offered: bool = True

    def _kind(self, kind: str) -> list[SelfDeclaredItem]:
        return [item for item in self.self_declared if item.kind == kind]

    @property
    def allergies(self) -> list[SelfDeclaredItem]:
        return self._kind(SelfDeclaredItem.Kind.ALLERGY)

    @property
    def history(self) -> list[SelfDeclaredItem]:
        return self._kind(SelfDeclaredItem.Kind.HISTORY)

    @property
    def operations(self) -> list[SelfDeclaredItem]:
        return self._kind(SelfDeclaredItem.Kind.OPERATION)

    @property
    def has_advance_directives(self) -> bool:
        return bool(self.profile.advance_directives.strip() or self.directives_document)

    @property
    def advance_directives_missing(self) -> bool:
        """Worth asking for: an adult who has not written any."""
        return self.directives_offered and not self.has_advance_directives

    @property
    def has_trusted_person(self) -> bool:
        return bool(self.profile.trusted_person_name)

    @property
    def organ_donation_stated(self) -> bool:
        return self.profile.organ_donation != PersonalProfile.OrganDonation.NOT_STATED


def language_name(code: str) -> str:
    """A language as its speakers write it, and in the reader's language when that differs
    ("فارسی (Persian)"); a name typed by the person is shown as typed."""
    try:
        info = get_language_info(code)
    except KeyError:
        return code
    local, translated = capfirst(info["name_local"]), str(info["name_translated"])
    return local if local.casefold() == translated.casefold() else f"{local} ({translated})"


def personal_information_for(actor: Actor, record: Record) -> PersonalInformation:
    """Everything of the record's personal data the actor may read, in a fixed number of
    queries. Asked of the policy (`Action.VIEW_PERSONAL_DATA`) and audited when the reader is
    not the patient; Http404 if refused."""
    if not authorise_read(actor, Action.VIEW_PERSONAL_DATA, record):
        raise Http404
    profile = PersonalProfile.objects.filter(record=record).first() or PersonalProfile(record=record)
    directives = (
        documents_visible_to(actor, record)
        .filter(doc_type=DocumentType.ADVANCE_DIRECTIVES)
        .order_by("-added_at", "-pk")
        .first()
    )
    from ..accounts.stages import code_destination  # allauth's models: import once apps are ready

    holder = record.holder
    destination = code_destination(holder) if holder is not None else None
    return PersonalInformation(
        profile=profile,
        emergency_contacts=list(record.emergency_contacts.order_by("pk")),
        vaccinations=list(record.vaccinations.order_by("-date", "-pk")),
        self_declared=declared_in_order(record.self_declared.all()),
        directives_document=directives,
        login_code_by=destination[0] if destination else "",
        contact_email=holder.email if holder is not None else record.email,
        contact_phone=holder.phone if holder is not None else record.phone,
        directives_offered=not record.is_minor(),
    )


def record_languages(record: Record) -> list[str]:
    """The languages the person speaks, named for the reader."""
    return [language_name(code) for code in record.languages]


__all__ = ["PersonalInformation", "language_name", "personal_information_for", "record_languages"]


def declared_in_order(items) -> list[SelfDeclaredItem]:
    """Self-declared items by kind, latest year first (no year last), then label. Sorted here:
    the labels are encrypted at rest, the database cannot order them."""
    return sorted(items, key=lambda item: (item.kind, item.year is None, -(item.year or 0), item.label.casefold(),
                                           item.pk))
