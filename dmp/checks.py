"""System checks of our own, run by `manage.py check --deploy`."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
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
