"""The counter dashboard: the records the agent's organisation onboarded, with their
administrative status only, and the administrative acts on them (deposit papers, attach a NIR,
reprint credentials). Nothing here reads a document or anything medical: the deposit page
answers with a count, never a title or a link."""

from __future__ import annotations

from datetime import date, datetime

from django import forms
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp.document_suggestions import date_from_name, suggest, type_from_name
from dmp.http import patient_summary_response, portal_view
from dmp.models import DocumentType
from dmp.paging import LIST_PAGE_SIZE, page_number, page_urls
from dmp.selectors.counter import (
    OnboardedSearch,
    OnboardedStatus,
    letter_for,
    letters_to_print,
    onboarded_record,
    records_onboarded_page,
)
from dmp.selectors.summary import summary_to_print
from dmp.services import AccessRefused, InvalidInput, record_nir_attach
from dmp.services.accounts import postal_letter_printed
from dmp.services.documents import (
    COUNTER_DEPOSIT_EXCLUDED_TYPES,
    MAX_FILES_AT_ONCE,
    InvalidFiles,
    NewDocument,
    document_deposit_batch,
)
from dmp.storage import sealed, unsealed

from ..forms import _NO_AUTOFILL
from .reset import reset_form_page

FILE_NAME_MAX = 255
DEPOSITED_KEY = "dmp_counter_deposited"
SEARCH_KEY = "dmp_counter_search"


def _deposit_type_choices():
    return [("", "—")] + [(v, label) for v, label in DocumentType.choices if v not in COUNTER_DEPOSIT_EXCLUDED_TYPES]


def deposit_suggestion(name: str, *, today: date) -> dict:
    """What a paper probably is, from its file name (as for a professional's add): a type the
    counter may deposit (else none: the agent chooses), a title, and the date only when the name
    holds one (the date on the original is optional)."""
    guess = suggest(name, profession=None, today=today)
    named = type_from_name(name)
    doc_type = named if named and named not in COUNTER_DEPOSIT_EXCLUDED_TYPES else ""
    written = date_from_name(name, today=today)
    return {"name": name, "doc_type": doc_type, "title": guess.title,
            "act_date": written.isoformat() if written else ""}


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", _MultipleFileInput(attrs={"accept": ".pdf,image/*,.xml,application/xml,text/xml"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(_MultipleFileField, self).clean(upload, initial) for upload in uploads]


class DepositForm(forms.Form):
    """Many files in one pick (or drop), then one row per file: its kind, title and the date on
    the original, each optional and aligned with the files by position. Whatever a row leaves
    empty (or the whole second step, without JavaScript) is suggested from the file's name; a
    file whose kind cannot be guessed is refused by name, and nothing is stored."""

    files = _MultipleFileField(label=_("The person's papers (choose or drop several files at once)"),
                               required=False)
    default_type = forms.ChoiceField(
        label=_("Kind of paper, for the files whose name does not say it (optional)"),
        choices=_deposit_type_choices, required=False)

    def clean(self):
        data = super().clean()
        uploads = data.get("files") or []
        if not uploads:
            if not self.errors:
                raise forms.ValidationError(_("Choose at least one file."))
            return data
        types, titles, dates = (self.data.getlist(key) for key in ("file_type", "file_title", "file_date"))
        today = timezone.localdate()
        documents, problems = [], []
        for index, upload in enumerate(uploads):
            name = upload.name
            guess = deposit_suggestion(name, today=today)
            doc_type = _at(types, index) or guess["doc_type"] or data.get("default_type", "")
            title = " ".join(_at(titles, index).split())[:200] or guess["title"]
            act_date = guess["act_date"]
            typed = _at(dates, index)
            if typed:
                try:
                    act_date = date.fromisoformat(typed).isoformat()
                except ValueError:
                    problems.append(_file_problem(name, _("The date on the original is not a valid date.")))
                    continue
            if act_date and date.fromisoformat(act_date) > today:
                problems.append(_file_problem(name, _("The date on the original is in the future.")))
                continue
            if not doc_type:
                problems.append(_file_problem(name, _("Choose the kind of paper.")))
                continue
            documents.append(NewDocument(
                name=name, content=upload.read(), doc_type=doc_type, title=title,
                # Not written on the original, nor in the file name: the day it reached the record.
                act_date=date.fromisoformat(act_date) if act_date else today))
        for problem in problems:
            self.add_error(None, problem)
        data["documents"] = documents
        return data


def _at(values: list[str], index: int) -> str:
    return values[index].strip() if index < len(values) else ""


class NirAttachForm(forms.Form):
    nir = forms.CharField(
        label=_("Social-security number (NIR) with its key"), max_length=21,
        widget=forms.TextInput(attrs={**_NO_AUTOFILL, "inputmode": "numeric"}),
    )


def _record_or_404(actor, pk):
    record = onboarded_record(actor, pk)
    if record is None:
        raise Http404
    return record


class DashboardSearchForm(forms.Form):
    """What the agent looks for among the organisation's records. POSTed and kept sealed in the
    session, never in a URL: a name and an identifier (a NIR) say who came to the counter."""

    identifier = forms.CharField(label=_("Identifier"), max_length=21, required=False,
                                 widget=forms.TextInput(attrs=_NO_AUTOFILL))
    name = forms.CharField(label=_("Family or given name (its beginning is enough)"), max_length=100,
                           required=False, widget=forms.TextInput(attrs=_NO_AUTOFILL))
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("All")), *OnboardedStatus.choices],
                               required=False)


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def dashboard(request, actor):
    """The organisation's records, a page at a time. POST sets (or clears) the search, then the
    page is shown again by GET; the page number is the only thing in the URL."""
    stored = unsealed(request.session.get(SEARCH_KEY))
    # The list under a refused search is the one kept until then, on its first page.
    search = OnboardedSearch(**{key: str(stored.get(key) or "") for key in DashboardSearchForm.base_fields})
    if request.method == "POST":
        if "clear" in request.POST:
            request.session.pop(SEARCH_KEY, None)
            return redirect("social_workers:dashboard")
        form = DashboardSearchForm(request.POST)
        if form.is_valid():
            request.session[SEARCH_KEY] = sealed(form.cleaned_data)  # a name, a NIR: personal data
            return redirect("social_workers:dashboard")
        return _dashboard_page(request, actor, form, search, 1, status=400)
    return _dashboard_page(request, actor, DashboardSearchForm(initial=stored), search,
                           page_number(request.GET.get("page")))


def _dashboard_page(request, actor, form, search: OnboardedSearch, number: int, *, status: int = 200):
    page = records_onboarded_page(actor, search, number)
    letters = letters_to_print(actor)
    response = render(request, "social_workers/dashboard/dashboard.html", {
        "rows": page.object_list, "page": page, "form": form, "searched": bool(search),
        "page_urls": page_urls(reverse("social_workers:dashboard"), page),
        "nir_form": NirAttachForm(), "letters": letters[:LIST_PAGE_SIZE],
        "more_letters": len(letters) > LIST_PAGE_SIZE,
        "organisation": actor.counter_agent.organisation.name,
    }, status=status)
    response["Cache-Control"] = "no-store"  # names of people on a shared workstation
    return response


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def counter_deposit(request, actor, pk):
    record = _record_or_404(actor, pk)
    scripted = request.headers.get("X-Requested-With") == "XMLHttpRequest"
    form = DepositForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            count = document_deposit_batch(actor=actor, record=record, documents=form.cleaned_data["documents"])
        except AccessRefused:
            form.add_error(None, _("You may not deposit into this record: the person withdrew your "
                                   "organisation's deposit right, or the record is closed."))
        except InvalidFiles as exc:
            for name, message in exc.errors:
                form.add_error(None, f"{name}: {message}")
        except InvalidInput as exc:
            form.add_error(None, str(exc))
        else:
            if scripted:  # the page moves on to the answer (a count) once the files are in
                request.session[DEPOSITED_KEY] = {"record": record.pk, "count": count}
                return JsonResponse({"location": reverse("social_workers:counter_deposited", args=[record.pk])})
            return _deposited(request, count)
    if scripted and request.method == "POST":
        # The page keeps the files and their rows: only what to correct comes back.
        errors = [str(e) for e in form.non_field_errors()] + [
            f"{form[name].label}: {e}" for name in form.errors if name != "__all__" for e in form.errors[name]]
        return JsonResponse({"errors": errors}, status=400)
    return render(request, "social_workers/dashboard/deposit.html", {
        "form": form, "record": record, "type_choices": _deposit_type_choices(),
    })


def _deposited(request, count: int):
    # The count only: the agent never comes back to a list of what was deposited.
    response = render(request, "social_workers/dashboard/deposited.html", {"count": count})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@portal_view("counter")
def counter_deposited(request, actor, pk):
    """Where the page goes after a deposit posted by its script: the count, once."""
    record = _record_or_404(actor, pk)
    done = request.session.pop(DEPOSITED_KEY, None)
    if not done or done.get("record") != record.pk:
        return redirect("social_workers:dashboard")
    return _deposited(request, done["count"])


@require_POST
@portal_view("counter")
def counter_deposit_suggestions(request, actor, pk):
    """The second step of a deposit: what each picked file probably is, from its name. The names
    are POSTed (they may say what a paper is about); nothing is read or stored."""
    _record_or_404(actor, pk)
    today = timezone.localdate()
    names = [name[:FILE_NAME_MAX] for name in request.POST.getlist("names")[:MAX_FILES_AT_ONCE]]
    return JsonResponse({"suggestions": [deposit_suggestion(name, today=today) for name in names]})


@require_POST
@portal_view("counter")
def counter_nir_attach(request, actor, pk):
    record = _record_or_404(actor, pk)
    form = NirAttachForm(request.POST)
    if form.is_valid():
        try:
            record_nir_attach(actor=actor, record=record, nir=form.cleaned_data["nir"])
        except InvalidInput as exc:
            form.add_error("nir", str(exc))
        else:
            return render(request, "social_workers/dashboard/nir_attached.html", {"record": record})
    response = render(request, "social_workers/dashboard/nir_attach.html", {"form": form, "record": record},
                      status=400)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def counter_reprint(request, actor, pk):
    """Reprinting means new credentials (the old password is never kept): the same identity
    check as the counter reset (family name and date of birth read from the document), the
    identifier fixed to this record's."""
    return reset_form_page(request, actor, record=_record_or_404(actor, pk))


@require_POST
@portal_view("counter")
def counter_summary_pdf(request, actor, pk):
    """The person's International Patient Summary, printed by the counter that onboarded them
    and handed over: a PDF download only (the agent never sees it on screen), decided by the
    policy (`PRINT_PATIENT_SUMMARY`) and written in the person's access history. A POST: it is
    an act the person is told of, not a page."""
    return patient_summary_response(summary_to_print(actor, pk))


@require_http_methods(["GET", "POST"])
@portal_view("counter")
def counter_letter(request, actor, pk):
    """A letter to print and post, in the person's language (a security notice for someone with
    no phone or e-mail); POST marks it printed so it leaves the list."""
    letter = letter_for(actor, pk)
    if request.method == "POST":
        postal_letter_printed(actor=actor, letter=letter)
        return redirect("social_workers:dashboard")
    context = dict(letter.context)
    context["when"] = datetime.fromisoformat(context["when"]) if context.get("when") else None
    response = render(request, "social_workers/dashboard/letter.html", {
        "letter": letter, "record": letter.record, "language": letter.language, **context,
    })
    response["Cache-Control"] = "no-store"  # a name and a postal address
    return response


urlpatterns = [
    path("dashboard/", dashboard, name="dashboard"),
    path("records/<int:pk>/deposit/", counter_deposit, name="counter_deposit"),
    path("records/<int:pk>/deposited/", counter_deposited, name="counter_deposited"),
    path("records/<int:pk>/deposit/suggestions/", counter_deposit_suggestions, name="counter_deposit_suggestions"),
    path("records/<int:pk>/nir/", counter_nir_attach, name="counter_nir_attach"),
    path("records/<int:pk>/reprint/", counter_reprint, name="counter_reprint"),
    path("records/<int:pk>/summary.pdf", counter_summary_pdf, name="counter_summary_pdf"),
    path("letters/<int:pk>/", counter_letter, name="counter_letter"),
]


def _file_problem(name: str, message: str) -> str:
    """"name.pdf: what is wrong", the message translated where it is written (xgettext does
    not read inside f-strings)."""
    return f"{name}: {message}"
