"""The design system (docs/design-system.md): colours are named once, in the stylesheet's `:root`,
and every form is rendered by the one field template."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STYLESHEET = ROOT / "static" / "css" / "dmp.css"
TEMPLATES = ROOT / "templates"

# A literal colour: a hex value, a colour function, or a CSS colour keyword a hurried edit would type.
LITERAL_COLOUR = re.compile(
    r"#[0-9a-f]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch|color)\(|"
    r":\s*[^;{}]*\b(?:white|black|red|green|blue|gr[ae]y|orange|yellow|navy|maroon|purple|silver)\b(?!-)",
    re.IGNORECASE,
)


def _without_comments(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)


def _root_and_rest(css: str) -> tuple[str, str]:
    """The `:root{…}` block (properties only, no nesting) and the stylesheet without it."""
    match = re.search(r":root\s*\{([^{}]*)\}", css)
    assert match, "the stylesheet has no :root block"
    return match.group(1), css[: match.start()] + css[match.end():]


def test_every_colour_is_a_custom_property_of_root():
    root, rest = _root_and_rest(_without_comments(STYLESHEET.read_text()))
    literal = [
        f"{rule.strip()[:80]}: {found.group(0)}"
        for rule in rest.split("}")
        if (found := LITERAL_COLOUR.search(rule))
    ]
    assert literal == []
    assert "--color-brand:#00467f" in root.replace(" ", "")


def test_every_custom_property_used_is_defined():
    root, rest = _root_and_rest(_without_comments(STYLESHEET.read_text()))
    defined = set(re.findall(r"(--[a-z0-9-]+)\s*:", root))
    used = set(re.findall(r"var\((--[a-z0-9-]+)", rest)) | set(re.findall(r"var\((--[a-z0-9-]+)", root))
    assert used - defined == set()
    assert defined - used == set(), "a property nobody uses"


def test_the_check_catches_a_literal_colour():
    """The guard itself: a rule with a hard-coded colour outside :root is found."""
    _, rest = _root_and_rest(":root{--color-brand:#00467f}.x{color:#00467f}.y{border:1px solid white}")
    assert [bool(LITERAL_COLOUR.search(rule)) for rule in rest.split("}")] == [True, True, False]


def test_no_template_renders_field_errors_by_hand():
    """Field errors, help texts and non-field errors come from templates/forms/ (field.html and
    errors.html): no template loops over a form's errors, and the per-screen copies are gone."""
    by_hand = [
        str(path.relative_to(ROOT))
        for path in TEMPLATES.rglob("*.html")
        if path.relative_to(TEMPLATES).parts[0] != "forms"
        and re.search(r"{%\s*for\s+\w+(?:\s*,\s*\w+)?\s+in\s+[\w.]*\.(?:errors|non_field_errors)(?:\.items)?\s*%}",
                      path.read_text())
    ]
    assert by_hand == []
    for copy in ("account/_field.html", "account/_form_errors.html", "portal_patient/information/_field.html",
                 "portal_pro/open/_field.html", "portal_patient/manage/_errors.html"):
        assert not (TEMPLATES / copy).exists(), copy
