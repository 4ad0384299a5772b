"""How every form of the site is rendered (docs/design-system.md).

One field template, `templates/forms/field.html`, for the three portals and the account pages:
label, help text, errors and widget, with the ids Django links by `aria-describedby`. It lives
with the project's templates, so the renderer reads the project's template settings (and its
`ltr`/`isolate` builtins) rather than Django's own engine.
"""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class FormRenderer(TemplatesSetting):
    field_template_name = "forms/field.html"
