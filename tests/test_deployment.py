"""Production configuration and error pages.

The production settings are only ever loaded on a real server, so the suite (DMP_ENV=test)
loads them in a subprocess: `check --deploy` must pass with nothing silenced, and a server
given the public development keys must refuse to start rather than run with them. Error
pages are what a refused professional sees: they must not tell a missing record from one he
may not read, nor leak a traceback.
"""

from __future__ import annotations

import ast
import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.shortcuts import render
from django.test import RequestFactory
from django.urls import path, reverse

from dmp import settings as dmp_settings
from dmp.models import Record
from dmp.views import error_500
from tests.fresh_starts import manage_each, settings_in, settings_values

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_FILE = BASE_DIR / "dmp" / "settings.py"
CSRF_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _variables_read_by_settings() -> set[str]:
    """Every NAME settings.py reads through `env.<cast>("NAME", ...)`, plus NAME_FILE for the
    secrets listed in its *_FILE loop. Read from the source so a new variable is noticed."""
    tree = ast.parse(SETTINGS_FILE.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            secrets_with_file = [elt.value for elt in node.iter.elts if isinstance(elt, ast.Constant)]
            names.update(f"{name}_FILE" for name in secrets_with_file)
    return names


def _production_environment(**overrides: str | None) -> dict[str, str]:
    """A production environment built from scratch: nothing the test run itself sets (DEBUG,
    eager Celery...) may leak into the settings under test. None removes a variable."""
    # DJANGO_ALLOW_ASYNC_UNSAFE is set by `make test` for the browser tests; never in production.
    test_only = _variables_read_by_settings() | {"DJANGO_ALLOW_ASYNC_UNSAFE", "CI"}
    base = {k: v for k, v in os.environ.items() if k not in test_only}
    values: dict[str, str | None] = {
        "DMP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),  # 86 random URL-safe characters
        "ALLOWED_HOSTS": "dmp.example.org",
        "DOCUMENT_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SEARCH_INDEX_KEYS": secrets.token_urlsafe(48),
        "AUDIT_HMAC_KEYS": secrets.token_urlsafe(48),
        "AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "AUDIT_CHECKPOINT_DIR": "/var/lib/dmp/audit-checkpoints",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or "sqlite:///:memory:",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "EMAIL_URL": "smtp://localhost:25",
        "SMS_BACKEND": "dmp.sms.BrevoSmsBackend",
        "SMS_API_KEY": secrets.token_urlsafe(32),
        "CLAMD_ADDRESS": "tcp://127.0.0.1:3310",
    } | overrides
    return base | {k: v for k, v in values.items() if v is not None}


def _manage(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=environment,
        capture_output=True, text=True, timeout=180, check=False,
    )


def _dotenv_defines(name: str) -> bool:
    """settings.py also reads BASE_DIR/.env; a developer's .env could fill a variable we remove."""
    dotenv = BASE_DIR / ".env"
    return dotenv.exists() and re.search(rf"^\s*(export\s+)?{name}\s*=", dotenv.read_text(), re.M) is not None


@pytest.mark.slow
def test_production_settings_pass_check_deploy_with_nothing_silenced():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", environment=_production_environment())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "System check identified no issues (0 silenced)." in result.stdout, output


# Each configuration production must refuse, by the name its test is reported under.
REFUSED = {
    param.id: param.values[0] for param in [
        pytest.param({"SECRET_KEY": None}, id="no-secret-key"),
        pytest.param({"SECRET_KEY": dmp_settings._DEV_SECRET}, id="development-secret-key"),
        pytest.param({"DOCUMENT_ENCRYPTION_KEYS": dmp_settings._DEV_FILE_KEY}, id="development-fernet-key"),
        pytest.param(
            {"DOCUMENT_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{dmp_settings._DEV_FILE_KEY}"},
            id="development-fernet-key-kept-for-decryption",
        ),
        pytest.param({"DOCUMENT_ENCRYPTION_KEYS": None}, id="no-fernet-key"),
        pytest.param({"REDIS_URL": None}, id="no-redis"),
        pytest.param({"ALLOWED_HOSTS": None}, id="no-allowed-hosts"),
        pytest.param({"DATABASE_URL": None}, id="no-database"),
        pytest.param({"EMAIL_URL": None}, id="no-email"),
        pytest.param({"DOCUMENT_ENCRYPTION_KEYS": "not-a-fernet-key"}, id="malformed-fernet-key"),
        pytest.param({"SMS_BACKEND": None}, id="login-codes-printed-on-the-console"),
        pytest.param({"SMS_API_KEY": None}, id="sms-provider-without-key"),
        pytest.param({"SEARCH_INDEX_KEYS": None}, id="no-search-index-key"),
        pytest.param({"SEARCH_INDEX_KEYS": dmp_settings._DEV_SEARCH_KEY}, id="development-search-index-key"),
        pytest.param({"SEARCH_INDEX_KEYS": f"{secrets.token_urlsafe(48)},{dmp_settings._DEV_SEARCH_KEY}"},
                     id="development-search-index-key-kept-for-lookups"),
        pytest.param({"SEARCH_INDEX_KEYS": "too-short"}, id="short-search-index-key"),
        pytest.param({"AUDIT_HMAC_KEYS": None}, id="no-audit-hmac-key"),
        pytest.param({"AUDIT_HMAC_KEYS": dmp_settings._DEV_AUDIT_HMAC_KEY}, id="development-audit-hmac-key"),
        pytest.param({"AUDIT_HMAC_KEYS": f"{secrets.token_urlsafe(48)},{dmp_settings._DEV_AUDIT_HMAC_KEY}"},
                     id="development-audit-hmac-key-kept-for-verifying"),
        pytest.param({"AUDIT_HMAC_KEYS": "too-short"}, id="short-audit-hmac-key"),
        pytest.param({"AUDIT_SIGNING_KEY": None}, id="no-audit-signing-key"),
        pytest.param({"AUDIT_SIGNING_KEY": dmp_settings._DEV_AUDIT_SIGNING_KEY}, id="development-audit-signing-key"),
        pytest.param({"AUDIT_SIGNING_KEY": "bm90LTMyLWJ5dGVz"}, id="malformed-audit-signing-key"),
        pytest.param({"AUDIT_CHECKPOINT_DIR": None}, id="no-audit-checkpoint-folder"),
    ]
}


@pytest.fixture(scope="module")
def refusals():
    """`manage.py check` under each configuration of REFUSED, every one a fresh start of its own
    (forked from one interpreter: tests/fresh_starts.py), by the configuration's name."""
    runs = manage_each(*((["check"], _production_environment(**overrides)) for overrides in REFUSED.values()))
    return dict(zip(REFUSED, runs, strict=True))


@pytest.mark.parametrize("case", REFUSED)
def test_production_refuses_to_start_without_its_own_keys(refusals, case):
    """The development keys are public (they are in settings.py): a server running on them
    would have a forgeable session key and documents anyone can decrypt."""
    for name, value in REFUSED[case].items():
        if value is None and _dotenv_defines(name):
            pytest.skip(f"the local .env defines {name}")
    result = refusals[case]
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr, result.stderr


def test_make_run_serves_without_debug_pages():
    """`make run` (the development environment, nothing set) shows errors as production does:
    DEBUG is off unless a developer turns it on."""
    test_only = _variables_read_by_settings() | {"DJANGO_ALLOW_ASYNC_UNSAFE", "CI"}
    environment = {k: v for k, v in os.environ.items() if k not in test_only}
    environment["DATABASE_URL"] = "sqlite:///:memory:"
    if _dotenv_defines("DEBUG"):
        pytest.skip("this checkout's .env sets DEBUG")
    # DEBUG is the settings module's alone: evaluated in a process of its own per environment.
    default, asked = settings_in(["DEBUG"], environment, environment | {"DEBUG": "true"})
    assert settings_values(default) == {"DEBUG": False}
    assert settings_values(asked) == {"DEBUG": True}


def test_env_example_documents_every_variable_settings_reads():
    """.env.example is the operator's list of knobs; a variable missing there is one nobody sets."""
    example = (BASE_DIR / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    assert _variables_read_by_settings() - documented == set()


def _without_csrf_token(body: str) -> str:
    # The token is masked differently on every response; it carries nothing about the record.
    return CSRF_TOKEN.sub("", body)


@pytest.mark.django_db
def test_a_refused_record_and_a_missing_record_get_the_same_404_naming_nothing(client, world, settings):
    """A different page for "exists but not yours" would let any professional probe who has a
    record; so the refusal and the absence must be byte-for-byte the same page."""
    settings.DEBUG = False
    record = world.record
    client.force_login(world.stranger.user)
    missing_pk = Record.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000

    refused = client.get(reverse("portal_pro:record", args=[record.pk]))
    missing = client.get(reverse("portal_pro:record", args=[missing_pk]))

    assert refused.status_code == missing.status_code == 404
    assert "errors/not_available.html" in [t.name for t in refused.templates]
    body = _without_csrf_token(refused.content.decode())
    assert body == _without_csrf_token(missing.content.decode())
    clues = [
        record.family_name, record.given_names, record.identifier, record.provisional_id,
        record.birth_date.isoformat(), record.birth_date.strftime("%d/%m/%Y"), record.holder.username,
        f"/records/{record.pk}/",
    ]
    for clue in clues:
        assert clue not in body, clue


def exploding_context_processor(request):
    raise RuntimeError("context processor failed")


@pytest.mark.django_db
def test_the_500_page_renders_even_when_the_request_context_cannot(settings):
    """A 500 often comes from the very thing a context processor needs (database, session):
    the handler renders without a request context so it cannot fail in turn."""
    settings.DEBUG = False
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "OPTIONS": {"context_processors": [
            *settings.TEMPLATES[0]["OPTIONS"]["context_processors"],
            f"{__name__}.exploding_context_processor",
        ]}},
    ]
    request = RequestFactory().get("/pro/records/1/")
    with pytest.raises(RuntimeError):  # the sabotage is real: a request context would fail
        render(request, "errors/not_available.html")

    response = error_500(request)

    assert response.status_code == 500
    body = response.content.decode()
    assert "<h1>" in body
    assert "Traceback" not in body
    assert "context processor failed" not in body


SECRET_IN_EXCEPTION = "Martin Alice 1 70 05 59 123 456"


def _failing_view(request):
    raise ValueError(f"lookup failed for {SECRET_IN_EXCEPTION}")


urlpatterns = [path("fails/", _failing_view)]
handler500 = "dmp.views.error_500"


@pytest.mark.django_db
def test_an_unhandled_error_shows_the_generic_500_page_without_traceback(client, settings):
    """Exception messages can carry patient data; the browser must only get the generic page."""
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False

    response = client.get("/fails/")

    assert response.status_code == 500
    body = response.content.decode()
    assert "Traceback" not in body
    assert "ValueError" not in body
    assert SECRET_IN_EXCEPTION not in body
    assert "errors/500.html" in [t.name for t in response.templates]
