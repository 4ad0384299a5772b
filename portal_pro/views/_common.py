"""What every page about one patient shares: the record loaded through the policy, and the
reason this professional may see it, always on screen."""

from __future__ import annotations

from django.shortcuts import render

from dmp.http import actor_for_portal
from dmp.policy import Action, Actor, decide, record_access
from dmp.selectors import get_record_for


def record_for_request(request, pk: int, *, action: str = Action.VIEW_RECORD):
    """(actor, record) for a pro-portal page about record `pk`: 403 for non-professionals,
    404 if the policy refuses (both logged)."""
    actor = actor_for_portal(request, "pro")
    return actor, get_record_for(actor, pk, action=action)


def render_record_page(request, template: str, actor: Actor, record, context: dict | None = None, *,
                       section: str, status: int = 200):
    """Render a page about `record` in templates/portal_pro/base_record.html, which shows why
    the professional may see it (the policy's rule and reason). `section`: patient, documents,
    synthesis, history."""
    return render(request, template, {
        "record": record, "section": section, "access": record_access(actor, record),
        # The history tab only for whom the policy lets read it (the médecin traitant).
        "may_read_history": decide(actor, Action.VIEW_ACCESS_HISTORY, record).allowed,
        **(context or {}),
    }, status=status)
