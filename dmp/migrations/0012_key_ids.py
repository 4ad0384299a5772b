"""Each encrypted object records which document key encrypted it (`dmp.models.fields.KeyIdField`,
and a `<key id>:` prefix on the second-factor secrets in allauth's JSON), so that
`manage.py reencrypt` knows what to move and the system check dmp.E002 knows which keys are
still needed.

Rows already stored cannot say which key wrote them. When a single key is configured, every
readable object is under it: they get its id. With several keys, their key is left unknown
(empty id, bare token) until `manage.py reencrypt` runs; the check warns meanwhile (dmp.W002).
"""

from django.conf import settings
from django.db import migrations

import dmp.models.fields
import dmp.storage

ENCRYPTED_MODELS = ("careauthorisation", "document", "personalprofile", "recordexport", "reimbursementline",
                    "selfdeclareditem", "synthesis", "synthesisproblem", "vaccination")


def record_known_keys(apps, schema_editor):
    if len(settings.DOCUMENT_ENCRYPTION_KEYS) > 1:
        for name in ENCRYPTED_MODELS:
            apps.get_model("dmp", name).objects.update(key_id="")
        return
    # The rows got the single key's id from AddField; the secrets get it as a prefix.
    tag = dmp.storage.current_key_id()
    authenticator_model = apps.get_model("mfa", "Authenticator")
    for authenticator in authenticator_model.objects.filter(type__in=("totp", "recovery_codes")).iterator():
        data = authenticator.data
        for name in ("secret", "seed"):
            if isinstance(data.get(name), str) and ":" not in data[name]:
                data[name] = f"{tag}:{data[name]}"
        if isinstance(data.get("migrated_codes"), list):
            data["migrated_codes"] = [code if ":" in code else f"{tag}:{code}" for code in data["migrated_codes"]]
        authenticator.save(update_fields=["data"])


class Migration(migrations.Migration):

    dependencies = [
        ("dmp", "0011_audit_ledger"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [
        *[
            migrations.AddField(
                model_name=name,
                name="key_id",
                field=dmp.models.fields.KeyIdField(
                    blank=True, db_index=True, default=dmp.storage.current_key_id, editable=False, max_length=8
                ),
            )
            for name in ENCRYPTED_MODELS
        ],
        migrations.RunPython(record_known_keys, migrations.RunPython.noop),
    ]
