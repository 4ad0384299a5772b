"""Laboratory values in templates, as dmp/trend.py writes them: `{{ v|value_text }}`,
`{{ v|reference_range }}`, `{{ v|plain_flag }}` (the flag in a patient's words) and
`{{ v|flag_sign }}` (an arrow beside the flag's words, so a flag never rests on colour alone)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy

from .. import trend

register = template.Library()

FLAG_SIGNS = {"H": "↑", "HH": "↑↑", "L": "↓", "LL": "↓↓", "A": "!"}

# The laboratory's flag as a patient reads it, beside the arrow.
PLAIN_FLAGS = {
    "N": gettext_lazy("Within the usual range"),
    "H": gettext_lazy("Higher than the usual range"),
    "HH": gettext_lazy("Much higher than the usual range"),
    "L": gettext_lazy("Lower than the usual range"),
    "LL": gettext_lazy("Much lower than the usual range"),
    "A": gettext_lazy("Outside the usual range"),
}

register.filter("value_text", trend.value_text)
register.filter("reference_range", trend.reference_range)


@register.filter
def flag_sign(observation) -> str:
    return FLAG_SIGNS.get(observation.interpretation, "")


@register.filter
def plain_flag(observation) -> str:
    return str(PLAIN_FLAGS.get(observation.interpretation, ""))
