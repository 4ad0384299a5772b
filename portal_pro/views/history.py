"""The record's access history for the médecin traitant (DOMAIN.md §4: "reads the access
history, blocks a PS at the patient's request"): the same summary and detail as the patient's
(dmp/screens/history.py, templates/access_history/), under the policy's VIEW_ACCESS_HISTORY,
and blocking a professional, named by RPPS number or found by name, once the patient asked for it
(BLOCK_PROFESSIONAL). The filters travel in the query string: an account id and dates,
nothing medical."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from dmp import services
from dmp.forms import FindProfessionalForm
from dmp.http import record_view
from dmp.models.people import validate_rpps
from dmp.policy import Action
from dmp.screens.history import history_context
from dmp.selectors import professional_by_rpps, professionals_matching

from ._common import render_record_page


class BlockForm(forms.Form):
    """A professional named by their exact RPPS number, and the doctor's word that the
    patient asked for the block. The directory cannot be browsed from here."""

    rpps = forms.CharField(max_length=20, label=gettext_lazy("RPPS number of the professional to block"))
    patient_asked = forms.BooleanField(
        label=gettext_lazy("The patient asked me to block this professional."),
        error_messages={"required": gettext_lazy("Block a professional only at the patient's request: "
                                                 "tick the box to confirm that they asked.")},
    )

    def __init__(self, *args, actor, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor

    def clean_rpps(self):
        rpps = "".join(self.cleaned_data["rpps"].split())
        validate_rpps(rpps)
        professional = professional_by_rpps(rpps)
        if professional is None:
            raise ValidationError(_("No health professional has this RPPS number."))
        if professional.pk == self.actor.professional.pk:
            raise ValidationError(_("You cannot block yourself."))
        return professional


def _history_page(request, actor, record, *, block_form: BlockForm | None = None,
                  find_form: FindProfessionalForm | None = None, search=None, status: int = 200):
    return render_record_page(request, "portal_pro/history/history.html", actor, record, {
        **history_context(request, actor, record, history_view="portal_pro:history",
                          base_template="portal_pro/base_record.html"),
        "block_form": block_form or BlockForm(actor=actor),
        "find_form": find_form or FindProfessionalForm(prefix="block"),
        "search": search,
    }, section="history", status=status)


@require_GET
@record_view("pro")
def history(request, actor, record):
    return _history_page(request, actor, record)


@require_POST
@record_view("pro")
def professional_block(request, actor, record):
    """Block a professional at the patient's request: no access at all to this record, not
    even in an emergency; their care authorisations end. The patient can lift it."""
    form = BlockForm(request.POST, actor=actor)
    if form.is_valid():
        professional = form.cleaned_data["rpps"]
        services.professional_block(actor=actor, record=record, professional=professional)
        messages.success(request, _(
            "%(name)s is blocked at the patient's request: they can no longer open this record, not even in an "
            "emergency. The patient can lift the block from their record.") % {
                "name": professional.user.get_full_name() or professional.rpps})
        return redirect("portal_pro:history", pk=record.pk)
    return _history_page(request, actor, record, block_form=form, status=400)


@require_POST
@record_view("pro")
def professional_find(request, actor, record):
    """Find the professional the patient wants blocked by name, profession and town (the
    patient may not know their RPPS number): the history page comes back with those found, each
    with the block form for them. Only where this doctor may block (BLOCK_PROFESSIONAL)."""
    form = FindProfessionalForm(request.POST, prefix="block")
    if not form.is_valid():
        return _history_page(request, actor, record, find_form=form, status=400)
    data = form.cleaned_data
    search = professionals_matching(actor, record, data["name"], profession=data["profession"], town=data["town"],
                                    action=Action.BLOCK_PROFESSIONAL)
    return _history_page(request, actor, record, find_form=form, search=search,
                         status=429 if search.limited else 200)


urlpatterns = [
    path("records/<int:pk>/history/", history, name="history"),
    path("records/<int:pk>/history/block/", professional_block, name="professional_block"),
    path("records/<int:pk>/history/block/find/", professional_find, name="professional_find"),
]
