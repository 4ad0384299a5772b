"""Template filters that isolate fragments inside text that may run right to left (see
dmp/bidi.py for the why). `{% load bidi %}`, then:

- `{{ record.identifier|ltr }}`, `{{ record.birth_date|date:"SHORT_DATE_FORMAT"|ltr }}`:
  `<bdi dir="ltr">…</bdi>`, for what is always left to right (NIR, identifiers, phone numbers,
  e-mail addresses, codes, numeric dates);
- `{{ record.full_name|isolate }}`: `<bdi>…</bdi>` (direction from its first letter), for
  names, titles, file names, free text;
- `{{ code|ltr_text }}`, `{{ name|isolated_text }}` in plain-text templates (SMS, text
  e-mails): Unicode isolates when the language is right to left, nothing otherwise.

The HTML filters escape their input (a value already marked safe is kept as it is) and give
nothing for an empty value, so `|default:` can follow them.
"""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape, format_html

from .. import bidi

register = template.Library()


def _empty(value) -> bool:
    return value is None or value == ""


@register.filter(is_safe=True)
def ltr(value):
    """`<bdi dir="ltr">`: a fragment always written left to right."""
    if _empty(value):
        return ""
    return format_html('<bdi dir="ltr">{}</bdi>', conditional_escape(value))


@register.filter(is_safe=True)
def isolate(value):
    """`<bdi>`: a fragment whose direction is its first strong letter's."""
    if _empty(value):
        return ""
    return format_html("<bdi>{}</bdi>", conditional_escape(value))


@register.filter
def ltr_text(value):
    return bidi.ltr_text(value)


@register.filter
def isolated_text(value):
    return bidi.isolated_text(value)
