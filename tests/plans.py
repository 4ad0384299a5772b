"""Reading PostgreSQL's query plans in tests (tests/test_history_plans.py,
tests/test_document_plans.py): the SELECTs some code makes on one table, and the plan nodes that
read that table, so a test can fail on a scan that grows with the whole table."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext


def selects_on(table: str, run: Callable) -> tuple[list[str], object]:
    """The SELECTs on `table` that `run()` makes, and what it returned."""
    with CaptureQueriesContext(connection) as captured:
        answer = run()
    return [q["sql"] for q in captured.captured_queries
            if q["sql"].lstrip().upper().startswith("SELECT") and f'"{table}"' in q["sql"]], answer


def plan_nodes(query: str, reads: Callable[[dict], bool], params: tuple = ()) -> list[dict]:
    """The nodes of the query's plan (EXPLAIN, JSON) for which `reads(node)` is true."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {query}", params or None)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    nodes, found = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if reads(node):
            found.append(node)
    return found
