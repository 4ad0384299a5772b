"""Personal data the patient manages (DOMAIN.md §2 "Personal data", 002 annex A): contact
details, people to notify in an emergency, the trusted person, advance directives, the
statement on organ donation, blood group, vaccinations, self-declared allergies, history and
operations, personal notes.

Every write is `Action.EDIT_PERSONAL_DATA` on the record, which the policy gives the holder and
their legal representative only. The policy is asked before anything else; a refusal is
written to the audit log at once, while the entry for an allowed edit is written in the same
transaction as the change, so an edit turned down for bad input leaves no "edited" line in the
history and a change never exists without its entry (`dmp/access_log.py`; the holder's own
edits are not logged, as everywhere).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import access_log, pdf
from ..models import (
    Document,
    DocumentType,
    EmergencyContact,
    PersonalProfile,
    Record,
    SelfDeclaredItem,
    User,
    Vaccination,
)
from ..models.people import CONTACT_TYPES, normalise_phone, parse_phone
from ..notifications import notify
from ..policy import Action, Actor, Decision, Standing, record_access
from . import EditConflict, InvalidInput, InvalidInputCode, permit
from .documents import document_add

security_log = logging.getLogger("dmp.security")

# Caps on the list-like sections: generous for a person, small enough that nobody fills a
# record with thousands of rows.
MAX_EMERGENCY_CONTACTS = 10
MAX_VACCINATIONS = 300
MAX_SELF_DECLARED = 200
MAX_LANGUAGES = 12
MAX_NOTES = 5000
MAX_ADDRESS = 500
MAX_ANSWER = 2000


# --- the policy question, asked first -------------------------------------------------------


def _may_edit(actor: Actor, record: Record, section: str) -> Decision:
    """Ask the policy before anything else; a refusal is logged now and raised."""
    return permit(actor, Action.EDIT_PERSONAL_DATA, record, object_id=section)


def _adults_only(record: Record) -> None:
    """Advance directives are written by an adult (French public health code, art. L1111-11:
    "toute personne majeure"): nobody writes them for, or asks them of, a minor."""
    if record.is_minor():
        raise InvalidInput(_("Advance directives are written by adults only (from 18)."),
                           code=InvalidInputCode.NOT_ALLOWED)


def _log_edit(actor: Actor, decision: Decision, record: Record, section: str) -> None:
    """The audit entry of an edit that happened (a representative's: the holder's are not
    logged). Called inside the transaction that writes the change."""
    access_log.write(actor, Action.EDIT_PERSONAL_DATA, decision, record, record=record, object_id=section)


def _lock(record: Record) -> None:
    """Lock the record's row, so two requests adding rows at once cannot both pass a cap."""
    list(Record.objects.select_for_update().filter(pk=record.pk).values_list("pk", flat=True))


def _profile(record: Record) -> PersonalProfile:
    # Records built before profiles existed (or outside record_create) get one on first edit.
    profile, _created = PersonalProfile.objects.select_for_update().get_or_create(record=record)
    return profile


# --- optimistic concurrency ----------------------------------------------------------------------
# A section edited from two devices (the patient's phone and computer, the patient and their
# representative) must not lose the first save to a form opened before it. The form carries a
# fingerprint of the section's values as it showed them (`personal_section_version`); the
# service compares it with the values it reads under its row lock, and refuses (EditConflict)
# when they changed. A fingerprint of the section, not a counter on the profile row: an edit of
# the notes does not turn away a form of the blood group opened at the same time, and no
# migration is needed. The list sections (contacts, vaccinations, declared items) only add and
# remove rows, which overwrite nothing.

VERSIONED_SECTIONS = ("contact", "trusted_person", "organ_donation", "blood_group", "notes")


def _section_values(section: str, record: Record, profile: PersonalProfile, *, email: str = "",
                    phone: str = "") -> dict:
    """The saved values of a section, named as its service's arguments. For the contact
    details, `email` and `phone` are the holder's account's when there is one (as shown)."""
    if section == "contact":
        return {"email": email, "phone": phone, "postal_address": record.postal_address,
                "preferred_language": record.preferred_language, "languages": list(record.languages)}
    if section == "trusted_person":
        return {"name": profile.trusted_person_name, "relation": profile.trusted_person_relation,
                "phone": profile.trusted_person_phone}
    if section == "organ_donation":
        return {"statement": profile.organ_donation}
    if section == "blood_group":
        return {"blood_group": profile.blood_group}
    if section == "notes":
        return {"notes": profile.notes}
    raise ValueError(f"not a versioned section: {section}")


def _fingerprint(values: dict) -> str:
    # Not a secret: it only tells whether the values changed (the page shows them anyway).
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:32]


def personal_section_version(*, section: str, record: Record, profile: PersonalProfile, email: str = "",
                             phone: str = "") -> str:
    """The version of a section as a form shows it, to carry in the form (`base`): the values
    as the reader was given them (`personal_information_for`), no query."""
    return _fingerprint(_section_values(section, record, profile, email=email, phone=phone))


def _check_base(base: str | None, section: str, record: Record, profile: PersonalProfile, *, email: str = "",
                phone: str = "") -> None:
    """Refuse a save whose form was opened on other values than those saved now (read under
    the lock the caller holds). `base` None: a caller that did not read the section first."""
    if base is None:
        return
    values = _section_values(section, record, profile, email=email, phone=phone)
    if base != _fingerprint(values):
        raise EditConflict(
            _("This section was changed since you opened it: nothing of yours is saved yet. What is saved now "
              "is shown beside what you typed: correct the form if needed, then save again."),
            latest=values, version=_fingerprint(values))


# --- validation helpers ------------------------------------------------------------------------


def _text(value: str | None, *, limit: int, label: str | Promise, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(_("Fill in: %(field)s.") % {"field": label}, code=InvalidInputCode.MISSING)
    if len(value) > limit:
        raise InvalidInput(
            _("%(field)s is too long (at most %(limit)d characters).") % {"field": str(label).capitalize(),
                                                                           "limit": limit},
            code=InvalidInputCode.LIMIT,
        )
    return value


def _mobile(value: str) -> str:
    """The account's mobile phone, where login codes go: international form."""
    try:
        return normalise_phone(value)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code=InvalidInputCode.INVALID) from exc


def _contact_phone(value: str) -> str:
    """A relative's phone: a mobile as for the account, or a landline, French or with its
    country code, valid for its country (E.164)."""
    phone = parse_phone(value, CONTACT_TYPES)
    if phone is None:
        raise InvalidInput(_(
            "This phone number is not valid: type a French number such as 06 12 34 56 78 or 01 23 45 67 89, "
            "or a number with its country code, e.g. +32 470 12 34 56."
        ), code=InvalidInputCode.INVALID)
    return phone


def _email(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError as exc:
        raise InvalidInput(_("This e-mail address is not valid."), code=InvalidInputCode.INVALID) from exc
    if len(value) > 254:
        raise InvalidInput(_("This e-mail address is not valid."), code=InvalidInputCode.INVALID)
    return value


def _past_date(value: date | None, record: Record, *, label: str | Promise) -> date:
    if value is None:
        raise InvalidInput(_("Fill in: %(field)s.") % {"field": label}, code=InvalidInputCode.MISSING)
    if value > timezone.localdate():
        raise InvalidInput(_("The date cannot be in the future."), code=InvalidInputCode.INVALID)
    if value < record.birth_date:
        raise InvalidInput(_("The date cannot be before the date of birth."), code=InvalidInputCode.INVALID)
    return value


# --- contact details ---------------------------------------------------------------------------


def record_contact_update(
    *,
    actor: Actor,
    record: Record,
    email: str,
    phone: str,
    postal_address: str,
    languages: list[str],
    preferred_language: str,
    base: str | None = None,
) -> list[str]:
    """Change the record's contact details and languages. The e-mail address and mobile phone
    are also the holder's account's: login codes and notifications go there, so when one of
    them changes the holder is told at the new AND the former details — a session taken over
    by someone else must not silently move the login to their phone. Returns which of
    "email" / "phone" changed. `base`: the section's version the form was opened on
    (`personal_section_version`); changed since, nothing is saved (EditConflict)."""
    decision = _may_edit(actor, record, "contact")
    email = _email(email)
    phone = _mobile(phone) if (phone or "").strip() else ""
    postal_address = _text(postal_address, limit=MAX_ADDRESS, label=_("postal address"))
    codes = dict(settings.LANGUAGES)
    if preferred_language not in codes:
        raise InvalidInput(_("Choose a preferred language from the list."), code=InvalidInputCode.INVALID)
    spoken: list[str] = []
    for language in languages:
        language = _text(language, limit=40, label=_("language"))
        if language and language.casefold() not in {s.casefold() for s in spoken}:
            spoken.append(language)
    if len(spoken) > MAX_LANGUAGES:
        raise InvalidInput(_("Give at most %(count)d languages.") % {"count": MAX_LANGUAGES},
                           code=InvalidInputCode.LIMIT)
    now = timezone.now()
    # The account row is locked: a counter agent resetting the credentials at the same moment
    # must not have their new phone overwritten by a page loaded before.
    with transaction.atomic():
        holder = User.objects.select_for_update().get(pk=record.holder_id) if record.holder_id else None
        if base is not None:
            # The record's row as saved now, locked, not as the request loaded it.
            saved = Record.objects.select_for_update().get(pk=record.pk)
            _check_base(base, "contact", saved, PersonalProfile(record=saved),
                        email=holder.email if holder else saved.email, phone=holder.phone if holder else saved.phone)
        former_email, former_phone = (holder.email, holder.phone) if holder else (record.email, record.phone)
        if holder is not None and not (email or phone) and (former_email or former_phone):
            raise InvalidInput(_(
                "Keep an e-mail address or a mobile phone: the login code is sent there. Without either, "
                "logging in is only possible after a visit to a counter."
            ), code=InvalidInputCode.NOT_ALLOWED)
        changed = [kind for kind, new, old in (("email", email, former_email), ("phone", phone, former_phone))
                   if new != old]
        record.email, record.phone, record.postal_address = email, phone, postal_address
        record.languages, record.preferred_language = spoken, preferred_language
        record.save(update_fields=["email", "phone", "postal_address", "languages", "preferred_language"])
        if holder is not None:
            holder.email, holder.phone, holder.preferred_language = email, phone, preferred_language
            holder.save(update_fields=["email", "phone", "preferred_language"])
            record.holder = holder
            if changed:
                notify(holder, "contact_changed", when=now,
                       email_changed="email" in changed, phone_changed="phone" in changed,
                       by_representative=record_access(actor, record).standing is Standing.REPRESENTATIVE,
                       also_email=former_email if "email" in changed else "",
                       also_phone=former_phone if "phone" in changed else "")
        _log_edit(actor, decision, record, "contact")
    if changed:
        # Ids only: never the address or the number.
        security_log.info("contact details changed: actor_user=%s record=%s changed=%s",
                          actor.user.pk, record.pk, ",".join(changed))
    return changed


# --- people to notify in an emergency ------------------------------------------------------------


def emergency_contact_add(*, actor: Actor, record: Record, name: str, relation: str, phone: str) -> EmergencyContact:
    """Add a person to notify in an emergency."""
    decision = _may_edit(actor, record, "emergency_contacts")
    name = _text(name, limit=150, label=_("name"), required=True)
    relation = _text(relation, limit=60, label=_("relationship"))
    phone = _contact_phone(_text(phone, limit=30, label=_("phone"), required=True))
    with transaction.atomic():
        _lock(record)
        if record.emergency_contacts.count() >= MAX_EMERGENCY_CONTACTS:
            raise InvalidInput(_("At most %(count)d people can be listed.") % {"count": MAX_EMERGENCY_CONTACTS},
                               code=InvalidInputCode.LIMIT)
        contact = EmergencyContact.objects.create(record=record, name=name, relation=relation, phone=phone)
        _log_edit(actor, decision, record, "emergency_contacts")
    return contact


def emergency_contact_remove(*, actor: Actor, record: Record, contact_id: int) -> None:
    """Remove a person to notify in an emergency."""
    _remove(actor, record, record.emergency_contacts, contact_id, "emergency_contacts")


def _remove(actor: Actor, record: Record, rows: models.QuerySet, row_id: int, section: str,
            refuse: Callable[[models.Model], str] | None = None) -> None:
    """Delete one row of a list section, found through the record (another record's row is
    simply not found)."""
    decision = _may_edit(actor, record, section)
    with transaction.atomic():
        row = rows.select_for_update().filter(pk=row_id).first()
        if row is None:
            raise InvalidInput(_("This line is no longer there: it may have been removed already."),
                               code=InvalidInputCode.STATE)
        refusal = refuse(row) if refuse is not None else ""
        if refusal:
            raise InvalidInput(refusal, code=InvalidInputCode.NOT_ALLOWED)
        row.delete()
        _log_edit(actor, decision, record, section)


# --- trusted person ---------------------------------------------------------------------------


def trusted_person_set(*, actor: Actor, record: Record, name: str, phone: str, relation: str,
                       base: str | None = None) -> PersonalProfile:
    """Name the trusted person (personne de confiance), or remove them with every field empty.
    `base`: as for `record_contact_update`."""
    decision = _may_edit(actor, record, "trusted_person")
    name = _text(name, limit=150, label=_("name"))
    relation = _text(relation, limit=60, label=_("relationship"))
    phone = _text(phone, limit=30, label=_("phone"))
    if (phone or relation) and not name:
        raise InvalidInput(_("Give the trusted person's name."), code=InvalidInputCode.MISSING)
    phone = _contact_phone(phone) if phone else ""
    with transaction.atomic():
        profile = _profile(record)
        _check_base(base, "trusted_person", record, profile)
        profile.trusted_person_name, profile.trusted_person_phone = name, phone
        profile.trusted_person_relation = relation
        profile.save(update_fields=["trusted_person_name", "trusted_person_phone", "trusted_person_relation"])
        _log_edit(actor, decision, record, "trusted_person")
    return profile


# --- advance directives --------------------------------------------------------------------------


class DirectiveChoice(models.TextChoices):
    WANT = "want", gettext_lazy("I want this")
    REFUSE = "refuse", gettext_lazy("I do not want this")
    DOCTORS_DECIDE = "doctors_decide", gettext_lazy(
        "I let the doctors decide, after they speak with my trusted person or my family"
    )


@dataclass(frozen=True)
class DirectiveQuestion:
    """One question of the guided form, after the French official model (arrêté of 3 August
    2016), in plain words. `choice` questions are answered want / do not want / let the doctors
    decide, with optional details; the others are free text."""

    key: str
    title: str | Promise
    question: str | Promise
    choice: bool = True


DIRECTIVE_QUESTIONS: tuple[DirectiveQuestion, ...] = (
    DirectiveQuestion(
        "life_sustaining", gettext_lazy("Treatments that keep me alive"),
        gettext_lazy("If I am at the end of my life, or can no longer say what I want, and there is no reasonable "
                     "hope that I will get better: treatments that keep me alive artificially (for example dialysis, "
                     "an operation, medicines that support the heart)."),
    ),
    DirectiveQuestion(
        "resuscitation", gettext_lazy("Resuscitation"),
        gettext_lazy("If my heart or my breathing stops: heart massage and electric shocks to try to bring me "
                     "back."),
    ),
    DirectiveQuestion(
        "ventilation", gettext_lazy("A machine that breathes for me"),
        gettext_lazy("Artificial ventilation: a machine that breathes for me, through a tube in my throat or a "
                     "mask."),
    ),
    DirectiveQuestion(
        "nutrition_hydration", gettext_lazy("Artificial feeding and fluids"),
        gettext_lazy("Food and fluids given through a tube into my stomach or a drip into a vein, when I can no "
                     "longer eat or drink."),
    ),
    DirectiveQuestion(
        "sedation", gettext_lazy("Relief of pain and deep sleep at the end of life"),
        gettext_lazy("If my pain or suffering cannot be relieved in any other way: medicines that relieve it even "
                     "if they may shorten my life, and being put into a deep sleep until death (deep and continuous "
                     "sedation)."),
    ),
    DirectiveQuestion(
        "place_of_end_of_life", gettext_lazy("Where I would like to spend the end of my life"),
        gettext_lazy("At home, in hospital, in a care home, close to someone…"), choice=False,
    ),
    DirectiveQuestion(
        "other_wishes", gettext_lazy("My other wishes"),
        gettext_lazy("Anything else that matters to me: religious or personal beliefs, people I want near me, "
                     "what I fear, what comforts me…"), choice=False,
    ),
    DirectiveQuestion(
        "trusted_person", gettext_lazy("My trusted person"),
        gettext_lazy("The person who will speak for me if I cannot, and whom the doctors will consult."),
        choice=False,
    ),
)


def _details_key(question: DirectiveQuestion) -> str:
    return f"{question.key}_details"


DIRECTIVE_FIELDS = frozenset(
    [q.key for q in DIRECTIVE_QUESTIONS] + [_details_key(q) for q in DIRECTIVE_QUESTIONS if q.choice]
)


@dataclass(frozen=True)
class _Answer:
    title: str
    question: str
    choice: str
    text: str


def _directive_answers(answers: Mapping[str, str]) -> list[_Answer]:
    """The answers given, checked, with their labels in the current language."""
    unknown = set(answers) - DIRECTIVE_FIELDS
    if unknown:
        raise TypeError(f"unknown advance-directive fields: {sorted(unknown)}")
    given = []
    for question in DIRECTIVE_QUESTIONS:
        value = (answers.get(question.key) or "").strip()
        if question.choice:
            if value and value not in DirectiveChoice.values:
                raise InvalidInput(_("Choose one of the answers offered for: %(question)s")
                                   % {"question": question.title}, code=InvalidInputCode.INVALID)
            details = _text(answers.get(_details_key(question)), limit=MAX_ANSWER, label=question.title)
            if value or details:
                choice = str(DirectiveChoice(value).label) if value else ""
                given.append(_Answer(str(question.title), str(question.question), choice, details))
        else:
            limit = 150 if question.key == "trusted_person" else MAX_ANSWER
            text = _text(value, limit=limit, label=question.title)
            if text:
                given.append(_Answer(str(question.title), str(question.question), "", text))
    if not given:
        raise InvalidInput(_("Answer at least one question: the directives are empty."), code=InvalidInputCode.MISSING)
    return given


def _directives_language(record: Record) -> str:
    codes = dict(settings.LANGUAGES)
    return record.preferred_language if record.preferred_language in codes else settings.LANGUAGE_CODE


def _directives_text(given: list[_Answer]) -> str:
    """The answers as the plain text professionals read in the record."""
    blocks = []
    for answer in given:
        lines = [f"{answer.title}: {answer.choice}" if answer.choice else f"{answer.title}:"]
        if answer.text:
            lines.append(answer.text)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _render_directives_pdf(context: dict) -> bytes:
    return pdf.write_pdf(render_to_string("documents/advance_directives.html", context))


def advance_directives_write(*, actor: Actor, record: Record, answers: Mapping[str, str]) -> Document:
    """The guided form: the answers are kept as text in the personal data (what a professional
    reads at a glance) and as a dated, named PDF added to the personal space. Each signing is
    a new document; earlier ones stay in the record, nothing is replaced silently. Written in
    the record's preferred language."""
    decision = _may_edit(actor, record, "advance_directives")
    _adults_only(record)
    now = timezone.now()
    _directive_answers(answers)  # refused input is told in the language of the person typing
    with translation.override(_directives_language(record)):
        given = _directive_answers(answers)
        text = _directives_text(given)
        today = timezone.localdate(now)
        title = " – ".join((_("Advance directives"), formats.date_format(today, "SHORT_DATE_FORMAT")))
        by_representative = record_access(actor, record).standing is Standing.REPRESENTATIVE
        content = _render_directives_pdf({
            "record": record, "answers": given, "when": now, "title": title,
            "written_by": actor.user.get_full_name() or actor.user.username,
            "by_representative": by_representative,
        })
    with transaction.atomic():
        profile = _profile(record)
        profile.advance_directives, profile.advance_directives_updated_at = text, now
        profile.save(update_fields=["advance_directives", "advance_directives_updated_at"])
        document = document_add(actor=actor, record=record, content=content,
                                doc_type=DocumentType.ADVANCE_DIRECTIVES, title=title, act_date=today)
        _log_edit(actor, decision, record, "advance_directives")
    return document


def advance_directives_upload(
    *, actor: Actor, record: Record, content: bytes, signed_on: date | None, title: str = ""
) -> Document:
    """Directives written elsewhere (on paper, on the official form), scanned or as a PDF, added
    to the personal space as an advance-directives document. PDF, PNG or JPEG only."""
    decision = _may_edit(actor, record, "advance_directives")
    _adults_only(record)
    signed_on = _past_date(signed_on, record, label=_("date signed"))
    with translation.override(_directives_language(record)):
        title = _text(title, limit=200, label=_("title")) or _("Advance directives")
    with transaction.atomic():
        document = document_add(actor=actor, record=record, content=content,
                                doc_type=DocumentType.ADVANCE_DIRECTIVES, title=title, act_date=signed_on)
        _log_edit(actor, decision, record, "advance_directives")
    return document


# --- organ donation, blood group, notes ----------------------------------------------------------


def organ_donation_state(*, actor: Actor, record: Record, statement: str, base: str | None = None) -> PersonalProfile:
    """The statement on organ and tissue donation, dated. "Not stated" clears the date. `base`:
    as for `record_contact_update`."""
    decision = _may_edit(actor, record, "organ_donation")
    if statement not in PersonalProfile.OrganDonation.values:
        raise InvalidInput(_("Choose one of the statements offered."), code=InvalidInputCode.INVALID)
    with transaction.atomic():
        profile = _profile(record)
        _check_base(base, "organ_donation", record, profile)
        profile.organ_donation = statement
        profile.organ_donation_stated_at = (
            None if statement == PersonalProfile.OrganDonation.NOT_STATED else timezone.now()
        )
        profile.save(update_fields=["organ_donation", "organ_donation_stated_at"])
        _log_edit(actor, decision, record, "organ_donation")
    return profile


def blood_group_set(*, actor: Actor, record: Record, blood_group: str, base: str | None = None) -> PersonalProfile:
    """The blood group from the person's blood group card, or unknown. `base`: as for
    `record_contact_update`."""
    decision = _may_edit(actor, record, "blood_group")
    if blood_group not in PersonalProfile.BloodGroup.values:
        raise InvalidInput(_("Choose a blood group from the list."), code=InvalidInputCode.INVALID)
    with transaction.atomic():
        profile = _profile(record)
        _check_base(base, "blood_group", record, profile)
        profile.blood_group = blood_group
        profile.save(update_fields=["blood_group"])
        _log_edit(actor, decision, record, "blood_group")
    return profile


def personal_notes_set(*, actor: Actor, record: Record, notes: str, base: str | None = None) -> PersonalProfile:
    """The person's own notes. `base`: as for `record_contact_update`."""
    decision = _may_edit(actor, record, "notes")
    notes = _text(notes, limit=MAX_NOTES, label=_("personal notes"))
    with transaction.atomic():
        profile = _profile(record)
        _check_base(base, "notes", record, profile)
        profile.notes = notes
        profile.save(update_fields=["notes"])
        _log_edit(actor, decision, record, "notes")
    return profile


# --- vaccinations and self-declared items ---------------------------------------------------


def vaccination_add(
    *, actor: Actor, record: Record, vaccine: str, on: date | None, batch: str = ""
) -> Vaccination:
    """A vaccination the person declares (from their paper vaccination booklet)."""
    decision = _may_edit(actor, record, "vaccinations")
    vaccine = _text(vaccine, limit=120, label=_("vaccine"), required=True)
    on = _past_date(on, record, label=_("date"))
    batch = _text(batch, limit=40, label=_("batch number"))
    with transaction.atomic():
        _lock(record)
        if record.vaccinations.count() >= MAX_VACCINATIONS:
            raise InvalidInput(_("At most %(count)d vaccinations can be listed.") % {"count": MAX_VACCINATIONS},
                               code=InvalidInputCode.LIMIT)
        vaccination = Vaccination.objects.create(record=record, vaccine=vaccine, date=on, batch=batch,
                                                 declared_by_patient=True)
        _log_edit(actor, decision, record, "vaccinations")
    return vaccination


def vaccination_remove(*, actor: Actor, record: Record, vaccination_id: int) -> None:
    """Remove a vaccination the person declared. Those recorded by a professional stay: the
    person asks the professional to correct them."""
    _remove(actor, record, record.vaccinations, vaccination_id, "vaccinations",
            refuse=lambda row: "" if row.declared_by_patient else _(
                "A professional recorded this vaccination: ask them to correct it."))


def self_declared_item_add(
    *, actor: Actor, record: Record, kind: str, label: str, year: int | None = None
) -> SelfDeclaredItem:
    """An allergy, a past illness or an operation the person declares themselves."""
    decision = _may_edit(actor, record, "self_declared")
    if kind not in SelfDeclaredItem.Kind.values:
        raise InvalidInput(_("Choose what you declare: an allergy, an illness or an operation."),
                           code=InvalidInputCode.INVALID)
    label = _text(label, limit=200, label=_("description"), required=True)
    if year is not None and not record.birth_date.year <= year <= timezone.localdate().year:
        raise InvalidInput(_("The year must be between the year of birth and this year."),
                           code=InvalidInputCode.INVALID)
    with transaction.atomic():
        _lock(record)
        if record.self_declared.count() >= MAX_SELF_DECLARED:
            raise InvalidInput(_("At most %(count)d lines can be listed.") % {"count": MAX_SELF_DECLARED},
                               code=InvalidInputCode.LIMIT)
        item = SelfDeclaredItem.objects.create(record=record, kind=kind, label=label, year=year)
        _log_edit(actor, decision, record, "self_declared")
    return item


def self_declared_item_remove(*, actor: Actor, record: Record, item_id: int) -> None:
    """Remove a self-declared allergy, illness or operation."""
    _remove(actor, record, record.self_declared, item_id, "self_declared")


__all__ = [
    "DIRECTIVE_QUESTIONS", "DirectiveChoice", "DirectiveQuestion", "advance_directives_upload",
    "advance_directives_write", "blood_group_set", "emergency_contact_add", "emergency_contact_remove",
    "VERSIONED_SECTIONS", "organ_donation_state", "personal_notes_set", "personal_section_version",
    "record_contact_update", "self_declared_item_add",
    "self_declared_item_remove", "trusted_person_set", "vaccination_add", "vaccination_remove",
]
