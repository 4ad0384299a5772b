"""The counter dashboard: the records the agent's organisation onboarded, with their
administrative status only, and the administrative acts on them (deposit papers, attach a NIR,
reprint credentials). Nothing here reads a document or anything medical: the deposit page
answers with a count, never a title or a link."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dmp.http import actor_for_portal
from dmp.models import DocumentType
from dmp.selectors.counter import letter_for, letters_to_print, onboarded_record, records_onboarded_by
from dmp.services import AccessRefused, InvalidInput, record_nir_attach
from dmp.services.accounts import postal_letter_printed
from dmp.services.documents import (
    COUNTER_DEPOSIT_EXCLUDED_TYPES,
    InvalidFiles,
    NewDocument,
    document_deposit_batch,
)

from ..forms import _NO_AUTOFILL, CredentialsResetForm
from .reset import start_reset

DEPOSIT_ROWS = 10


def _deposit_type_choices():
    return [("", "—")] + [(v, label) for v, label in DocumentType.choices if v not in COUNTER_DEPOSIT_EXCLUDED_TYPES]


class DepositForm(forms.Form):
    """A fixed number of rows (works without JavaScript): a file, its kind, the original's date."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for i in range(1, DEPOSIT_ROWS + 1):
            self.fields[f"file_{i}"] = forms.FileField(label=_("File %(n)d") % {"n": i}, required=False)
            self.fields[f"type_{i}"] = forms.ChoiceField(
                label=_("Kind of paper"), choices=_deposit_type_choices(), required=False)
            self.fields[f"date_{i}"] = forms.DateField(
                label=_("Date on the original"), required=False,
                widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))

    def rows(self):
        return [(self[f"file_{i}"], self[f"type_{i}"], self[f"date_{i}"]) for i in range(1, DEPOSIT_ROWS + 1)]

    def clean(self):
        data = super().clean()
        documents = []
        for i in range(1, DEPOSIT_ROWS + 1):
            upload = data.get(f"file_{i}")
            if not upload:
                continue
            doc_type, act_date = data.get(f"type_{i}"), data.get(f"date_{i}")
            if not doc_type:
                self.add_error(f"type_{i}", _("Choose the kind of paper."))
            if not act_date:
                self.add_error(f"date_{i}", _("Give the date written on the original."))
            if doc_type and act_date:
                name = upload.name
                stem = " ".join(PurePath(name).stem.replace("_", " ").split())
                documents.append(NewDocument(
                    name=name, content=upload.read(), doc_type=doc_type,
                    title=stem or str(DocumentType(doc_type).label), act_date=act_date))
        if not documents and not self.errors:
            raise forms.ValidationError(_("Choose at least one file."))
        data["documents"] = documents
        return data


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


@login_required
@require_GET
def dashboard(request):
    actor = actor_for_portal(request, "counter")
    response = render(request, "social_workers/dashboard/dashboard.html", {
        "rows": records_onboarded_by(actor), "nir_form": NirAttachForm(), "letters": letters_to_print(actor),
        "organisation": actor.counter_agent.organisation.name,
    })
    response["Cache-Control"] = "no-store"  # names of people on a shared workstation
    return response


@login_required
@require_http_methods(["GET", "POST"])
def counter_deposit(request, pk):
    actor = actor_for_portal(request, "counter")
    record = _record_or_404(actor, pk)
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
            # The count only: the agent never comes back to a list of what was deposited.
            response = render(request, "social_workers/dashboard/deposited.html", {"count": count})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "social_workers/dashboard/deposit.html", {"form": form, "record": record})


@login_required
@require_POST
def counter_nir_attach(request, pk):
    actor = actor_for_portal(request, "counter")
    record = _record_or_404(actor, pk)
    form = NirAttachForm(request.POST)
    if form.is_valid():
        try:
            record_nir_attach(actor=actor, record=record, nir=form.cleaned_data["nir"])
        except AccessRefused as exc:
            raise Http404 from exc
        except InvalidInput as exc:
            form.add_error("nir", str(exc))
        else:
            return render(request, "social_workers/dashboard/nir_attached.html", {"record": record})
    response = render(request, "social_workers/dashboard/nir_attach.html", {"form": form, "record": record},
                      status=400)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def counter_reprint(request, pk):
    """Reprinting means new credentials (the old password is never kept): the same identity
    check as the counter reset (family name and date of birth read from the document), the
    identifier fixed to this record's."""
    actor = actor_for_portal(request, "counter")
    record = _record_or_404(actor, pk)
    data = request.POST if request.method == "POST" else None
    form = CredentialsResetForm(data, initial={"identifier": record.identifier})
    form.fields["identifier"].disabled = True
    if data is not None and form.is_valid():
        response = start_reset(request, actor, form, identifier=record.identifier)
        if response is not None:
            return response
    response = render(request, "social_workers/dashboard/reprint.html", {"form": form, "record": record})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def counter_letter(request, pk):
    """A letter to print and post, in the person's language (a security notice for someone with
    no phone or e-mail); POST marks it printed so it leaves the list."""
    actor = actor_for_portal(request, "counter")
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
    path("records/<int:pk>/nir/", counter_nir_attach, name="counter_nir_attach"),
    path("records/<int:pk>/reprint/", counter_reprint, name="counter_reprint"),
    path("letters/<int:pk>/", counter_letter, name="counter_letter"),
]
