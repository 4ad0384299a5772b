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
