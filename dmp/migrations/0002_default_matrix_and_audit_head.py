from django.db import migrations


def forwards(apps, schema_editor):
    from dmp.matrix_defaults import default_cells

    MatrixEntry = apps.get_model("dmp", "MatrixEntry")
    MatrixEntry.objects.bulk_create(
        [MatrixEntry(profession=p, doc_type=t, allowed=a) for p, t, a in default_cells()], ignore_conflicts=True
    )
    apps.get_model("dmp", "AuditChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("dmp", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
