from django.conf import settings
from django.utils.translation import get_language_info

from . import languages_offered, second_factor_required

# Each language in its own name, as its readers write it (Django's names use other casings
# and, for Arabic, a diacritic that many readers do not expect in a menu).
LANGUAGE_OWN_NAMES = {
    "fr": "Français", "en": "English", "ar": "العربية", "ru": "Русский", "uk": "Українська",
    "sq": "Shqip", "fa": "فارسی",
}


def account(request) -> dict:
    """What the page header offers a logged-in account: its password, and its second factor
    (recovery codes) for those who have one; and to everyone, the language switch."""
    user = getattr(request, "user", None)
    return {"has_second_factor_pages": second_factor_required(user), "language_choices": language_choices(user)}


def language_choices(user=None) -> list[dict]:
    """The languages this person may choose, for the switch: code, own name, and whether it is
    written right to left (so the option carries its own `lang` and `dir`)."""
    offered = languages_offered(user)
    choices = []
    for code, _name in settings.LANGUAGES:
        if code not in offered:
            continue
        info = get_language_info(code)
        choices.append({"code": code, "name": LANGUAGE_OWN_NAMES.get(code, info["name_local"]),
                        "bidi": info["bidi"]})
    return choices


