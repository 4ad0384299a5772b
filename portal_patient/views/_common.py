"""What every page of one record shares: the navigation between its screens and between the
records the account acts for. The record itself is loaded through the policy by
`dmp.http.record_view("patient")`."""

from __future__ import annotations

from django.shortcuts import render

from dmp.policy import Actor
from dmp.selectors import records_acted_for

OTHER_RECORDS_SHOWN = 10


def render_record_page(request, template: str, actor: Actor, record, context: dict | None = None, *,
                       section: str, status: int = 200):
    """Render a page of `record` inside the record's layout (templates/portal_patient/base_record.html).
    `section` names the current tab: home, documents, information, manage, history, export."""
    # A guardian may act for many people: the switch names a few, the home page lists them all.
    others = list(records_acted_for(actor, besides=record)[:OTHER_RECORDS_SHOWN + 1])
    return render(request, template, {
        "record": record, "section": section, "other_records": others[:OTHER_RECORDS_SHOWN],
        "more_other_records": len(others) > OTHER_RECORDS_SHOWN,
        "acting_as_representative": actor.own_record_id != record.pk,
        **(context or {}),
    }, status=status)
