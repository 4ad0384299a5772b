"""How every form of the site is rendered (docs/design-system.md).

One field template, `templates/forms/field.html`, for the three portals and the account pages:
label, help text, errors and widget, with the ids Django links by `aria-describedby`. It lives
with the project's templates, so the renderer reads the project's template settings (and its
`ltr`/`isolate` builtins) rather than Django's own engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    field_template_name = "forms/field.html"


@dataclass(frozen=True)
class ComparedLine:
    """One line of `templates/forms/compare.html`, the page of a save refused because someone
    saved first: a field's label, what the person typed, what is saved now."""

    label: str
    typed: str
    saved: str

    @property
    def differs(self) -> bool:
        return self.typed.strip() != self.saved.strip()
