"""The documents screen, one feature for both portals (DOMAIN.md §3): the filter form, the
session store of what is searched, the query-string navigation (space, view, current or
archived, "my selection", page), the pagination and the tabs. A portal describes itself with
a `DocumentsScreen` (its URL names, its views, the filters it offers beyond the common ones,
what each row may do, asked of the policy) and its view calls `DocumentsScreen.respond()`.

Navigation that says nothing medical is in the query string. The search words, the author,
the specialty (and the type, where offered) are POSTed and kept in the session for this
record, sealed, then the page is shown again by GET: they never reach a URL, and the back
button, the tabs and the views keep working.

The listing itself is `dmp.selectors.documents_listing()`, the one function that the FHIR
`DocumentReference` search calls too, with the same `DocumentFilters`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from urllib.parse import urlencode

from django import forms
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dmp import services
from dmp.models import DocumentType, Space
from dmp.paging import page_number, page_of
from dmp.selectors import DocumentFilters, documents_listing
from dmp.selectors.documents import Status
from dmp.storage import sealed, unsealed

LIST, TIMELINE, THUMBNAILS = "list", "timeline", "thumbnails"
VIEW_LABELS = {
    LIST: gettext_lazy("List"),
    TIMELINE: gettext_lazy("Care pathway"),
    THUMBNAILS: gettext_lazy("Thumbnails"),
}
STATUSES = (
    (Status.CURRENT, gettext_lazy("Current")),
    (Status.ARCHIVED, gettext_lazy("Archived")),
    (Status.ALL, gettext_lazy("All")),
)
COMMON_FILTERS = ("text", "author", "profession", "date_from", "date_to")
DOC_TYPE = "doc_type"  # the one extra filter a portal may offer
# What the file picker offers: the formats the file check accepts (a CDA R2 document is XML).
FILE_TYPES = ".pdf,.png,.jpg,.jpeg,.xml,application/pdf,image/png,image/jpeg,application/xml,text/xml"


class FilterForm(forms.Form):
    """What is POSTed, never put in a URL. Author and specialty are the values the selector
    offers; an unknown one filters nothing. The type, where the portal offers it, must be a
    known type. `extra` names the filters beyond the common ones (`DOC_TYPE`)."""

    text = forms.CharField(required=False, max_length=200, label=gettext_lazy("Search the documents"))
    author = forms.CharField(required=False, max_length=150, label=gettext_lazy("Author"))
    profession = forms.CharField(required=False, max_length=150, label=gettext_lazy("Profession or specialty"))
    doc_type = forms.ChoiceField(required=False, label=gettext_lazy("Type"),
                                 choices=[("", ""), *DocumentType.choices])
    date_from = forms.DateField(required=False, label=gettext_lazy("From"),
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, extra: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if DOC_TYPE not in extra:
            del self.fields[DOC_TYPE]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end of the period comes before its start."))
        return data

    def stored(self) -> dict:
        """The cleaned values, as the session keeps them."""
        data = self.cleaned_data
        values = {"text": data["text"].strip(), "author": data["author"], "profession": data["profession"]}
        if DOC_TYPE in self.fields:
            values[DOC_TYPE] = data[DOC_TYPE]
        return {
            **values,
            "date_from": data["date_from"].isoformat() if data["date_from"] else "",
            "date_to": data["date_to"].isoformat() if data["date_to"] else "",
        }


def filters_from(nav: dict, stored: dict) -> DocumentFilters:
    """The selector's filters from the navigation and what the session keeps."""
    return DocumentFilters(
        space=nav.get("space", ""), status=nav.get("status", Status.CURRENT),
        selected_only=bool(nav.get("selected")),
        author=stored.get("author", ""), profession=stored.get("profession", ""),
        doc_type=stored.get(DOC_TYPE, ""),
        date_from=date.fromisoformat(stored["date_from"]) if stored.get("date_from") else None,
        date_to=date.fromisoformat(stored["date_to"]) if stored.get("date_to") else None,
        text=stored.get("text", ""),
    )


def safe_next(request, default: str, *, name: str = "next") -> str:
    """Where to go back to: a page of this site only."""
    target = request.POST.get(name) or request.GET.get(name) or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one `<input type=file multiple>`. Only "at least one": each file's
    content is checked by the service, which names every file it refuses."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": FILE_TYPES}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


def add_files(form: forms.Form, add: Callable[[], list]) -> tuple[list, list[tuple[str, str]]]:
    """Call `add`, the service that stores the posted files, for a page that adds documents:
    (the documents added, the refused files by name). A refusal of the policy is a 404, like
    a record that does not exist (dmp/http.py); any other input refused goes on the form."""
    try:
        return add(), []
    except services.InvalidFiles as invalid:
        return [], invalid.errors
    except services.InvalidInput as invalid:
        form.add_error(None, str(invalid))
        return [], []


def _no_row_actions(actor, record, documents: list) -> None:
    return None


@dataclass(frozen=True)
class DocumentsScreen:
    """One portal's documents screen.

    - `list_url`: the URL name of the screen (argument: the record's pk);
    - `document_url(record, document)`: where a row's title leads;
    - `template`: the portal's page, which extends templates/documents_screen/list.html, and
      `base_template`, the portal's record layout that one extends;
    - `session_prefix`: the session key of the kept filters, followed by the record's pk;
    - `views`: the ways of showing the list it offers (`LIST`, `TIMELINE`, `THUMBNAILS`);
    - `extra_filters`: the filters beyond the common ones (`DOC_TYPE`);
    - `selection`: whether "my selection" is a navigation choice;
    - `row_actions(actor, record, documents)`: sets on each row of the page what it may do,
      as the policy answers (the template only shows it);
    - `row_actions_template`: the form shown on a row, `row_actions_in_timeline` also there;
    - `row_tags_template`: the portal's own tags on a row (hidden, selected, withheld…).
    """

    list_url: str
    document_url: Callable
    template: str
    base_template: str
    session_prefix: str
    views: tuple[str, ...] = (LIST, TIMELINE)
    extra_filters: tuple[str, ...] = ()
    selection: bool = False
    row_actions: Callable = _no_row_actions
    row_actions_template: str = ""
    row_actions_in_timeline: bool = False
    row_tags_template: str = ""
    new_tab: bool = False  # a row opens the file itself, beside the list

    @property
    def filter_names(self) -> tuple[str, ...]:
        return COMMON_FILTERS + self.extra_filters

    def session_key(self, record) -> str:
        return f"{self.session_prefix}:{record.pk}"

    def stored(self, request, record) -> dict:
        """The filters kept for this record (the search words are medical: sealed)."""
        return unsealed(request.session.get(self.session_key(record)))

    def nav(self, params) -> dict:
        """The navigation part of the query string, validated: nothing else is ever read from it."""
        page = params.get("page", "")
        values = {
            "space": params.get("space") if params.get("space") in Space.values else "",
            "view": params.get("view") if params.get("view") in self.views else LIST,
            "status": params.get("status") if params.get("status") in Status.CHOICES else Status.CURRENT,
        }
        if self.selection:
            values["selected"] = "1" if params.get("selected") == "1" else ""
        values["page"] = page_number(page)
        return values

    def nav_url(self, record, nav: dict, **changes) -> str:
        """The screen's URL for `nav` changed by `changes` (back to the first page unless told)."""
        values = {**nav, "page": 1, **changes}
        defaults = {"space": "", "view": LIST, "status": Status.CURRENT, "selected": "", "page": 1}
        query = urlencode({k: v for k, v in values.items() if v != defaults[k]})
        url = reverse(self.list_url, args=[record.pk])
        return f"{url}?{query}" if query else url

    def respond(self, request, actor, record, *, render: Callable, context: dict | None = None):
        """The screen: GET shows the documents; POST sets (or clears) the filters and search,
        then comes back by GET. `render` is the portal's record-page renderer."""
        key = self.session_key(record)
        if request.method == "POST":
            nav = self.nav(request.POST)
            if "clear" in request.POST:
                request.session.pop(key, None)
                return redirect(self.nav_url(record, nav))
            form = FilterForm(request.POST, extra=self.extra_filters)
            if form.is_valid():
                request.session[key] = sealed(form.stored())  # the search words are medical
                return redirect(self.nav_url(record, nav))
            return self._page(request, actor, record, nav, form, render=render, context=context, status=400)
        stored = self.stored(request, record)
        return self._page(request, actor, record, self.nav(request.GET),
                          FilterForm(initial=stored, extra=self.extra_filters), stored=stored,
                          render=render, context=context)

    def _page(self, request, actor, record, nav: dict, form: FilterForm, *, render: Callable,
              context: dict | None, stored: dict | None = None, status: int = 200):
        stored = stored if stored is not None else self.stored(request, record)
        listing = documents_listing(actor, record, filters_from(nav, stored))
        page = page_of(listing.documents, nav["page"])
        documents_on_page = list(page.object_list)
        for document in documents_on_page:
            document.url = self.document_url(record, document)
        self.row_actions(actor, record, documents_on_page)
        here = request.get_full_path() if request.method == "GET" else self.nav_url(record, nav, page=nav["page"])
        url = self.nav_url
        return render(request, self.template, actor, record, {
            "screen": self,
            "nav": nav,
            "form": form,
            "listing": listing,
            "page": page,
            "documents": documents_on_page,
            "months": [(month, list(docs)) for month, docs in
                       groupby(documents_on_page, key=lambda d: d.act_date.replace(day=1))],
            "filtered": any(stored.get(name) for name in self.filter_names),
            "chosen": stored,
            "tabs": [
                {"value": "", "label": _("All spaces"), "count": listing.total, "url": url(record, nav, space="")},
                *({"value": value, "label": label, "count": listing.space_counts[value],
                   "url": url(record, nav, space=value)} for value, label in Space.choices),
            ],
            "views": [{"value": v, "label": VIEW_LABELS[v], "url": url(record, nav, view=v, page=nav["page"])}
                      for v in self.views],
            "statuses": [{"value": v, "label": label, "url": url(record, nav, status=v)} for v, label in STATUSES],
            "selection_url": url(record, nav, selected="" if nav.get("selected") else "1") if self.selection else "",
            "page_urls": {
                "previous": url(record, nav, page=page.previous_page_number()) if page.has_previous() else "",
                "next": url(record, nav, page=page.next_page_number()) if page.has_next() else "",
            },
            "here": here,
            **(context or {}),
        }, section="documents", status=status)
