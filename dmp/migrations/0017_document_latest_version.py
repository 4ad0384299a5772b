"""The documents' "latest version" flag and the partial index the lists read (issue 16: the
reverse join `replaced_by__isnull=True` was planned as a Seq Scan of the whole table), and the
partial index of the withheld results not told yet, which the periodic release reads."""

from django.db import migrations, models
from django.db.models import Subquery


def mark_replaced_versions(apps, schema_editor):
    # Every document that a newer version replaces is no longer the latest.
    Document = apps.get_model("dmp", "Document")
    replaced = Document.objects.filter(replaces__isnull=False).values("replaces_id")
    Document.objects.filter(pk__in=Subquery(replaced)).update(is_latest_version=False)


class Migration(migrations.Migration):
    dependencies = [("dmp", "0016_professional_town")]

    operations = [
        migrations.AddField(
            model_name="document",
            name="is_latest_version",
            field=models.BooleanField(default=True, editable=False, verbose_name="latest version"),
        ),
        migrations.RunPython(mark_replaced_versions, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(condition=models.Q(("is_latest_version", True)), fields=["record", "-act_date", "-id"],
                               name="document_latest_by_date"),
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(condition=models.Q(("patient_notified_at__isnull", True),
                                                  ("withheld_from_patient_until__isnull", False)),
                               fields=["withheld_from_patient_until"], name="document_release_pending"),
        ),
    ]
