"""Documents' titles and text encrypted at rest, searched through a blind index of keyed
hashes (dmp/search_index.py): existing rows are encrypted and indexed here."""

import django.db.models.deletion
from django.db import migrations, models

import dmp.models.fields


def encrypt_and_index(apps, schema_editor):
    """Encrypt the titles and texts stored in clear, and build each document's index. Raw SQL
    for the document rows: the model's field now expects tokens and would try to decrypt the
    clear values it reads."""
    from dmp.search_index import document_terms, keyed_terms
    from dmp.storage import cipher

    DocumentSearchTerm = apps.get_model("dmp", "DocumentSearchTerm")
    connection = schema_editor.connection
    keyring = cipher()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, record_id, title, extracted_text FROM dmp_document ORDER BY id")
        rows = cursor.fetchall()
    for pk, record_id, title, text in rows:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE dmp_document SET title = %s, extracted_text = %s WHERE id = %s",
                [keyring.encrypt(title.encode()).decode() if title else title,
                 keyring.encrypt(text.encode()).decode() if text else text, pk],
            )
        DocumentSearchTerm.objects.bulk_create(
            [DocumentSearchTerm(document_id=pk, term=term)
             for term in sorted(keyed_terms(record_id, document_terms(title or "", text or "")))],
            batch_size=1000,
        )


def decrypt(apps, schema_editor):
    """Back to clear columns (a rollback of this migration): the index goes with its table."""
    from dmp.storage import cipher

    connection = schema_editor.connection
    keyring = cipher()
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, title, extracted_text FROM dmp_document ORDER BY id")
        rows = cursor.fetchall()
    for pk, title, text in rows:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE dmp_document SET title = %s, extracted_text = %s WHERE id = %s",
                [keyring.decrypt(title.encode()).decode() if title else title,
                 keyring.decrypt(text.encode()).decode() if text else text, pk],
            )


class Migration(migrations.Migration):

    dependencies = [
        ("dmp", "0006_notifications_outbox_and_feed_ids"),
    ]

    operations = [
        migrations.AlterField(
            model_name="document",
            name="extracted_text",
            field=dmp.models.fields.EncryptedTextField(
                blank=True, default="", editable=False, verbose_name="extracted text"),
        ),
        migrations.AlterField(
            model_name="document",
            name="title",
            field=dmp.models.fields.EncryptedTextField(verbose_name="title"),
        ),
        migrations.CreateModel(
            name="DocumentSearchTerm",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("term", models.CharField(max_length=32, verbose_name="term hash")),
                ("document", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="search_terms", to="dmp.document")),
            ],
            options={
                "verbose_name": "search term",
                "verbose_name_plural": "search terms",
                "constraints": [
                    models.UniqueConstraint(fields=("document", "term"), name="search_term_once_per_document")],
            },
        ),
        # Last: on PostgreSQL no table may be altered after rows were written in the same
        # transaction (pending foreign-key checks).
        migrations.RunPython(encrypt_and_index, decrypt),
    ]
