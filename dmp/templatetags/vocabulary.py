"""Clinical vocabulary in templates: a problem's label in the reader's language when the doctor
picked the code's title rather than writing their own words (dmp/icd10.py)."""

from __future__ import annotations

from django import template

from .. import icd10

register = template.Library()


@register.filter
def problem_label(problem) -> str:
    """`{{ p|problem_label }}`: "Diabète sucré de type 2" on a French screen, "Type 2 diabetes
    mellitus" on an English one, the doctor's own label unchanged."""
    return icd10.shown_label(problem.icd10, problem.label)
