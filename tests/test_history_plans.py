"""The access history costs the same at 100 entries and at 10 million: each of its queries on
the audit log, as the views run them (the patient's page with its filters and pages, the
médecin traitant's page, FHIR AuditEvent, the patient's home), is bounded by the record and
served by an index. Checked on PostgreSQL's own query plans, over a log of 21,000 entries,
analysed as a real one would be, where Alice's record holds 5 % of the log in its oldest part: a
query that reads the whole table (a Seq Scan, or an index walked without the record in its
condition) fails here. Timings are in bench/."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from bench.fill import fill_audit
from dmp.access_log import authorise_read
from dmp.models import AuditEntry
from dmp.policy import Action, Actor
from dmp.services import api_token_create
from tests.personas import world_for_module
from tests.plans import plan_nodes, selects_on

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans"),
]

OTHER_RECORDS = 10**9  # record ids far from the test's own


def _fill_busy_log(world) -> None:
    """A log of 21,000 analysed entries, so the planner chooses as in production: 1,000 old
    entries of Alice's record, 20,000 of 200 other records, then Alice's recent ones (a few
    dozen, some emergency, some refused). Alice's record holds 5 % of the log, in its oldest
    part: the case where walking the whole log's sequence backwards looks cheap to PostgreSQL,
    and is not."""
    with connection.cursor() as cursor:
        fill_audit(cursor, entries=1_000, records=1, first_record_id=world.record.pk)
        fill_audit(cursor, entries=20_000, records=200, first_record_id=OTHER_RECORDS)
    actors = [Actor(p.user) for p in (world.dr_grant, world.urgentist, world.dr_house, world.kine)]
    for i in range(10):
        for actor in actors:
            authorise_read(actor, Action.VIEW_DOCUMENT, world.docs["consultation"] if i % 2 else world.docs["imaging"])
        authorise_read(Actor(world.stranger.user), Action.VIEW_RECORD, world.record)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dmp_auditentry")


# Filled once for the module (filling it is most of this file's time), each test in its own
# savepoint.
busy_log = world_for_module(_fill_busy_log, "busy_log")


def _bearer(pro) -> dict[str, str]:
    _token, raw = api_token_create(actor=Actor(pro.user), label="Logiciel de cabinet")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _audit_reads(run) -> list[str]:
    """The SELECTs on the audit log that `run()` makes."""
    queries, response = selects_on("dmp_auditentry", run)
    assert response.status_code == 200
    return queries


def _reads_the_log(node: dict) -> bool:
    return node.get("Relation Name") == "dmp_auditentry" or node.get("Index Name", "").startswith("audit")


def _unbounded_scans(query: str, params: tuple = ()) -> list[str]:
    """Every way this query reads the audit log that is not an index lookup on the record."""
    bad = []
    for node in plan_nodes(query, _reads_the_log, params):
        kind = node["Node Type"]
        if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            condition = node.get("Index Cond", "")
        elif kind == "Bitmap Heap Scan":
            condition = node.get("Recheck Cond", "")
        else:
            condition = ""
        if "record_id_ref" not in condition:
            bad.append(f"{kind} {node.get('Index Name', '')} {condition}".strip())
    return bad


def _history_requests(client, world):
    record = world.record
    today = timezone.localdate()
    patient_url = reverse("portal_patient:history", args=[record.pk])
    pro_url = reverse("portal_pro:history", args=[record.pk])

    def as_(persona, url, params=None, **extra):
        def run():
            client.force_login(persona)
            return client.get(url, params or {}, **extra)
        return run

    return {
        "patient, the whole history": as_(world.alice, patient_url),
        "patient, one person": as_(world.alice, patient_url, {"who": world.dr_grant.user.pk}),
        "patient, a period": as_(world.alice, patient_url, {"date_from": today.isoformat(),
                                                           "date_to": today.isoformat()}),
        "patient, the second page": as_(world.alice, patient_url, {"page": 2}),
        "patient, person and period": as_(world.alice, patient_url, {"who": world.urgentist.user.pk,
                                                                    "date_from": today.isoformat()}),
        "patient's home": as_(world.alice, reverse("portal_patient:record", args=[record.pk])),
        "médecin traitant": as_(world.dr_house.user, pro_url),
        "médecin traitant, one person": as_(world.dr_house.user, pro_url, {"who": world.kine.user.pk}),
        "FHIR AuditEvent": as_(world.dr_house.user, "/fhir/AuditEvent", {"patient": record.pk, "_count": 10,
                                                                         "_offset": 20},
                               **_bearer(world.dr_house)),
    }


HISTORY_REQUESTS = [
    "patient, the whole history", "patient, one person", "patient, a period", "patient, the second page",
    "patient, person and period", "patient's home", "médecin traitant", "médecin traitant, one person",
    "FHIR AuditEvent",
]


def test_every_history_query_is_an_index_lookup_on_the_record(client, busy_log):
    # Every request on one filled log: a failure names each request and each plan that read the
    # whole log.
    requests = _history_requests(client, busy_log)
    assert list(requests) == HISTORY_REQUESTS
    unread, scans = [], {}
    for name, run in requests.items():
        queries = _audit_reads(run)
        if not queries:
            unread.append(name)
        for query in queries:
            if bad := _unbounded_scans(query):
                scans.setdefault(name, []).append((bad, query))
    assert unread == [], "these requests read no audit entry"
    assert scans == {}


def test_the_check_catches_a_query_that_reads_the_whole_log(busy_log):
    # The same check on a history that forgot its record: it must fail, or it proves nothing.
    everyone = AuditEntry.objects.exclude(mode="patient").order_by("-seq")
    unbounded = _unbounded_scans(*everyone[:20].query.sql_with_params())
    assert unbounded and "record_id_ref" not in " ".join(unbounded)
    by_action = AuditEntry.objects.filter(action="view_record").order_by().values("actor_id")
    assert _unbounded_scans(*by_action.query.sql_with_params())
