"""One emergency opening in force per professional and record (issue 15: 20 concurrent
break-glass submissions had made 20 authorisations).

Before the constraint can hold, the rows it would refuse are settled:
- an emergency opening whose time is over but that was not yet marked ended gets
  `ended_at = expires_at`, as `break_glass_expire_due` would have done;
- of several openings still in force for the same professional, record and kind, the one that
  lasts longest stays; the others end now. Nobody loses access by it: the one kept covers them.
"""

from django.db import migrations, models
from django.db.models import F, Q
from django.utils import timezone

EMERGENCY_KINDS = ["break_glass", "samu"]


def settle_duplicate_openings(apps, schema_editor):
    CareAuthorisation = apps.get_model("dmp", "CareAuthorisation")
    now = timezone.now()
    in_force = CareAuthorisation.objects.filter(kind__in=EMERGENCY_KINDS, ended_at__isnull=True)
    in_force.filter(expires_at__lte=now).update(ended_at=F("expires_at"))
    seen = set()
    for grant in in_force.order_by("record_id", "professional_id", "kind", "-expires_at", "-pk"):
        key = (grant.record_id, grant.professional_id, grant.kind)
        if key in seen:
            CareAuthorisation.objects.filter(pk=grant.pk).update(ended_at=now)
        seen.add(key)
    if schema_editor.connection.vendor == "postgresql":
        # The foreign keys are checked at commit; PostgreSQL refuses to build the index below
        # while this transaction still holds such pending checks: run them now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ("dmp", "0012_key_ids"),
    ]

    operations = [
        migrations.RunPython(settle_duplicate_openings, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="careauthorisation",
            constraint=models.UniqueConstraint(
                condition=Q(kind__in=["break_glass", "samu"], ended_at__isnull=True),
                fields=("record", "professional", "kind"),
                name="one_emergency_opening_in_force",
            ),
        ),
    ]
