"""Filling the audit log fast, for the history benchmark and the query-plan test.

The rows are made by PostgreSQL itself (`INSERT … SELECT … FROM generate_series`): a million
entries in seconds, where appending them one by one through the chain would take hours. They
are not a valid chain (their hashes are placeholders), which a timing or a query plan does not
need. Plain INSERTs: the log refuses updates and deletes, not inserts; the test's transaction
rolls them back, and the benchmark drops its own database's rows with TRUNCATE.

Columns the audit table gains later (NOT NULL, no default) are filled from the row number by
type, so the fill keeps working as the entry grows fields; a type it cannot fill stops it with
a clear message rather than a half-filled table.
"""

from __future__ import annotations

from psycopg import sql

TABLE = "dmp_auditentry"
FIRST_SEQ = 10**12

# Every tenth entry an emergency opening, one in ten a counter act, one in ten the patient's
# own (which the history leaves out), one in seventeen a refusal: the history's top lists and
# filters then all have something to find.
_KNOWN = {
    "seq": "{seq}",
    "at": "now() - ({n} - i) * interval '1 minute'",
    "actor_id": "1000000 + i % {actors}",
    "actor_label": "'Bench professional ' || (i % {actors})",
    "role": "'gp'",
    "mode": (
        "CASE i % 10 WHEN 0 THEN 'break_glass' WHEN 1 THEN 'counter' WHEN 2 THEN 'patient' ELSE 'normal' END"
    ),
    "action": "'view_record'",
    "allowed": "i % 17 <> 0",
    "rule": "'bench'",
    "record_id_ref": "{first_record} + i % {records}",
    "object_type": "''",
    "object_id": "''",
    "ip": "NULL",
    "prev_hash": "repeat('0', 64)",
    "hash": "md5(({seq})::text) || md5(('h' || ({seq}))::text)",
}

# Filling a column the audit table may gain, from the row's sequence number (unique per row,
# so unique constraints hold).
_BY_TYPE = {
    "smallint": "(({seq}) % 32000)::smallint",
    "integer": "({seq})::integer",
    "bigint": "({seq})::bigint",
    "numeric": "({seq})::numeric",
    "boolean": "false",
    "text": "md5(({seq})::text) || md5(('x' || ({seq}))::text)",
    "character varying": "md5(({seq})::text) || md5(('x' || ({seq}))::text)",
    "timestamp with time zone": "now()",
    "bytea": "decode(md5(({seq})::text) || md5(('x' || ({seq}))::text), 'hex')",
    "jsonb": "'{{}}'::jsonb",
}


def fill_audit(cursor, *, entries: int, records: int, first_record_id: int, actors: int = 50) -> None:
    """Append `entries` rows spread evenly over the record ids `first_record_id` …
    `first_record_id + records - 1`, by `actors` different professionals, one minute apart
    and ending now, numbered after `FIRST_SEQ` and any filled entry already there."""
    # Numbered far above the real chain, so that entries appended through `log_access()`
    # afterwards (the test's own, the benchmark's) never take a number already used.
    cursor.execute(sql.SQL("SELECT greatest(max(seq), %s) FROM {}").format(sql.Identifier(TABLE)), [FIRST_SEQ])
    start = cursor.fetchone()[0]
    cursor.execute(
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns"
        " WHERE table_name = %s AND table_schema = current_schema() AND is_nullable = 'NO'"
        " AND column_default IS NULL AND is_identity = 'NO'",
        [TABLE],
    )
    columns = dict(_KNOWN)
    for name, data_type, max_length in cursor.fetchall():
        if name in columns:
            continue
        if data_type not in _BY_TYPE:
            raise RuntimeError(f"bench/fill.py cannot fill the new audit column {name!r} of type {data_type}")
        value = _BY_TYPE[data_type]
        columns[name] = f"left({value}, {max_length})" if max_length else value
    seq = f"{start} + i"
    values = {"seq": seq, "n": entries, "actors": actors, "records": records, "first_record": first_record_id}
    query = sql.SQL("INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1, {n}) AS i").format(
        table=sql.Identifier(TABLE),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        # Only this module's own fragments and integers go into the text, never outside input.
        values=sql.SQL(", ").join(sql.SQL(v.format(**values)) for v in columns.values()),
        n=sql.Literal(entries),
    )
    cursor.execute(query)


def stored_scan(record, n: int, megabytes: int):
    """The record's `n`-th "scan": `megabytes` of random bytes (incompressible, as scanned PDFs
    and photos are) written through the encrypted storage directly, without the upload checks
    (not what an export's memory measures, and minutes of work on random bytes). For the export
    benchmark (bench/jobs.py) and its test (tests/test_export_memory.py)."""
    import hashlib
    import os
    from datetime import date

    from django.core.files.base import ContentFile

    from dmp.models import Document, DocumentType

    content = os.urandom(megabytes * 2**20)
    digest = hashlib.sha256(content).hexdigest()
    document = Document(record=record, doc_type=DocumentType.IMAGING_REPORT, title=f"Scanner {n}",
                        act_date=date(2025, 1, 1 + n % 28), author_kind=Document.AuthorKind.PATIENT,
                        mime_type="image/jpeg", size=len(content), content_hash=digest)
    document.file.save(digest, ContentFile(content), save=False)
    document.save()
    return document
