"""The patient's information screen (DOMAIN.md §2 "Personal data", §3): one page that shows
every section of the personal data at a glance, and one form per section. Every change is one
POST to one service of dmp/services/personal.py, which asks the policy
(Action.EDIT_PERSONAL_DATA); reads go through `personal_information_for`
(Action.VIEW_PERSONAL_DATA). Lists (emergency contacts, vaccinations, self-declared items)
add and remove rows with plain forms: no JavaScript needed."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from dmp import services
from dmp.forms import ComparedLine
from dmp.http import record_view
from dmp.selectors.personal import language_name, personal_information_for, record_languages

from .. import information_forms as f
from ._common import render_record_page

T = "portal_patient/information/"


def _view(fn):
    """Every page here: logged in, GET or POST, never cached (personal data on a shared computer),
    called as `fn(request, actor, record)` with the record loaded through the policy."""
    return require_http_methods(["GET", "POST"])(record_view("patient")(fn))


@require_GET
@record_view("patient")
def information(request, actor, rec):
    info = personal_information_for(actor, rec)
    return render_record_page(request, T + "information.html", actor, rec,
                              {"info": info, "spoken_languages": record_languages(rec),
                               "preferred_language": language_name(rec.preferred_language)},
                              section="information")


def _saved(request, form, save: Callable[[], object], message: str) -> bool:
    """Call the service; True if the change was made. A refusal is a 404 (it reveals nothing,
    dmp/http.py); bad input shows on the form (or at the top of the page without one), and
    nothing was changed."""
    try:
        save()
    except services.EditConflict:
        raise  # the section's page shows both sides (_edit)
    except services.InvalidInput as exc:
        if form is None:
            messages.error(request, str(exc))
        else:
            form.add_error(None, str(exc))
        return False
    messages.success(request, message)
    return True


def _to_page(rec, anchor: str):
    return redirect(f"{reverse('portal_patient:information', args=[rec.pk])}#{anchor}")


def _edit(request, actor, rec, *, template: str, form_class, initial: Callable, save: Callable, anchor: str,
          message: str, form_kwargs: Callable | None = None, versioned: str = ""):
    """One section's form: show it filled with the current values, save it, go back to the page.
    A `versioned` section's form carries the version it was opened on (`base`): saved over a
    change made since (another device, the representative), it is refused with 409, the saved
    values shown beside what was typed, which stays in the form. A POST without `base` (a form
    of a page served before it existed) is saved as before."""
    info = personal_information_for(actor, rec)
    kwargs = form_kwargs(actor, rec) if form_kwargs else {}
    base = (services.personal_section_version(section=versioned, record=rec, profile=info.profile,
                                              email=info.contact_email, phone=info.contact_phone)
            if versioned else None)
    conflict, status = None, 200
    if request.method == "POST":
        form = form_class(request.POST, request.FILES, **kwargs)
        sent = {"base": request.POST["base"]} if versioned and "base" in request.POST else {}
        # Shown again with an error, the form keeps the version it was opened on, not today's.
        base = sent.get("base", base)
        try:
            if form.is_valid() and _saved(request, form, lambda: save(actor, rec, form, **sent), message):
                return _to_page(rec, anchor)
        except services.EditConflict as newer:
            conflict, base, status = _conflict_lines(form, newer.latest), newer.version, 409
            form.add_error(None, str(newer))
    else:
        form = form_class(initial=initial(rec, info), **kwargs)
    return render_record_page(request, T + template, actor, rec,
                              {"form": form, "info": info, "base": base, "conflict": conflict},
                              section="information", status=status)


def _shown(field, value) -> str:
    """A value as the person reads it: a choice by its label, a list one item a line."""
    choices = dict(getattr(field, "choices", None) or ())
    values = value if isinstance(value, list | tuple) else [value]
    return "\n".join(str(choices.get(v, v)) for v in values if v not in (None, ""))


def _conflict_lines(form, saved: dict) -> list[ComparedLine]:
    """The lines of the comparison: each saved value beside the one typed (as the service
    received it), with the form's label."""
    typed = form.service_arguments() if hasattr(form, "service_arguments") else form.cleaned_data
    return [ComparedLine(str(form.fields[name].label), _shown(form.fields[name], typed.get(name)),
                         _shown(form.fields[name], value)) for name, value in saved.items()]


def _rows(request, actor, rec, *, template: str, form_class, add: Callable, remove: Callable, anchor: str):
    """A list section: its rows, each with a remove button, and a form to add one. Both stay on
    this page, so several rows can be added in a row."""
    form = form_class()
    if request.method == "POST":
        if "remove" in request.POST:
            try:
                row_id = int(request.POST["remove"])
            except ValueError:
                row_id = 0
            if _saved(request, None, lambda: remove(actor, rec, row_id), _("Removed.")):
                return redirect(request.path)
        else:
            form = form_class(request.POST)
            if form.is_valid() and _saved(request, form, lambda: add(actor, rec, form.cleaned_data), _("Added.")):
                return redirect(request.path)
    info = personal_information_for(actor, rec)
    return render_record_page(request, T + template, actor, rec, {"form": form, "info": info, "anchor": anchor},
                              section="information")


@_view
def contact(request, actor, rec):
    return _edit(
        request, actor, rec, template="contact.html", form_class=f.ContactForm, anchor="contact",
        initial=lambda rec, info: f.ContactForm.initial_for(rec, info),
        save=lambda actor, rec, form, **base: services.record_contact_update(actor=actor, record=rec, **base,
                                                                            **form.service_arguments()),
        versioned="contact",
        message=_("Your contact details are saved."),
    )


@_view
def trusted_person(request, actor, rec):
    return _edit(
        request, actor, rec, template="trusted_person.html", form_class=f.TrustedPersonForm, anchor="trusted-person",
        initial=lambda rec, info: f.TrustedPersonForm.initial_for(info.profile),
        save=lambda actor, rec, form, **base: services.trusted_person_set(actor=actor, record=rec, **base,
                                                                         **form.cleaned_data),
        versioned="trusted_person",
        message=_("Your trusted person is saved."),
    )


def _adults_only(rec) -> None:
    """Advance directives are not offered to a minor: the pages do not exist for their record
    (the services refuse too)."""
    if rec.is_minor():
        raise Http404


@_view
def advance_directives(request, actor, rec):
    _adults_only(rec)
    return _edit(
        request, actor, rec, template="advance_directives.html", form_class=f.AdvanceDirectivesForm,
        anchor="advance-directives",
        initial=lambda rec, info: {"trusted_person": info.profile.trusted_person_name},
        form_kwargs=lambda actor, rec: {"acting_as_representative": actor.own_record_id != rec.pk},
        save=lambda actor, rec, form: services.advance_directives_write(actor=actor, record=rec,
                                                                       answers=form.answers()),
        message=_("Your advance directives are saved, and the signed document is in your personal space."),
    )


@_view
def advance_directives_upload(request, actor, rec):
    _adults_only(rec)
    return _edit(
        request, actor, rec, template="directives_upload.html", form_class=f.DirectivesUploadForm,
        anchor="advance-directives", initial=lambda rec, info: {},
        save=lambda actor, rec, form: services.advance_directives_upload(
            actor=actor, record=rec, content=form.cleaned_data["file"].read(),
            signed_on=form.cleaned_data["signed_on"], title=form.cleaned_data["title"]),
        message=_("Your advance directives are added to your personal space."),
    )


@_view
def organ_donation(request, actor, rec):
    return _edit(
        request, actor, rec, template="organ_donation.html", form_class=f.OrganDonationForm, anchor="organ-donation",
        initial=lambda rec, info: {"statement": info.profile.organ_donation},
        save=lambda actor, rec, form, **base: services.organ_donation_state(
            actor=actor, record=rec, statement=form.cleaned_data["statement"], **base),
        versioned="organ_donation",
        message=_("Your statement on organ donation is saved."),
    )


@_view
def blood_group(request, actor, rec):
    return _edit(
        request, actor, rec, template="blood_group.html", form_class=f.BloodGroupForm, anchor="blood-group",
        initial=lambda rec, info: {"blood_group": info.profile.blood_group},
        save=lambda actor, rec, form, **base: services.blood_group_set(
            actor=actor, record=rec, blood_group=form.cleaned_data["blood_group"], **base),
        versioned="blood_group",
        message=_("Your blood group is saved."),
    )


@_view
def notes(request, actor, rec):
    return _edit(
        request, actor, rec, template="notes.html", form_class=f.NotesForm, anchor="notes",
        initial=lambda rec, info: {"notes": info.profile.notes},
        save=lambda actor, rec, form, **base: services.personal_notes_set(
            actor=actor, record=rec, notes=form.cleaned_data["notes"], **base),
        versioned="notes",
        message=_("Your notes are saved."),
    )


@_view
def emergency_contacts(request, actor, rec):
    return _rows(
        request, actor, rec, template="emergency_contacts.html", form_class=f.EmergencyContactForm,
        anchor="emergency-contacts",
        add=lambda actor, rec, data: services.emergency_contact_add(actor=actor, record=rec, **data),
        remove=lambda actor, rec, row: services.emergency_contact_remove(actor=actor, record=rec, contact_id=row),
    )


@_view
def vaccinations(request, actor, rec):
    return _rows(
        request, actor, rec, template="vaccinations.html", form_class=f.VaccinationForm, anchor="vaccinations",
        add=lambda actor, rec, data: services.vaccination_add(actor=actor, record=rec, vaccine=data["vaccine"],
                                                              on=data["date"], batch=data["batch"]),
        remove=lambda actor, rec, row: services.vaccination_remove(actor=actor, record=rec, vaccination_id=row),
    )


@_view
def declared(request, actor, rec):
    return _rows(
        request, actor, rec, template="declared.html", form_class=f.SelfDeclaredForm, anchor="declared",
        add=lambda actor, rec, data: services.self_declared_item_add(actor=actor, record=rec, **data),
        remove=lambda actor, rec, row: services.self_declared_item_remove(actor=actor, record=rec, item_id=row),
    )


_BASE = "records/<int:pk>/information/"
urlpatterns = [
    path(_BASE, information, name="information"),
    path(_BASE + "contact/", contact, name="information_contact"),
    path(_BASE + "emergency-contacts/", emergency_contacts, name="information_emergency_contacts"),
    path(_BASE + "trusted-person/", trusted_person, name="information_trusted_person"),
    path(_BASE + "advance-directives/", advance_directives, name="information_advance_directives"),
    path(_BASE + "advance-directives/upload/", advance_directives_upload,
         name="information_advance_directives_upload"),
    path(_BASE + "organ-donation/", organ_donation, name="information_organ_donation"),
    path(_BASE + "blood-group/", blood_group, name="information_blood_group"),
    path(_BASE + "vaccinations/", vaccinations, name="information_vaccinations"),
    path(_BASE + "declared/", declared, name="information_declared"),
    path(_BASE + "notes/", notes, name="information_notes"),
]
