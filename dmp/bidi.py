"""Bidirectional text: keeping fragments whole inside right-to-left text (DOMAIN.md §7).

In an Arabic or Persian sentence the Unicode bidi algorithm reorders the runs of a fragment
that mixes digits, spaces and punctuation: a NIR "1 85 05 78 006 084 91" becomes
"91 084 006 78 05 85 1", a date "12/04/1961" "1961/04/12", an e-mail address breaks at its
dots. Isolating the fragment makes the algorithm treat it as one neutral character outside and
lay it out by itself inside:

- `ltr`: always left to right, whatever the language (NIR, identifiers, phone numbers,
  e-mail addresses, codes, ICD-10 codes, numeric dates and times);
- `isolate` (direction from the first strong letter): names, titles, file names, any text
  typed by people, which may be in Latin or Arabic script.

In HTML the isolation is a `<bdi>` element (`dmp/templatetags/bidi.py`); in plain text (SMS,
text e-mails) the Unicode isolates LRI/FSI … PDI, added only when the language is written right
to left: in a Latin-script SMS they would force the UCS-2 encoding and halve its length.
"""

from __future__ import annotations

from django.utils import translation

LRI = "\u2066"  # left-to-right isolate
FSI = "\u2068"  # first-strong isolate
PDI = "\u2069"  # pop directional isolate


def ltr_text(value: object) -> str:
    """A left-to-right fragment of a plain text, isolated when the current language is RTL."""
    text = "" if value is None else str(value)
    return f"{LRI}{text}{PDI}" if text and translation.get_language_bidi() else text


def isolated_text(value: object) -> str:
    """A fragment of unknown direction (a name…) of a plain text, isolated when the current
    language is RTL."""
    text = "" if value is None else str(value)
    return f"{FSI}{text}{PDI}" if text and translation.get_language_bidi() else text


# Fields whose value is always written left to right, whatever the page's direction.
LTR_FIELDS = ("nir", "identifier", "phone", "email", "document_number", "code", "rpps", "batch")


class DirectionalInputs:
    """A form mixin: text inputs and text areas get `dir="auto"` (a name or a note typed in Latin
    letters on an Arabic page, or the reverse, is shown in its own direction while typed), and
    those of `LTR_FIELDS` (NIR, phone, e-mail, codes…) `dir="ltr"`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            if getattr(widget, "input_type", "textarea" if widget.__class__.__name__ == "Textarea" else "") not in (
                    "text", "textarea", "email", "tel", "search"):
                continue
            ltr = getattr(widget, "input_type", "") in ("email", "tel") or any(part in name for part in LTR_FIELDS)
            widget.attrs.setdefault("dir", "ltr" if ltr else "auto")
