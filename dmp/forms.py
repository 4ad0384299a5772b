"""How every form of the site is rendered (docs/design-system.md).

One field template, `templates/forms/field.html`, for the three portals and the account pages:
label, help text, errors and widget, with the ids Django links by `aria-describedby`. It lives
with the project's templates, so the renderer reads the project's template settings (and its
`ltr`/`isolate` builtins) rather than Django's own engine. And the one form both portals share.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.forms.renderers import TemplatesSetting
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models.people import Profession
from .selectors import professional_search_words_valid


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


class FindProfessionalForm(forms.Form):
    """A search of the professionals by name, narrowed by profession and town. POSTed and
    answered by the POST itself: the words never reach a URL (nor the server's access log)."""

    name = forms.CharField(max_length=100, label=gettext_lazy("Name or RPPS number"),
                           help_text=gettext_lazy("Family name, given name, or both."))
    profession = forms.ChoiceField(required=False, label=gettext_lazy("Profession"),
                                   choices=[("", gettext_lazy("Any profession")), *Profession.choices])
    town = forms.CharField(required=False, max_length=100, label=gettext_lazy("Town where they practise"))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if not professional_search_words_valid(name):
            raise ValidationError(_("Type at least two letters of their name."))
        return name
