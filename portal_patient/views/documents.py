"""The patient's documents screen (DOMAIN.md §3 "patient documents"): the nine spaces; list,
care-pathway timeline and thumbnails; filters and full-text search; adding to the personal
space; hide, archive, "my selection"; on each document, who can see it and why; the types
hidden from professionals by default.

Navigation that says nothing medical (space, view, current/archived, selection, page) is in
the query string. The search words, the author and the specialty are POSTed and kept in the
session for this record, then the page is shown again by GET: they never reach a URL, and
the back button, the tabs and the views keep working."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.cda.reading import is_cda, reading_of
from dmp.http import (
    decrypted_file_response,
    document_original_response,
    portal_view,
    protected_file_response,
    record_view,
)
from dmp.models import SPACE_OF_TYPE, DocumentType, Space
from dmp.policy import Clause, Viewer, who_may_see
from dmp.screens import documents as screen
from dmp.screens.documents import safe_next
from dmp.selectors import get_record_document_for, offers_what_representatives_see, record_document_for_action
from dmp.selectors.documents import document_selected_by

from ._common import render_record_page

PERSONAL_TYPES = [(t, label) for t, label in DocumentType.choices if SPACE_OF_TYPE[t] == Space.PERSONAL]

# The screen itself (filters, session, navigation, pages, tabs) is shared with the
# professionals' portal: dmp/screens/documents.py.
SCREEN = screen.DocumentsScreen(
    list_url="portal_patient:documents",
    document_url=lambda record, d: reverse("portal_patient:document", args=[record.pk, d.pk]),
    template="portal_patient/documents/list.html",
    base_template="portal_patient/base_record.html",
    session_prefix="documents_filters",
    views=(screen.LIST, screen.TIMELINE, screen.THUMBNAILS),
    selection=True,
    row_actions_template="portal_patient/documents/_select.html",
    row_tags_template="portal_patient/documents/_row_tags.html",
)


@require_http_methods(["GET", "POST"])
@record_view("patient")
def documents(request, actor, record):
    """The record's documents. GET shows them; POST sets (or clears) the filters and search,
    then comes back here by GET."""
    return SCREEN.respond(request, actor, record, render=render_record_page)


# ---------------------------------------------------------------------------------------------
# One document


# The policy's reasons speak to whoever asks ("You have no access…"); on this page the
# patient reads about other people, so some rules get their own plain wording.
_EXPLANATIONS = {
    "care_authorisation_granted": gettext_lazy("Authorised by the patient to see the record (care authorisation)."),
    "care_authorisation_declared": gettext_lazy(
        "Declared at a consultation that they care for the patient (care authorisation)."),
    "treating_doctor": gettext_lazy("Médecin traitant: sees every document, hidden ones included."),
    "blocked_professional": gettext_lazy("Blocked by the patient: no access at all, not even in an emergency."),
    "no_care_authorisation": gettext_lazy("No care authorisation for this patient (any more)."),
    "break_glass_expired": gettext_lazy("Their emergency access has ended."),
}


# Why a document the person's standing opens is still kept from them: the document rule's clause
# that refused it (`dmp.policy.Clause`), as the patient reads it.
_CLAUSES = {
    Clause.HIDDEN_FROM_REPRESENTATIVES: gettext_lazy(
        "Hidden from legal representatives (the minor's confidential care)."),
    Clause.HIDDEN_FROM_PROFESSIONALS: gettext_lazy(
        "Hidden from professionals: only the médecin traitant and the author still see it."),
    Clause.MATRIX: gettext_lazy("Their profession may not read this type of document."),
}


def _explain(viewer: Viewer) -> str:
    """Why this person may or may not see the document, in plain words: the rule of their
    standing, or the clause of the document rule that decided."""
    decision = viewer.decision
    if viewer.role in ("representative", "professional") and decision.clause in _CLAUSES:
        return str(_CLAUSES[decision.clause])
    explanation = str(_EXPLANATIONS.get(decision.rule, decision.reason))
    if decision.allowed and decision.clause == Clause.AUTHOR:
        explanation = " ".join((explanation, _("Author of this document: always sees it.")))
    return explanation


@require_GET
@portal_view("patient")
def document(request, actor, pk: int, doc: int):
    """One document: what it is, open and download, who can see it and why, the actions."""
    document = get_record_document_for(actor, pk, doc)
    viewers = [(viewer, _explain(viewer)) for viewer in who_may_see(document)]
    return render_record_page(request, "portal_patient/documents/detail.html", actor, document.record, {
        "document": document,
        "screen": SCREEN,
        "selected": document_selected_by(actor, document),
        # The minor's own control over what their parents see (never shown to a parent).
        "keeps_secret": offers_what_representatives_see(actor, document),
        "may_see": [row for row in viewers if row[0].decision.allowed],
        "may_not_see": [row for row in viewers if not row[0].decision.allowed],
        # A CDA shows its rendering on this page (docs/cda.md); "Download" gives its XML as sent.
        "reading": reading_of(document) if is_cda(document) else None,
        "back": safe_next(request, reverse("portal_patient:documents", args=[pk]), name="back"),
    }, section="documents")


@require_GET
@portal_view("patient")
def document_download(request, actor, pk: int, doc: int):
    """The file as it was sent (a CDA's XML byte for byte); "Open" gives what it shows."""
    return document_original_response(get_record_document_for(actor, pk, doc))


@require_GET
@portal_view("patient")
def document_thumbnail(request, actor, pk: int, doc: int):
    """The small picture of a document: a read of the document, through the policy like its file."""
    document = get_record_document_for(actor, pk, doc)
    if not document.thumbnail:
        raise Http404
    response = decrypted_file_response(document.thumbnail, "image/png")
    return protected_file_response(response, f"thumbnail-{document.pk}.png")


def _document_action(request, actor, pk: int, doc: int, *, field: str, service, argument: str, done: dict):
    """One POST, one service, back where the patient was. A refusal is a 404, like a missing
    document (dmp/http.py); `done` maps the new value to the message that confirms it."""
    document = record_document_for_action(actor, pk, doc)
    value = request.POST.get(field) == "1"
    service(actor=actor, document=document, **{argument: value})
    messages.success(request, done[value])
    return redirect(safe_next(request, reverse("portal_patient:document", args=[pk, doc])))


@require_POST
@portal_view("patient")
def document_visibility(request, actor, pk: int, doc: int):
    return _document_action(request, actor, pk, doc, field="hidden", service=services.document_visibility_set,
                            argument="hidden", done={
                                True: _("The document is hidden from professionals, except your médecin "
                                        "traitant and its author."),
                                False: _("Professionals who may read this type of document can see it again."),
                            })


@require_POST
@portal_view("patient")
def document_representatives_visibility(request, actor, pk: int, doc: int):
    """The minor hides a document from their legal representatives, or shows it to them again."""
    return _document_action(request, actor, pk, doc, field="hidden",
                            service=services.document_representatives_visibility_set, argument="hidden", done={
                                True: _("The document is hidden from your legal representatives: they do not "
                                        "see it anywhere, nor that it exists."),
                                False: _("Your legal representatives can see this document again."),
                            })


@require_POST
@portal_view("patient")
def document_archive(request, actor, pk: int, doc: int):
    return _document_action(request, actor, pk, doc, field="archived", service=services.document_archive_set,
                            argument="archived", done={
                                True: _("The document is archived. Find it under “Archived”."),
                                False: _("The document is back among the current documents."),
                            })


@require_POST
@portal_view("patient")
def document_select(request, actor, pk: int, doc: int):
    return _document_action(request, actor, pk, doc, field="selected", service=services.document_selection_set,
                            argument="selected", done={
                                True: _("Added to your selection."),
                                False: _("Removed from your selection."),
                            })


# ---------------------------------------------------------------------------------------------
# Adding documents to the personal space


class UploadForm(forms.Form):
    files = screen.MultipleFileField(label=gettext_lazy("Files (PDF, JPEG, PNG or CDA XML)"), error_messages={
        "required": gettext_lazy("Choose at least one file."),
    })
    doc_type = forms.ChoiceField(label=gettext_lazy("Type"), choices=PERSONAL_TYPES, widget=forms.RadioSelect,
                                 initial=DocumentType.PATIENT_DOCUMENT)
    act_date = forms.DateField(label=gettext_lazy("Date of the document"),
                               widget=forms.DateInput(attrs={"type": "date"}))
    title = forms.CharField(
        label=gettext_lazy("Title (optional)"), required=False, max_length=150,
        help_text=gettext_lazy("Given to every file, numbered. Without a title, each file keeps its name."),
    )

    def clean_act_date(self):
        value = self.cleaned_data["act_date"]
        if value > timezone.localdate():
            raise forms.ValidationError(_("The date cannot be in the future."))
        return value


@require_http_methods(["GET", "POST"])
@record_view("patient")
def documents_add(request, actor, record):
    """Add one or several files to the personal space, with one type and one date. Without
    JavaScript a plain form; with it, drag and drop and a progress bar (static/js/documents.js),
    which posts the same form and is answered in JSON when all went well."""
    posted = request.method == "POST"
    form = UploadForm(request.POST if posted else None, request.FILES if posted else None,
                      initial={"act_date": timezone.localdate(), "doc_type": DocumentType.PATIENT_DOCUMENT})
    if record.is_minor():
        # Advance directives are for adults (docs/minors.md): not offered as a type either.
        form.fields["doc_type"].choices = [
            (t, label) for t, label in PERSONAL_TYPES if t != DocumentType.ADVANCE_DIRECTIVES]
    file_errors: list[tuple[str, str]] = []
    if posted and form.is_valid():
        # Never more than the limit + 1 byte in memory: the service refuses "too large" from that.
        files = [(f.name, f.read(settings.DOCUMENT_MAX_BYTES + 1)) for f in form.cleaned_data["files"]]
        added, file_errors = screen.add_files(form, lambda: services.document_add_many(
            actor=actor, record=record, files=files, doc_type=form.cleaned_data["doc_type"],
            act_date=form.cleaned_data["act_date"], title_prefix=form.cleaned_data["title"],
        ))
        if added:
            messages.success(request, ngettext("%(n)d document added to the personal space.",
                                               "%(n)d documents added to the personal space.",
                                               len(added)) % {"n": len(added)})
            target = SCREEN.nav_url(record, SCREEN.nav({"space": Space.PERSONAL}))
            if request.headers.get("X-Requested-With") == "XMLHttpRequest":
                return JsonResponse({"location": target})
            return redirect(target)
    return render_record_page(request, "portal_patient/documents/add.html", actor, record, {
        "form": form,
        "file_errors": file_errors,
        "max_mb": settings.DOCUMENT_MAX_BYTES // 2**20,
        "max_files": services.documents.MAX_FILES_AT_ONCE,
    }, section="documents", status=400 if posted else 200)


# ---------------------------------------------------------------------------------------------
# Types hidden from professionals by default


class DefaultHiddenTypesForm(forms.Form):
    types = forms.MultipleChoiceField(choices=DocumentType.choices, required=False,
                                      widget=forms.CheckboxSelectMultiple)


@require_http_methods(["GET", "POST"])
@record_view("patient")
def documents_settings(request, actor, record):
    """The document types that arrive hidden from professionals (sensitive care)."""
    form = DefaultHiddenTypesForm(request.POST if request.method == "POST" else None,
                                  initial={"types": record.default_hidden_types})
    if request.method == "POST" and form.is_valid():
        try:
            services.record_default_hidden_types_set(actor=actor, record=record, types=form.cleaned_data["types"])
        except services.InvalidInput as invalid:
            form.add_error(None, str(invalid))
        else:
            messages.success(request, _("Saved. Documents of the ticked types will arrive hidden from professionals."))
            return redirect("portal_patient:documents_settings", pk=record.pk)
    chosen = set(form["types"].value() or [])
    return render_record_page(request, "portal_patient/documents/settings.html", actor, record, {
        "form": form,
        "spaces": [
            {"label": space_label, "types": [
                {"value": t, "label": label, "checked": t in chosen, "id": f"type-{t}"}
                for t, label in DocumentType.choices if SPACE_OF_TYPE[t] == space
            ]}
            for space, space_label in Space.choices
        ],
    }, section="documents", status=400 if form.errors else 200)


urlpatterns = [
    path("records/<int:pk>/documents/", documents, name="documents"),
    path("records/<int:pk>/documents/add/", documents_add, name="documents_add"),
    path("records/<int:pk>/documents/settings/", documents_settings, name="documents_settings"),
    path("records/<int:pk>/documents/<int:doc>/", document, name="document"),
    path("records/<int:pk>/documents/<int:doc>/download/", document_download, name="document_download"),
    path("records/<int:pk>/documents/<int:doc>/thumbnail/", document_thumbnail, name="document_thumbnail"),
    path("records/<int:pk>/documents/<int:doc>/visibility/", document_visibility, name="document_visibility"),
    path("records/<int:pk>/documents/<int:doc>/representatives/", document_representatives_visibility,
         name="document_representatives_visibility"),
    path("records/<int:pk>/documents/<int:doc>/archive/", document_archive, name="document_archive"),
    path("records/<int:pk>/documents/<int:doc>/select/", document_select, name="document_select"),
]
