"""What templates/portal_pro/_add_documents.html needs, so that any page about a record can
include it with only `record` and `access` in its context."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.utils import timezone

register = template.Library()


@dataclass(frozen=True)
class AddDocuments:
    form: object  # portal_pro.views.documents.AddDocumentsForm, bound after a failed post
    type_groups: list  # [(space label, [(type, label), …]), …]: what a professional may add
    today: str  # ISO date, the latest date of an act
    max_files: int
    max_mb: int


@register.simple_tag
def pro_add_documents(form=None) -> AddDocuments:
    """The add form (the one given, bound with its errors, or a new one) and its choices."""
    from django.conf import settings

    from dmp.services.documents import MAX_FILES_AT_ONCE

    from ..views.documents import AddDocumentsForm, professional_type_choices

    return AddDocuments(
        form=form or AddDocumentsForm(),
        type_groups=professional_type_choices(),
        today=timezone.localdate().isoformat(),
        max_files=MAX_FILES_AT_ONCE,
        max_mb=settings.DOCUMENT_MAX_BYTES // 2**20,
    )
