"""The town where a professional practises (issue 15: a patient finds a professional by name,
profession and town). Professionals of a facility start with their facility's town."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def town_from_facility(apps, schema_editor):
    Professional = apps.get_model("dmp", "Professional")
    Organisation = apps.get_model("dmp", "Organisation")
    city = Organisation.objects.filter(pk=OuterRef("facility_id")).values("city")[:1]
    Professional.objects.filter(facility__isnull=False).update(town=Subquery(city))


class Migration(migrations.Migration):
    dependencies = [("dmp", "0015_minors")]

    operations = [
        migrations.AddField(
            model_name="professional",
            name="town",
            field=models.CharField(blank=True, max_length=100, verbose_name="town"),
        ),
        migrations.RunPython(town_from_facility, migrations.RunPython.noop),
    ]
