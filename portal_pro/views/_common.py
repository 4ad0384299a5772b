"""What every page about one patient shares: the reason this professional may see it, always
on screen. The record itself is loaded through the policy by `dmp.http.record_view("pro")`."""

from __future__ import annotations

from django.shortcuts import render

from dmp.policy import Action, Actor, decide, record_access


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
