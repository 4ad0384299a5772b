"""The professional's documents screen (DOMAIN.md §3): the nine spaces, list and care-pathway
timeline, filters and full-text search — only what the policy lets this professional see —
and adding documents in two actions: drop (or pick) the files, then "Add".

Navigation that says nothing medical (space, view, current/archived, page) is in the query
string. The search words, the author, the specialty and the type are POSTed and kept in the
session for this record, then the page is shown again by GET: they never reach a URL.

Adding: the page (static/js/pro_add_documents.js) asks `document_suggestions` what each
dropped file is — type (and so space) from the file name and the professional's profession,
a title from the name, a date — shows it, editable, and posts everything with one "Add".
Without JavaScript the same form posts the files alone and the server makes the same
suggestion for each (dmp/document_suggestions.py)."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from dmp import services
from dmp.document_suggestions import suggest
from dmp.http import portal_view, record_view
from dmp.models import SPACE_OF_TYPE, DocumentType, Space
from dmp.policy import Action, decide
from dmp.screens import documents as screen
from dmp.screens.documents import safe_next
from dmp.selectors import record_document_for_action

from ._common import render_record_page

# A result kept from the patient until announced becomes visible by itself after this many days.
WITHHELD_DAYS = (7, 15, 30)
DEFAULT_WITHHELD_DAYS = 15
FILE_NAME_MAX = 255


def _withheld_choices() -> list[tuple[int, str]]:
    return [(n, ngettext("%(n)d day", "%(n)d days", n) % {"n": n}) for n in WITHHELD_DAYS]


def professional_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The types a professional may add, grouped by space (the personal space is the patient's)."""
    return [
        (space_label, [(t, label) for t, label in DocumentType.choices if SPACE_OF_TYPE[t] == space])
        for space, space_label in Space.choices if space != Space.PERSONAL
    ]


# ---------------------------------------------------------------------------------------------
# The list: the screen shared with the patient's portal (dmp/screens/documents.py)


def _releasable(actor, record, documents: list) -> None:
    """What the page says about each document: the policy answers, the template only shows."""
    now = timezone.now()
    for document in documents:
        document.withheld_now = document.is_withheld_from_patient(now)
        document.releasable = document.withheld_now and bool(decide(actor, Action.RELEASE_DOCUMENT, document))


SCREEN = screen.DocumentsScreen(
    list_url="portal_pro:documents",
    document_url=lambda record, d: reverse("portal_pro:document_file", args=[d.pk]),
    template="portal_pro/documents/list.html",
    base_template="portal_pro/base_record.html",
    session_prefix="pro_documents_filters",
    extra_filters=(screen.DOC_TYPE,),
    row_actions=_releasable,
    row_actions_template="portal_pro/documents/_release.html",
    row_actions_in_timeline=True,
    row_tags_template="portal_pro/documents/_row_tags.html",
    new_tab=True,
)


@require_http_methods(["GET", "POST"])
@record_view("pro")
def documents(request, actor, record):
    """The record's documents this professional may read. GET shows them (one audit entry,
    the record read); POST sets (or clears) the filters and search, then comes back by GET."""
    return SCREEN.respond(request, actor, record, render=render_record_page)


# ---------------------------------------------------------------------------------------------
# Adding documents


class AddDocumentsForm(forms.Form):
    """The files and what applies to all of them. What is said of each file (type, title,
    date) comes as lists beside it from the page's script (`file_type`, `file_title`,
    `file_date`, in the files' order); without it, `doc_type` and `act_date` apply to every
    file, and where they are left empty the server suggests from each file's name."""

    files = screen.MultipleFileField(label=gettext_lazy("Files (PDF, JPEG, PNG or CDA XML)"), error_messages={
        "required": gettext_lazy("Choose at least one file."),
    })
    doc_type = forms.ChoiceField(
        label=gettext_lazy("Type"), required=False,
        choices=[("", gettext_lazy("Suggested from each file's name")), *professional_type_choices()],
    )
    act_date = forms.DateField(label=gettext_lazy("Date of the act"), required=False,
                               help_text=gettext_lazy("Empty: the date written in the file name, else today."),
                               widget=forms.DateInput(attrs={"type": "date"}))
    withheld = forms.BooleanField(label=gettext_lazy("Not yet visible to the patient until I announce it"),
                                  required=False)
    withheld_days = forms.TypedChoiceField(
        label=gettext_lazy("Visible to the patient by itself after"), coerce=int, initial=DEFAULT_WITHHELD_DAYS,
        required=False, empty_value=DEFAULT_WITHHELD_DAYS,
        choices=_withheld_choices,
    )

    def clean_act_date(self):
        value = self.cleaned_data["act_date"]
        if value and value > timezone.localdate():
            raise forms.ValidationError(_("The date cannot be in the future."))
        return value


_PRO_TYPES = {t for _space, types in professional_type_choices() for t, _label in types}


def _per_file(values: list[str], count: int) -> list[str]:
    """One value per file, or none at all (the page without its script sends none)."""
    return values if len(values) == count else [""] * count


def _new_documents(request, form: AddDocumentsForm, profession: str) -> tuple[list, list[tuple[str, str]]]:
    """What to store for each posted file: what the page said of it, else the form's values
    for all, else the suggestion from its name. Errors are named by file."""
    files = form.cleaned_data["files"][:services.documents.MAX_FILES_AT_ONCE + 1]
    today = timezone.localdate()
    types = _per_file(request.POST.getlist("file_type"), len(files))
    titles = _per_file(request.POST.getlist("file_title"), len(files))
    dates = _per_file(request.POST.getlist("file_date"), len(files))
    new, errors = [], []
    for upload, doc_type, title, act_date in zip(files, types, titles, dates, strict=True):
        name = (upload.name or "")[:FILE_NAME_MAX]
        guess = suggest(name, profession=profession, today=today)
        doc_type = doc_type or form.cleaned_data["doc_type"] or guess.doc_type
        if doc_type not in _PRO_TYPES:
            errors.append((name, _("Choose a type of document.")))
            continue
        try:
            when = date.fromisoformat(act_date) if act_date else (form.cleaned_data["act_date"] or guess.act_date)
        except ValueError:
            errors.append((name, _("Enter a valid date.")))
            continue
        if when > today:
            errors.append((name, _("The date cannot be in the future.")))
            continue
        # Never more than the limit + 1 byte in memory: the service refuses "too large" from that.
        content = upload.read(settings.DOCUMENT_MAX_BYTES + 1)
        new.append(services.NewDocument(name, content, doc_type, " ".join(title.split()) or guess.title, when))
    return new, errors


def _added_message(added, withheld_until) -> str:
    listed = "; ".join(
        _("“%(title)s”: %(type)s, in %(space)s") % {
            "title": d.title, "type": d.get_doc_type_display(), "space": d.get_space_display()}
        for d in added
    )
    message = ngettext("%(n)d document added — %(list)s.", "%(n)d documents added — %(list)s.", len(added)) % {
        "n": len(added), "list": listed}
    if withheld_until:
        message += " " + _("Not visible to the patient until you announce it, at the latest on %(date)s.") % {
            "date": date_format(timezone.localtime(withheld_until), "SHORT_DATE_FORMAT")}
    return message


@require_http_methods(["GET", "POST"])
@record_view("pro")
def documents_add(request, actor, record):
    """Add one or several files in one go. The page's script posts with X-Requested-With and
    gets JSON: where to go when all went well, the errors otherwise. Without the script, the
    same form posts and comes back to where it was, or shows this page with what went wrong."""
    posted = request.method == "POST"
    wants_json = request.headers.get("X-Requested-With") == "XMLHttpRequest"
    form = AddDocumentsForm(request.POST if posted else None, request.FILES if posted else None)
    file_errors: list[tuple[str, str]] = []
    next_url = safe_next(request, reverse("portal_pro:record", args=[record.pk]))
    if posted and form.is_valid():
        new, file_errors = _new_documents(request, form, actor.professional.profession)
        withheld_until = None
        if form.cleaned_data["withheld"]:
            withheld_until = timezone.now() + timedelta(days=form.cleaned_data["withheld_days"])
        if not file_errors:
            added, file_errors = screen.add_files(form, lambda: services.document_add_batch(
                actor=actor, record=record, documents=new, withheld_until=withheld_until))
            if added:
                messages.success(request, _added_message(added, withheld_until))
                if wants_json:
                    return JsonResponse({"location": next_url})
                return redirect(next_url)
    if posted and wants_json:
        errors = [f"{name}: {message}" for name, message in file_errors]
        errors += [str(e) for field_errors in form.errors.values() for e in field_errors]
        return JsonResponse({"errors": errors}, status=400)
    return render_record_page(request, "portal_pro/documents/add.html", actor, record, {
        "add_form": form,
        "add_file_errors": file_errors,
        "add_next": next_url,
    }, section="documents", status=400 if posted else 200)


@require_POST
@portal_view("pro")
def document_suggestions(request, actor):
    """What each file about to be added is, guessed from its name and the professional's
    profession: JSON, one suggestion per `names` value, in order. The names are POSTed (they
    may say what the document is about); nothing about any patient is read or stored."""
    names = [name[:FILE_NAME_MAX] for name in request.POST.getlist("names")[:services.documents.MAX_FILES_AT_ONCE]]
    today = timezone.localdate()
    profession = actor.professional.profession
    return JsonResponse({"suggestions": [suggest(name, profession=profession, today=today).as_json()
                                         for name in names]})


@require_POST
@portal_view("pro")
def document_release(request, actor, pk: int, doc: int):
    """The author makes a result they kept from the patient visible now (after announcing it)."""
    document = record_document_for_action(actor, pk, doc)
    try:
        services.document_release(actor=actor, document=document)
    except services.InvalidInput as invalid:
        messages.info(request, str(invalid))
    else:
        messages.success(request, _("“%(title)s” is now visible to the patient.") % {"title": document.title})
    return redirect(safe_next(request, reverse("portal_pro:documents", args=[pk])))


urlpatterns = [
    path("records/<int:pk>/documents/", documents, name="documents"),
    path("records/<int:pk>/documents/add/", documents_add, name="documents_add"),
    path("records/<int:pk>/documents/<int:doc>/release/", document_release, name="document_release"),
    path("documents/suggestions/", document_suggestions, name="document_suggestions"),
]
