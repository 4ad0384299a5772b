"""System checks of our own: the production ones run by `manage.py check --deploy`, the
document-key check also by `migrate` and before every service starts."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register  # noqa: A004 - the checks framework's Warning
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def no_superuser_in_production(app_configs=None, **kwargs) -> list[Error]:
    """Production has operators with scopes, never a superuser (who could read around every
    scope). The accounts table may not exist yet (before the first migrate): nothing to say."""
    if settings.SUPERUSERS_ALLOWED:
        return []
    from .models import User

    try:
        count = User.objects.filter(is_superuser=True).count()
    except DatabaseError:
        return []
    if not count:
        return []
    return [Error(
        f"{count} superuser account(s) exist; production allows none (they cannot log in).",
        hint="Remove superuser status (manage.py admin_scope demote USERNAME) and grant operators their scope "
             "with manage.py admin_scope grant.",
        id="dmp.E001",
    )]


# Its own tag, so that a service can run this check alone before it starts
# (`manage.py check --database default --tag document_keys`, docs/deployment.md).
KEYS_TAG = "document_keys"


@register(Tags.security, Tags.database, KEYS_TAG)
def document_keys_in_use_are_configured(app_configs=None, **kwargs) -> list[Error | Warning]:
    """A document key still named by a stored object (dmp/keyring.py) must be configured:
    without it those documents, exports and second factors fail one by one, long after the
    restart. Not only with --deploy: with `migrate`, the release's check and the services'
    units before they start (docs/deployment.md). Before the first migrate (or with no
    database reachable) there is nothing to compare: nothing to say."""
    from .keyring import key_ids_in_use
    from .storage import configured_key_ids

    # As Django's own database checks: only when asked to look at the database (`migrate`,
    # `check --database default`), never from a bare `check`, `runserver` or Celery's start-up.
    if "default" not in (kwargs.get("databases") or ()):
        return []
    try:
        in_use, unknown = key_ids_in_use()
    except DatabaseError:
        return []
    problems: list[Error | Warning] = []
    missing = sorted(in_use - configured_key_ids())
    if missing:
        problems.append(Error(
            f"Objects are still encrypted with document key(s) {', '.join(missing)}, missing from "
            f"DOCUMENT_ENCRYPTION_KEYS: they cannot be read.",
            hint="Put the removed key(s) back after the first key, restart, run manage.py reencrypt, and only then "
                 "remove them (docs/deployment.md, \"Document encryption keys\").",
            id="dmp.E002",
        ))
    if unknown:
        problems.append(Warning(
            f"{unknown} encrypted object(s) were stored before key ids were recorded: which key they need is "
            f"unknown.",
            hint="Run manage.py reencrypt before removing any key from DOCUMENT_ENCRYPTION_KEYS.",
            id="dmp.W002",
        ))
    return problems
