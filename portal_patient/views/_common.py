"""What every page of one record shares: the record, loaded through the policy, and the
navigation between its screens and between the records the account acts for."""

from __future__ import annotations

from django.shortcuts import render

from dmp.http import actor_for_portal
from dmp.policy import Action, Actor
from dmp.selectors import get_record_for, records_acted_for


def record_for_request(request, pk: int, *, action: str = Action.VIEW_RECORD):
    """(actor, record) for a patient-portal page about record `pk`; 403 outside the patient
    portal, 404 if the policy refuses (both logged)."""
    actor = actor_for_portal(request, "patient")
    return actor, get_record_for(actor, pk, action=action)


def render_record_page(request, template: str, actor: Actor, record, context: dict | None = None, *,
                       section: str, status: int = 200):
    """Render a page of `record` inside the record's layout (templates/portal_patient/base_record.html).
    `section` names the current tab: home, documents, information, manage, history, export."""
    others = [r for r in records_acted_for(actor) if r.pk != record.pk]
    return render(request, template, {
        "record": record, "section": section, "other_records": others,
        "acting_as_representative": actor.own_record_id != record.pk,
        **(context or {}),
    }, status=status)
