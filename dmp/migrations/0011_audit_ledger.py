"""The access ledger: one hash chain per record, entries authenticated with an HMAC key the
database does not hold, signed checkpoints, and a PostgreSQL trigger refusing UPDATE and
DELETE on the entries (TRUNCATE is refused by the application role's grants instead:
docs/deployment.md; the test suite empties tables with it).

The existing single chain is checked first (a broken one stops the migration: re-linking it
would launder the tampering), then each entry is placed in its record's chain, in its
original order, and hashed and authenticated again under the new scheme.
"""

import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations, models

GENESIS = "0" * 64
ENTRY_TABLE = "dmp_auditentry"


def _old_hash(entry, prev):
    payload = json.dumps({
        "seq": entry.seq, "at": entry.at.isoformat(timespec="microseconds"), "actor": entry.actor_id,
        "actor_label": entry.actor_label, "role": entry.role, "mode": entry.mode, "action": entry.action,
        "allowed": entry.allowed, "rule": entry.rule, "record": entry.record_id_ref,
        "object_type": entry.object_type, "object_id": entry.object_id, "ip": entry.ip, "prev": prev,
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def relink(apps, schema_editor):
    from dmp.verify_history import canonical, sha256

    AuditEntry = apps.get_model("dmp", "AuditEntry")
    AuditChainHead = apps.get_model("dmp", "AuditChainHead")
    key = settings.AUDIT_HMAC_KEYS[0]
    key_id = hashlib.sha256(b"dmp-audit-key-id:" + key.encode()).hexdigest()[:12]  # as dmp.audit.key_id
    old_prev = GENESIS
    heads: dict[int, list] = {}
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.prev_hash != old_prev or _old_hash(entry, entry.prev_hash) != entry.hash:
            raise RuntimeError(f"The audit log is broken at entry #{entry.seq}: run verify_audit on the "
                               "previous version and investigate before migrating.")
        old_prev = entry.hash
        chain = entry.record_id_ref if entry.record_id_ref is not None else 0
        chain_seq, prev, _seq = heads.get(chain, (0, GENESIS, 0))
        chain_seq += 1
        payload = canonical({
            "chain": chain, "chain_seq": chain_seq, "at": entry.at.isoformat(timespec="microseconds"),
            "actor": entry.actor_id, "actor_label": entry.actor_label, "role": entry.role, "mode": entry.mode,
            "action": entry.action, "allowed": entry.allowed, "rule": entry.rule, "record": entry.record_id_ref,
            "object_type": entry.object_type, "object_id": entry.object_id, "ip": entry.ip, "prev": prev,
        })
        new_hash = sha256(payload)
        AuditEntry.objects.filter(seq=entry.seq).update(
            chain=chain, chain_seq=chain_seq, prev_hash=prev, hash=new_hash, key_id=key_id,
            mac=hmac.new(key.encode(), new_hash.encode(), hashlib.sha256).hexdigest(),
        )
        heads[chain] = (chain_seq, new_hash, entry.seq)
    AuditChainHead.objects.bulk_create([
        AuditChainHead(chain=chain, last_chain_seq=chain_seq, last_hash=last_hash, last_seq=seq)
        for chain, (chain_seq, last_hash, seq) in heads.items()
    ])


APPEND_ONLY = f"""
CREATE FUNCTION dmp_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'The audit log is append-only (%% refused on %%).', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER dmp_audit_no_update_delete BEFORE UPDATE OR DELETE ON {ENTRY_TABLE}
    FOR EACH ROW EXECUTE FUNCTION dmp_audit_append_only();
"""
APPEND_ONLY_REVERSE = f"""
DROP TRIGGER IF EXISTS dmp_audit_no_update_delete ON {ENTRY_TABLE};
DROP FUNCTION IF EXISTS dmp_audit_append_only();
"""


def trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # The new auto-increment key starts after the existing entries' sequence numbers.
        schema_editor.execute(
            f"SELECT setval(pg_get_serial_sequence('{ENTRY_TABLE}', 'seq'), COALESCE(MAX(seq), 1), "
            f"MAX(seq) IS NOT NULL) FROM {ENTRY_TABLE}"
        )
        schema_editor.execute(APPEND_ONLY)


def trigger_reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("dmp", "0010_audit_history_indexes")]

    operations = [
        migrations.DeleteModel(name="AuditChainHead"),
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("chain", models.BigIntegerField(primary_key=True, serialize=False)),
                ("last_chain_seq", models.PositiveBigIntegerField(default=0)),
                ("last_hash", models.CharField(default=GENESIS, max_length=64)),
                ("last_seq", models.PositiveBigIntegerField(default=0)),
                ("checkpointed_chain_seq", models.PositiveBigIntegerField(default=0)),
                ("checkpoint", models.PositiveBigIntegerField(null=True)),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("last_chain_seq__gt", models.F("checkpointed_chain_seq"))),
                        fields=["chain"], name="audit_head_due_checkpoint",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("seq", models.PositiveBigIntegerField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("root", models.CharField(max_length=64)),
                ("line", models.TextField()),
                ("verified_at", models.DateTimeField(null=True)),
            ],
        ),
        migrations.AddField(model_name="auditentry", name="chain", field=models.BigIntegerField(default=0),
                            preserve_default=False),
        migrations.AddField(model_name="auditentry", name="chain_seq",
                            field=models.PositiveBigIntegerField(default=0), preserve_default=False),
        migrations.AddField(model_name="auditentry", name="key_id", field=models.CharField(default="", max_length=16),
                            preserve_default=False),
        migrations.AddField(model_name="auditentry", name="mac", field=models.CharField(default="", max_length=64),
                            preserve_default=False),
        migrations.RemoveField(model_name="auditentry", name="id"),
        migrations.AlterField(
            model_name="auditentry", name="seq",
            field=models.BigAutoField(primary_key=True, serialize=False, verbose_name="sequence"),
        ),
        migrations.RunPython(relink, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("chain", "chain_seq"), name="audit_entry_chain_position"),
        ),
        migrations.RunPython(trigger, trigger_reverse),
    ]
