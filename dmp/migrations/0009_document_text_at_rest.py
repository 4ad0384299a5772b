"""Medical columns encrypted at rest: documents' titles and text, the medical synthesis, the
guided advance directives, the blood group, the organ donation choice, the personal notes,
vaccinations, self-declared allergies and history, reimbursement lines and break-glass
justifications; documents searched through a blind index of keyed hashes
(dmp/search_index.py). Existing rows are encrypted and indexed here."""

import django.db.models.deletion
from django.db import migrations, models

import dmp.models.fields
import dmp.models.synthesis

# The columns that hold Fernet tokens from now on, per table.
ENCRYPTED = {
    "dmp_document": ("title", "extracted_text"),
    "dmp_synthesis": ("personal_history", "family_history", "current_treatments", "allergies", "vaccinations",
                      "points_of_attention"),
    "dmp_synthesisproblem": ("icd10", "label"),
    "dmp_personalprofile": ("advance_directives", "notes", "blood_group", "organ_donation"),
    "dmp_careauthorisation": ("justification",),
    "dmp_vaccination": ("vaccine", "batch"),
    "dmp_selfdeclareditem": ("label",),
    "dmp_reimbursementline": ("code", "label", "provider"),
}


def _rewrite(connection, table: str, columns: tuple[str, ...], change) -> list[tuple]:
    """Apply `change` to every non-empty value of `columns`. Raw SQL: the models' fields now
    expect tokens and would try to decrypt the clear values read before the change (and the
    reverse). Returns the rows as they were read."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {', '.join(map(quote, columns))} FROM {quote(table)} ORDER BY id")  # noqa: S608
        rows = cursor.fetchall()
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    with connection.cursor() as cursor:
        for pk, *values in rows:
            cursor.execute(f"UPDATE {quote(table)} SET {assignments} WHERE id = %s",  # noqa: S608
                           [change(value) if value else value for value in values] + [pk])
    return rows


def encrypt_and_index(apps, schema_editor):
    """Encrypt what was stored in clear, and build each document's search index."""
    from dmp.search_index import document_terms, keyed_terms
    from dmp.storage import cipher

    keyring = cipher()
    connection = schema_editor.connection
    for table, columns in ENCRYPTED.items():
        rows = _rewrite(connection, table, columns, lambda value: keyring.encrypt(value.encode()).decode())
        if table != "dmp_document":
            continue
        records = dict(_rows(connection, "SELECT id, record_id FROM dmp_document"))
        DocumentSearchTerm = apps.get_model("dmp", "DocumentSearchTerm")
        for pk, title, text in rows:
            DocumentSearchTerm.objects.bulk_create(
                [DocumentSearchTerm(document_id=pk, term=term)
                 for term in sorted(keyed_terms(records[pk], document_terms(title or "", text or "")))],
                batch_size=1000,
            )


def decrypt(apps, schema_editor):
    """Back to clear columns (a rollback of this migration); the index goes with its table."""
    from dmp.storage import cipher

    keyring = cipher()
    for table, columns in ENCRYPTED.items():
        _rewrite(schema_editor.connection, table, columns, lambda value: keyring.decrypt(value.encode()).decode())


def _rows(connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _encrypted(model_name: str, name: str, verbose_name: str, **options) -> migrations.AlterField:
    return migrations.AlterField(
        model_name=model_name, name=name,
        field=dmp.models.fields.EncryptedTextField(verbose_name=verbose_name, **options),
    )


class Migration(migrations.Migration):

    dependencies = [
        ("dmp", "0008_delegated_administration"),
    ]

    operations = [
        _encrypted("document", "extracted_text", "extracted text", blank=True, default="", editable=False),
        _encrypted("document", "title", "title"),
        _encrypted("synthesis", "allergies", "allergies and intolerances", blank=True),
        _encrypted("synthesis", "current_treatments", "current treatments", blank=True),
        _encrypted("synthesis", "family_history", "family history", blank=True),
        _encrypted("synthesis", "personal_history", "personal history", blank=True),
        _encrypted("synthesis", "points_of_attention", "points of attention", blank=True),
        _encrypted("synthesis", "vaccinations", "vaccinations", blank=True),
        _encrypted("synthesisproblem", "icd10", "ICD-10 code", validators=[dmp.models.synthesis.validate_icd10]),
        _encrypted("synthesisproblem", "label", "label"),
        _encrypted("personalprofile", "advance_directives", "advance directives", blank=True),
        _encrypted("personalprofile", "notes", "personal notes", blank=True),
        _encrypted("personalprofile", "blood_group", "blood group", blank=True, choices=[
            ("", "Unknown"), ("A+", "A+"), ("A-", "A−"), ("B+", "B+"), ("B-", "B−"), ("AB+", "AB+"), ("AB-", "AB−"),
            ("O+", "O+"), ("O-", "O−")]),
        _encrypted("personalprofile", "organ_donation", "organ and tissue donation", default="not_stated", choices=[
            ("not_stated", "Not stated"), ("informed", "Informed of the rules on organ and tissue donation"),
            ("opposed", "Opposed to organ and tissue donation")]),
        _encrypted("careauthorisation", "justification", "justification", blank=True),
        _encrypted("vaccination", "vaccine", "vaccine"),
        _encrypted("vaccination", "batch", "batch number", blank=True),
        _encrypted("selfdeclareditem", "label", "label"),
        _encrypted("reimbursementline", "code", "code (CIP13, CCAM, NGAP)"),
        _encrypted("reimbursementline", "label", "label"),
        _encrypted("reimbursementline", "provider", "provider", blank=True),
        migrations.CreateModel(
            name="DocumentSearchTerm",
            fields=[
                ("pk", models.CompositePrimaryKey(
                    "document", "term", blank=True, editable=False, primary_key=True, serialize=False)),
                ("term", models.BigIntegerField(verbose_name="term hash")),
                ("document", models.ForeignKey(
                    db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="search_terms",
                    to="dmp.document")),
            ],
            options={
                "verbose_name": "search term",
                "verbose_name_plural": "search terms",
            },
        ),
        # Last: on PostgreSQL no table may be altered after rows were written in the same
        # transaction (pending foreign-key checks).
        migrations.RunPython(encrypt_and_index, decrypt),
    ]
