"""Writing the medical synthesis: a new version each time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from .. import access_log, icd10
from ..models import Record, Synthesis, SynthesisProblem
from ..models.synthesis import validate_icd10
from ..policy import Action, Actor
from . import EditConflict, InvalidInput, InvalidInputCode, permit


@dataclass(frozen=True)
class Problem:
    icd10: str
    label: str
    since: date | None = None


def synthesis_write(*, actor: Actor, record: Record, problems: list[Problem], base_version: int | None = None,
                    **fields: str) -> Synthesis:
    """The médecin traitant writes a new version of the synthesis; older versions stay.

    `base_version` is the version the author started from (0: there was none yet), as the edit
    form carried it. When another version was saved since (another tab, another device), nothing
    is written: `EditConflict` carries the latest version so the author can merge, and saves
    again from it. None (a seeder, an import) writes without that check."""
    decision = permit(actor, Action.EDIT_SYNTHESIS, record)
    allowed = {"personal_history", "family_history", "current_treatments", "allergies", "vaccinations",
               "points_of_attention"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"unknown synthesis fields: {sorted(unknown)}")
    if not problems and not any(fields.values()):
        raise InvalidInput(_("The synthesis is empty."), code=InvalidInputCode.MISSING)
    # Codes as the list keeps them ("e119" is E11.9), each once.
    problems = [replace(problem, icd10=icd10.normalise(problem.icd10)) for problem in problems]
    listed = set()
    for problem in problems:
        code = problem.icd10
        try:
            validate_icd10(code)
        except ValidationError as exc:
            raise InvalidInput(exc.messages[0], code=InvalidInputCode.INVALID) from exc
        if code in listed:
            raise InvalidInput(_("The same ICD-10 code is listed twice: %(code)s.") % {"code": code},
                               code=InvalidInputCode.DUPLICATE)
        listed.add(code)
    # Lock the record row so two saves cannot take the same version number, nor both pass the
    # base-version check: the second waits here and then sees the first one's version.
    with transaction.atomic():
        Record.objects.select_for_update().get(pk=record.pk)
        last = Synthesis.objects.filter(record=record).aggregate(v=Max("version"))["v"] or 0
        if base_version is not None and base_version != last:
            latest = (Synthesis.objects.filter(record=record, version=last).select_related("author__user")
                      .prefetch_related("problems").first())
            raise EditConflict(
                _("Version %(n)d of the synthesis was saved after you opened this form: nothing of yours is "
                  "saved yet. Compare both versions, merge them below, then save again.") % {"n": last},
                latest=latest, version=last)
        synthesis = Synthesis.objects.create(record=record, version=last + 1, author=actor.professional, **fields)
        SynthesisProblem.objects.bulk_create(
            # 200 characters: the bound the column used to keep before it held encrypted tokens.
            SynthesisProblem(synthesis=synthesis, icd10=p.icd10, label=p.label[:200], since=p.since) for p in problems
        )
        access_log.write(actor, Action.EDIT_SYNTHESIS, decision, synthesis, record=record)
    return synthesis
