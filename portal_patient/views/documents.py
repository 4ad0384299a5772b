"""The patient's documents screen (DOMAIN.md §3 "patient documents"): the nine spaces; list,
care-pathway timeline and thumbnails; filters and full-text search; adding to the personal
space; hide, archive, "my selection"; on each document, who can see it and why; the types
hidden from professionals by default.

Navigation that says nothing medical (space, view, current/archived, selection, page) is in
the query string. The search words, the author and the specialty are POSTed and kept in the
session for this record, then the page is shown again by GET: they never reach a URL, and
the back button, the tabs and the views keep working."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import services
from dmp.http import actor_for_portal, document_response, protected_file_response
from dmp.models import SPACE_OF_TYPE, DocumentType, Space
from dmp.policy import Viewer, who_may_see
from dmp.selectors import DocumentFilters, documents_listing, get_record_document_for, record_document_for_action
from dmp.selectors.documents import Status, document_selected_by
from dmp.storage import sealed, unsealed

from ._common import record_for_request, render_record_page

PAGE_SIZE = 50
VIEWS = (
    ("list", gettext_lazy("List")),
    ("timeline", gettext_lazy("Care pathway")),
    ("thumbnails", gettext_lazy("Thumbnails")),
)
STATUSES = (
    (Status.CURRENT, gettext_lazy("Current")),
    (Status.ARCHIVED, gettext_lazy("Archived")),
    (Status.ALL, gettext_lazy("All")),
)
PERSONAL_TYPES = [(t, label) for t, label in DocumentType.choices if SPACE_OF_TYPE[t] == Space.PERSONAL]


# ---------------------------------------------------------------------------------------------
# The list


class FilterForm(forms.Form):
    """What is POSTed, never put in a URL. Author and specialty are the values the selector
    offers; an unknown one filters nothing."""

    text = forms.CharField(required=False, max_length=200, label=gettext_lazy("Search the documents"))
    author = forms.CharField(required=False, max_length=150, label=gettext_lazy("Author"))
    profession = forms.CharField(required=False, max_length=150, label=gettext_lazy("Profession or specialty"))
    date_from = forms.DateField(required=False, label=gettext_lazy("From"),
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end of the period comes before its start."))
        return data

    def stored(self) -> dict:
        """The cleaned values, as the session keeps them."""
        data = self.cleaned_data
        return {
            "text": data["text"].strip(), "author": data["author"], "profession": data["profession"],
            "date_from": data["date_from"].isoformat() if data["date_from"] else "",
            "date_to": data["date_to"].isoformat() if data["date_to"] else "",
        }


def _session_key(record) -> str:
    return f"documents_filters:{record.pk}"


def _nav(params) -> dict:
    """The navigation part of the query string, validated: nothing else is ever read from it."""
    page = params.get("page", "")
    return {
        "space": params.get("space") if params.get("space") in Space.values else "",
        "view": params.get("view") if params.get("view") in dict(VIEWS) else "list",
        "status": params.get("status") if params.get("status") in Status.CHOICES else Status.CURRENT,
        "selected": "1" if params.get("selected") == "1" else "",
        "page": int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
    }


def _nav_url(record, nav: dict, **changes) -> str:
    values = {**nav, "page": 1, **changes}
    defaults = {"space": "", "view": "list", "status": Status.CURRENT, "selected": "", "page": 1}
    query = urlencode({k: v for k, v in values.items() if v != defaults[k]})
    url = reverse("portal_patient:documents", args=[record.pk])
    return f"{url}?{query}" if query else url


def _filters(nav: dict, stored: dict) -> DocumentFilters:
    return DocumentFilters(
        space=nav["space"], status=nav["status"], selected_only=bool(nav["selected"]),
        author=stored.get("author", ""), profession=stored.get("profession", ""),
        date_from=date.fromisoformat(stored["date_from"]) if stored.get("date_from") else None,
        date_to=date.fromisoformat(stored["date_to"]) if stored.get("date_to") else None,
        text=stored.get("text", ""),
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def documents(request, pk: int):
    """The record's documents. GET shows them; POST sets (or clears) the filters and search,
    then comes back here by GET."""
    actor, record = record_for_request(request, pk)
    key = _session_key(record)
    if request.method == "POST":
        nav = _nav(request.POST)
        if "clear" in request.POST:
            request.session.pop(key, None)
            return redirect(_nav_url(record, nav))
        form = FilterForm(request.POST)
        if form.is_valid():
            request.session[key] = sealed(form.stored())  # the search words are medical
            return redirect(_nav_url(record, nav))
        return _list_page(request, actor, record, nav, form, status=400)
    stored = unsealed(request.session.get(key))
    return _list_page(request, actor, record, _nav(request.GET), FilterForm(initial=stored), stored=stored)


def _list_page(request, actor, record, nav: dict, form: FilterForm, *, stored: dict | None = None,
               status: int = 200):
    stored = stored if stored is not None else unsealed(request.session.get(_session_key(record)))
    listing = documents_listing(actor, record, _filters(nav, stored))
    page = Paginator(listing.documents, PAGE_SIZE).get_page(nav["page"])
    documents_on_page = list(page.object_list)
    filtered = any(stored.get(name) for name in ("text", "author", "profession", "date_from", "date_to"))
    return render_record_page(request, "portal_patient/documents/list.html", actor, record, {
        "nav": nav,
        "form": form,
        "listing": listing,
        "page": page,
        "documents": documents_on_page,
        "months": [(month, list(docs)) for month, docs in
                   groupby(documents_on_page, key=lambda d: d.act_date.replace(day=1))],
        "filtered": filtered,
        "chosen": stored,
        "tabs": [
            {"value": "", "label": _("All spaces"), "count": listing.total, "url": _nav_url(record, nav, space="")},
            *({"value": value, "label": label, "count": listing.space_counts[value],
               "url": _nav_url(record, nav, space=value)} for value, label in Space.choices),
        ],
        "views": [{"value": v, "label": label, "url": _nav_url(record, nav, view=v, page=nav["page"])}
                  for v, label in VIEWS],
        "statuses": [{"value": v, "label": label, "url": _nav_url(record, nav, status=v)} for v, label in STATUSES],
        "selection_url": _nav_url(record, nav, selected="" if nav["selected"] else "1"),
        "page_urls": {
            "previous": _nav_url(record, nav, page=page.previous_page_number()) if page.has_previous() else "",
            "next": _nav_url(record, nav, page=page.next_page_number()) if page.has_next() else "",
        },
        "here": request.get_full_path() if request.method == "GET" else _nav_url(record, nav, page=nav["page"]),
    }, section="documents", status=status)


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


def _explain(viewer: Viewer, document) -> str:
    """Why this person may or may not see the document, in plain words."""
    rule = viewer.decision.rule
    if rule == "document_not_visible" and viewer.role == "representative":
        return _("Hidden from legal representatives (the minor's confidential care).")
    if rule == "document_not_visible" and viewer.role == "professional":
        if document.hidden_from_professionals:
            return _("Hidden from professionals: only the médecin traitant and the author still see it.")
        return _("Their profession may not read this type of document.")
    explanation = str(_EXPLANATIONS.get(rule, viewer.decision.reason))
    if (viewer.decision.allowed and document.author_professional_id
            and viewer.user_id == document.author_professional.user_id):
        explanation = " ".join((explanation, _("Author of this document: always sees it.")))
    return explanation


@login_required
@never_cache
@require_GET
def document(request, pk: int, doc: int):
    """One document: what it is, open and download, who can see it and why, the actions."""
    actor = actor_for_portal(request, "patient")
    document = get_record_document_for(actor, pk, doc)
    viewers = [(viewer, _explain(viewer, document)) for viewer in who_may_see(document)]
    return render_record_page(request, "portal_patient/documents/detail.html", actor, document.record, {
        "document": document,
        "selected": document_selected_by(actor, document),
        "may_see": [row for row in viewers if row[0].decision.allowed],
        "may_not_see": [row for row in viewers if not row[0].decision.allowed],
        "back": _safe_next(request, reverse("portal_patient:documents", args=[pk]), name="back"),
    }, section="documents")


@login_required
@never_cache
@require_GET
def document_download(request, pk: int, doc: int):
    actor = actor_for_portal(request, "patient")
    return document_response(get_record_document_for(actor, pk, doc))


@login_required
@never_cache
@require_GET
def document_thumbnail(request, pk: int, doc: int):
    """The small picture of a document: a read of the document, through the policy like its file."""
    actor = actor_for_portal(request, "patient")
    document = get_record_document_for(actor, pk, doc)
    if not document.thumbnail:
        raise Http404
    response = FileResponse(document.thumbnail.open("rb"), content_type="image/png")
    return protected_file_response(response, f"thumbnail-{document.pk}.png")


def _safe_next(request, default: str, *, name: str = "next") -> str:
    """Where to go back to: a page of this site only."""
    target = request.POST.get(name) or request.GET.get(name) or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def _document_action(request, pk: int, doc: int, *, field: str, service, argument: str, done: dict):
    """One POST, one service, back where the patient was. A refusal is a 404, like a missing
    document; `done` maps the new value to the message that confirms it."""
    actor = actor_for_portal(request, "patient")
    document = record_document_for_action(actor, pk, doc)
    value = request.POST.get(field) == "1"
    try:
        service(actor=actor, document=document, **{argument: value})
    except services.AccessRefused as refused:
        raise Http404 from refused
    messages.success(request, done[value])
    return redirect(_safe_next(request, reverse("portal_patient:document", args=[pk, doc])))


@login_required
@require_POST
def document_visibility(request, pk: int, doc: int):
    return _document_action(request, pk, doc, field="hidden", service=services.document_visibility_set,
                            argument="hidden", done={
                                True: _("The document is hidden from professionals, except your médecin "
                                        "traitant and its author."),
                                False: _("Professionals who may read this type of document can see it again."),
                            })


@login_required
@require_POST
def document_archive(request, pk: int, doc: int):
    return _document_action(request, pk, doc, field="archived", service=services.document_archive_set,
                            argument="archived", done={
                                True: _("The document is archived. Find it under “Archived”."),
                                False: _("The document is back among the current documents."),
                            })


@login_required
@require_POST
def document_select(request, pk: int, doc: int):
    return _document_action(request, pk, doc, field="selected", service=services.document_selection_set,
                            argument="selected", done={
                                True: _("Added to your selection."),
                                False: _("Removed from your selection."),
                            })


# ---------------------------------------------------------------------------------------------
# Adding documents to the personal space


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one `<input type=file multiple>`. Only "at least one": each file's
    content is checked by the service, which names every file it refuses."""

    def __init__(self, *args, **kwargs) -> None:
        accept = ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": accept}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


class UploadForm(forms.Form):
    files = MultipleFileField(label=gettext_lazy("Files (PDF, JPEG or PNG)"), error_messages={
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


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def documents_add(request, pk: int):
    """Add one or several files to the personal space, with one type and one date. Without
    JavaScript a plain form; with it, drag and drop and a progress bar (static/js/documents.js),
    which posts the same form and is answered in JSON when all went well."""
    actor, record = record_for_request(request, pk)
    posted = request.method == "POST"
    form = UploadForm(request.POST if posted else None, request.FILES if posted else None,
                      initial={"act_date": timezone.localdate(), "doc_type": DocumentType.PATIENT_DOCUMENT})
    file_errors: list[tuple[str, str]] = []
    if posted and form.is_valid():
        # Never more than the limit + 1 byte in memory: the service refuses "too large" from that.
        files = [(f.name, f.read(settings.DOCUMENT_MAX_BYTES + 1)) for f in form.cleaned_data["files"]]
        try:
            added = services.document_add_many(
                actor=actor, record=record, files=files, doc_type=form.cleaned_data["doc_type"],
                act_date=form.cleaned_data["act_date"], title_prefix=form.cleaned_data["title"],
            )
        except services.AccessRefused as refused:
            raise Http404 from refused
        except services.InvalidFiles as invalid:
            file_errors = invalid.errors
        except services.InvalidInput as invalid:
            form.add_error(None, str(invalid))
        else:
            messages.success(request, ngettext("%(n)d document added to the personal space.",
                                               "%(n)d documents added to the personal space.",
                                               len(added)) % {"n": len(added)})
            target = _nav_url(record, {"space": Space.PERSONAL, "view": "list", "status": Status.CURRENT,
                                       "selected": ""})
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


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def documents_settings(request, pk: int):
    """The document types that arrive hidden from professionals (sensitive care)."""
    actor, record = record_for_request(request, pk)
    form = DefaultHiddenTypesForm(request.POST if request.method == "POST" else None,
                                  initial={"types": record.default_hidden_types})
    if request.method == "POST" and form.is_valid():
        try:
            services.record_default_hidden_types_set(actor=actor, record=record, types=form.cleaned_data["types"])
        except services.AccessRefused as refused:
            raise Http404 from refused
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
    path("records/<int:pk>/documents/<int:doc>/archive/", document_archive, name="document_archive"),
    path("records/<int:pk>/documents/<int:doc>/select/", document_select, name="document_select"),
]
