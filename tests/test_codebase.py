"""Checks on the code base itself."""

from __future__ import annotations

import ast
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_ships_without_its_migration():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


ROOT = Path(__file__).resolve().parent.parent
SOURCE = ("dmp", "portal_patient", "portal_pro", "social_workers")
INVALID_INPUT_CLASSES = {"InvalidInput", "FourEyesRefused"}  # InvalidFiles sets its own code


def _sources() -> list[Path]:
    return sorted(path for package in SOURCE for path in (ROOT / package).rglob("*.py"))


def _raised_without_a_code() -> list[str]:
    missing = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in INVALID_INPUT_CLASSES and not any(keyword.arg == "code" for keyword in node.keywords):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return missing


def test_every_invalid_input_carries_a_code():
    """Callers act on `InvalidInput.code`, never on the translated message: every refusal
    names its code, and nothing compares an error's text with a message."""
    assert _raised_without_a_code() == []
    compared = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ("str(exc) ==" in line or "str(error) ==" in line or "str(invalid) ==" in line)
    ]
    assert compared == []


# The portals resolve the actor and the record once, in dmp/http.py (`portal_view`,
# `record_view`), and a service's refusal becomes a 404 there too (`AccessRefusedMiddleware`).
HTTP_MODULE = ROOT / "dmp" / "http.py"
# The FHIR API answers its own 404 in JSON (DRF): its refusals are mapped where they are caught.
OWN_ERROR_ANSWERS = (ROOT / "dmp" / "api",)


def _name_of(node) -> str | None:
    return getattr(node, "id", None) or getattr(node, "attr", None)


def test_only_dmp_http_resolves_the_portal_actor():
    """A view gets its actor from `portal_view` or `record_view`, never by calling
    `actor_for_portal` itself: one place decides who stands in which portal."""
    callers = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _sources() if path != HTTP_MODULE
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if (isinstance(node, ast.Call) and _name_of(node.func) == "actor_for_portal")
        or (isinstance(node, ast.ImportFrom) and any(alias.name == "actor_for_portal" for alias in node.names))
    ]
    assert callers == []


def _catches_access_refused(handler: ast.ExceptHandler) -> bool:
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_name_of(node) == "AccessRefused" for node in caught if node is not None)


def _raises_http404(statement) -> bool:
    if not isinstance(statement, ast.Raise) or statement.exc is None:
        return False
    raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
    return _name_of(raised) == "Http404"


def _refusals_turned_into_404_by_hand() -> list[str]:
    found = []
    for path in _sources():
        if any(path.is_relative_to(folder) for folder in OWN_ERROR_ANSWERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.ExceptHandler) and _catches_access_refused(node)
                    and any(_raises_http404(statement) for statement in node.body)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_view_turns_a_refusal_into_404_by_hand():
    """`except AccessRefused: raise Http404` is the middleware's job (dmp/http.py); a view
    catches the refusal only to do something else (a message, a form error, a 403)."""
    assert _refusals_turned_into_404_by_hand() == []


def test_the_rule_checks_see_what_they_forbid():
    """The two checks above find what they look for (else they would pass on anything)."""
    tree = ast.parse(
        "try:\n    pass\nexcept services.AccessRefused as refused:\n    raise Http404 from refused\n"
        "try:\n    pass\nexcept (InvalidInput, AccessRefused):\n    raise Http404()\n"
        "try:\n    pass\nexcept AccessRefused:\n    messages.error(request, 'no')\n"
    )
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    assert [_catches_access_refused(h) and any(_raises_http404(s) for s in h.body) for h in handlers] == [
        True, True, False]
    assert _name_of(ast.parse("http.actor_for_portal(request, 'pro')").body[0].value.func) == "actor_for_portal"
