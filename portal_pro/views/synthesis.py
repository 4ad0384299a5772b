"""The medical synthesis (VSM, DOMAIN.md §2 and §3): read by every professional the policy lets
read it (VIEW_SYNTHESIS), written by the médecin traitant only (EDIT_SYNTHESIS), each save a
new version with its author and date, the earlier ones listed and readable.

Current problems are ICD-10 coded with a picker on the real code list (dmp/icd10.py). The
words typed in the picker may be a diagnosis: they are POSTed, never put in a URL — to
`icd10_search` by the page's script, or with the whole form ("Find") without it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp import icd10, services
from dmp.forms import ComparedLine
from dmp.http import portal_view, record_view, synthesis_cda_response
from dmp.policy import Action, decide
from dmp.selectors import synthesis_for_editing, synthesis_page_for
from dmp.services.synthesis import Problem

from ._common import render_record_page

BLANK_PROBLEM_ROWS = 3
MAX_PROBLEMS = 60
TEXT_FIELDS = ("current_treatments", "allergies", "personal_history", "family_history", "vaccinations",
               "points_of_attention")


@require_GET
@record_view("pro")
def synthesis(request, actor, record, version: int | None = None):
    """The latest synthesis (or version `version`) and the list of versions."""
    page = synthesis_page_for(actor, record, version=version)
    return render_record_page(request, "portal_pro/synthesis/synthesis.html", actor, record, {
        "page": page,
        "synthesis": page.shown,
        "may_edit": decide(actor, Action.EDIT_SYNTHESIS, record).allowed,
    }, section="synthesis")


@require_GET
@record_view("pro")
def synthesis_cda(request, actor, record):
    """The latest synthesis as a CDA VSM document, for the professional's software."""
    return synthesis_cda_response(actor, record)


class SynthesisForm(forms.Form):
    # The version the author started from (0: none yet). Saving over a newer one is refused
    # and offers the merge (optimistic concurrency, dmp/services/synthesis.py).
    base_version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    current_treatments = forms.CharField(label=gettext_lazy("Current treatments"), required=False,
                                         max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    allergies = forms.CharField(label=gettext_lazy("Allergies and intolerances"), required=False, max_length=5000,
                                widget=forms.Textarea(attrs={"rows": 2}))
    personal_history = forms.CharField(label=gettext_lazy("Personal history"), required=False, max_length=5000,
                                       widget=forms.Textarea(attrs={"rows": 3}))
    family_history = forms.CharField(label=gettext_lazy("Family history"), required=False, max_length=5000,
                                     widget=forms.Textarea(attrs={"rows": 2}))
    vaccinations = forms.CharField(label=gettext_lazy("Vaccinations"), required=False, max_length=5000,
                                   widget=forms.Textarea(attrs={"rows": 2}))
    points_of_attention = forms.CharField(label=gettext_lazy("Points of attention"), required=False,
                                          max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))


@dataclass
class ProblemRow:
    """One row of the problems table as typed, with what was wrong with it."""

    icd10: str = ""
    label: str = ""
    since: str = ""  # as typed: an ISO date from the date field
    error: str = ""

    @property
    def empty(self) -> bool:
        return not (self.icd10.strip() or self.label.strip() or self.since.strip())


def _rows_from(synthesis) -> list[ProblemRow]:
    rows = [ProblemRow(p.icd10, p.label, p.since.isoformat() if p.since else "")
            for p in (synthesis.problems.all() if synthesis else [])]
    return rows + [ProblemRow() for _i in range(BLANK_PROBLEM_ROWS)]


def _rows_posted(post) -> list[ProblemRow]:
    codes, labels, since = post.getlist("problem_icd10"), post.getlist("problem_label"), post.getlist("problem_since")
    count = min(max(len(codes), len(labels), len(since)), MAX_PROBLEMS)

    def at(values, i):
        return values[i] if i < len(values) else ""

    return [ProblemRow(at(codes, i)[:20], at(labels, i)[:200], at(since, i)[:10]) for i in range(count)]


def _problems(rows: list[ProblemRow]) -> list[Problem] | None:
    """The coded problems of the filled rows, or None when a row is wrong (its `error` says why).
    A code must be an ICD-10 diagnosis (a category or subcategory of the list); without a
    label, the list's own label is used."""
    today = timezone.localdate()
    problems, wrong, listed = [], False, set()
    for row in rows:
        if row.empty:
            continue
        code = icd10.normalise(row.icd10)
        if not code:
            row.error = _("Give the problem its ICD-10 code (search it by code or by words).")
        elif not icd10.is_diagnosis(code):
            row.error = _("%(code)s is not an ICD-10 diagnosis code.") % {"code": code}
        elif code in listed:
            row.error = _("%(code)s is already in the list above: remove this row or change its code.") % {
                "code": code}
        listed.add(code)
        since = None
        if not row.error and row.since:
            try:
                since = date.fromisoformat(row.since)
            except ValueError:
                row.error = _("Enter a valid date.")
            else:
                if since > today:
                    row.error = _("The date cannot be in the future.")
        if row.error:
            wrong = True
            continue
        row.icd10 = code
        row.label = " ".join(row.label.split()) or icd10.label_of(code)
        problems.append(Problem(icd10=code, label=row.label[:200], since=since))
    return None if wrong else problems


@dataclass
class Conflict:
    """The merge page: the newer version, field by field beside the unsaved text, the problem
    lists first."""

    latest: object  # the newer Synthesis
    lines: list[ComparedLine]


def _problem_lines(rows: list[ProblemRow]) -> str:
    return "\n".join(" ".join(filter(None, (row.icd10, row.label, row.since and f"({row.since})")))
                     for row in rows if not row.empty)


def _conflict(form: SynthesisForm, rows: list[ProblemRow], latest) -> Conflict:
    problems = ComparedLine(_("Current problems"), _problem_lines(rows), _problem_lines(_rows_from(latest)))
    return Conflict(latest, [problems] + [
        ComparedLine(str(form.fields[name].label), form.cleaned_data.get(name, ""),
                     getattr(latest, name, "") if latest else "") for name in TEXT_FIELDS])


@require_http_methods(["GET", "POST"])
@record_view("pro")
def synthesis_edit(request, actor, record):
    """The médecin traitant writes the next version, starting from the latest. Anyone else:
    404. Without JavaScript the picker is two buttons of the same form, which keep everything
    typed so far: "Find" lists the codes matching the words typed, picking one adds it as a
    problem. "Save" writes a new version, if nobody saved one since the form was opened;
    otherwise the page answers 409 with both versions side by side, the author's text kept."""
    latest = synthesis_for_editing(actor, record)
    found: list[icd10.Code] = []
    term = ""
    status = 200
    conflict = None
    if request.method == "POST":
        form = SynthesisForm(request.POST)
        rows = _rows_posted(request.POST)
        if "find" in request.POST or "pick" in request.POST:
            term = request.POST.get("icd10_term", "")[:100]
            rows = [r for r in rows if not r.empty]
            picked = icd10.normalise(request.POST.get("pick", "")[:20])
            if picked and icd10.is_diagnosis(picked):
                # Picking a code already listed does not list it twice.
                if picked not in {icd10.normalise(row.icd10) for row in rows}:
                    rows.append(ProblemRow(picked, icd10.label_of(picked)))
            else:
                found = icd10.search(term)
            rows += [ProblemRow() for _i in range(BLANK_PROBLEM_ROWS)]
        else:
            problems = _problems(rows)
            if form.is_valid() and problems is not None:
                try:
                    written = services.synthesis_write(
                        actor=actor, record=record, problems=problems,
                        base_version=form.cleaned_data["base_version"],
                        **{name: form.cleaned_data[name].strip() for name in TEXT_FIELDS},
                    )
                except services.EditConflict as newer:
                    # Keep everything typed; the form now starts from the newer version, so
                    # saving after merging writes the next one.
                    latest, conflict = newer.latest, _conflict(form, rows, newer.latest)
                    data = request.POST.copy()
                    data["base_version"] = str(newer.version)
                    form = SynthesisForm(data)
                    form.is_valid()
                    form.add_error(None, str(newer))
                    status = 409
                except services.InvalidInput as invalid:
                    form.add_error(None, str(invalid))
                else:
                    messages.success(request, _("Version %(n)d of the synthesis is saved.") % {"n": written.version})
                    return redirect("portal_pro:synthesis", pk=record.pk)
            if problems is None:
                form.add_error(None, _("Correct the problems marked below."))
            status = status if conflict else 400
    else:
        form = SynthesisForm(initial={"base_version": latest.version if latest else 0,
                                      **({name: getattr(latest, name) for name in TEXT_FIELDS} if latest else {})})
        rows = _rows_from(latest)
    return render_record_page(request, "portal_pro/synthesis/edit.html", actor, record, {
        "form": form,
        "rows": rows,
        "latest": latest,
        "found": found,
        "term": term,
        "conflict": conflict,
        "today": timezone.localdate().isoformat(),
    }, section="synthesis", status=status)


@require_POST
@portal_view("pro")
def icd10_search(request, actor):
    """ICD-10 diagnoses matching a code fragment ("E11") or words ("diabetes"), for the
    picker: JSON. The term is POSTed (it may be a diagnosis); nothing about a patient is read.
    The labels are in the doctor's language: French (CIM-10 FR) on French screens where the
    French title was checked, the WHO's English one otherwise (dmp/icd10.py)."""
    term = request.POST.get("term", "")[:100]
    return JsonResponse({"results": [code.as_json() for code in icd10.search(term)]})


urlpatterns = [
    path("records/<int:pk>/synthesis/", synthesis, name="synthesis"),
    path("records/<int:pk>/synthesis/versions/<int:version>/", synthesis, name="synthesis_version"),
    path("records/<int:pk>/synthesis/edit/", synthesis_edit, name="synthesis_edit"),
    path("records/<int:pk>/synthesis/vsm.xml", synthesis_cda, name="synthesis_cda"),
    path("synthesis/icd10/", icd10_search, name="icd10_search"),
]
